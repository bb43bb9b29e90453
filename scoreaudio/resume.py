"""Resuming a run: the same network, the same training, and the exact command to continue.

A run resumes bit-exactly only if everything that decides the next step is what it was: the
network (:func:`check_same_model`, always an error), and the data, noise, loss, optimiser and
schedule settings (:func:`check_resume_config`: an error unless ``train.allow_config_change=true``,
and every change is logged either way). Bookkeeping settings (where and how often to log,
validate, save or sample, the device, the data's location) may change freely.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from omegaconf import DictConfig, OmegaConf

from .config import compose
from .errors import ConfigError
from .pretrained import checkpoint_config
from .utils.checkpoint import LAST
from .utils.logging import log

__all__ = [
    "FREE_TO_CHANGE",
    "check_resume_config",
    "check_same_model",
    "config_changes",
    "continue_command",
    "flat_keys",
    "resume_config",
    "rng_state",
    "set_rng_state",
]

#: Keys a resume may change without changing what the next optimiser step computes (prefixes end
#: in "."; list entries of sources are matched with their index replaced by "*").
FREE_TO_CHANGE = (
    "name",
    "sampler.",
    "train.run_dir",
    "train.runs_root",
    "train.resume",
    "train.overwrite",
    "train.allow_config_change",
    "train.init_from",
    "train.log_every",
    "train.val_every",
    "train.val_examples",
    "train.val_sigmas",
    "train.ckpt_every",
    "train.sample_every",
    "train.num_samples",
    "train.sample_seconds",
    "train.num_workers",
    "train.device",
    "train.compile",
    "train.calibrate_noise_map",
    "data.root",
    "data.noise_mix.folder",
    "data.noise_mix.sources.*.root",
)


def flat_keys(tree: Any, prefix: str = "") -> Dict[str, Any]:
    """A nested dict / list as {dotted key: leaf}; list entries get their index as a key part."""
    out: Dict[str, Any] = {}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else None
    if items is None:
        return {prefix: tree}
    for k, v in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, (dict, list)) and v:
            out.update(flat_keys(v, key))
        else:
            out[key] = v
    return out


def _free(key: str) -> bool:
    generic = ".".join("*" if part.isdigit() else part for part in key.split("."))
    return any(generic == k or (k.endswith(".") and generic.startswith(k)) for k in FREE_TO_CHANGE)


def config_changes(saved: DictConfig, now: DictConfig, prefix: str = "") -> List[Tuple[str, Any, Any]]:
    """(key, saved value, new value) for every leaf that differs, in key order; keys start with
    ``prefix`` (the dotted path of ``saved`` / ``now`` when they are a section)."""
    a = flat_keys(OmegaConf.to_container(saved, resolve=True), prefix)
    b = flat_keys(OmegaConf.to_container(now, resolve=True), prefix)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_resume_config(ckpt: dict, cfg: DictConfig, path: Path) -> None:
    """Refuse a resume whose settings would make the continued run differ from an uninterrupted
    one (batch, crop, data, noise, loss, learning-rate schedule, steps, seed), unless
    ``train.allow_config_change=true``; log every changed value either way."""
    saved = checkpoint_config(ckpt["config"])
    changes = [c for c in config_changes(saved, cfg) if not c[0].startswith("model.")]
    if not changes:
        return
    # the step budget only decides the next step through the cosine schedule's end and an EMA
    # half-life given as a share of the run
    steps_matter = cfg.train.lr_schedule == "cosine" or cfg.train.ema_half_life is None
    breaking = [c for c in changes if not _free(c[0]) and (c[0] != "train.steps" or steps_matter)]
    for key, old, new in changes:
        exact = (key, old, new) not in breaking
        log(f"resume: {key} {old!r} -> {new!r}" + ("" if exact else "  (the run is no longer exact)"))
    if breaking and not cfg.train.get("allow_config_change", False):
        key, old, new = breaking[0]
        more = (
            f" (and {len(breaking) - 1} more: {', '.join(c[0] for c in breaking[1:4])})"
            if len(breaking) > 1
            else ""
        )
        raise ConfigError(
            f"{path} was trained with {key}={old!r}, this config has {new!r}{more}; resuming with it "
            f"would not continue the same run: pass {key}={old} (or drop the override), add "
            f"train.allow_config_change=true to continue with the change, or start over"
        )


def check_same_model(ckpt: dict, cfg: DictConfig, path: Path) -> None:
    """Refuse to resume a checkpoint into a different network: the weights would load (same
    names) but compute something else, e.g. a U-Net trained with ``norm=global`` resumed with
    ``norm=frame``. Old configs get the values they were trained with first."""
    changed = config_changes(checkpoint_config(ckpt["config"]).model, cfg.model, "model")
    if changed:
        k, old, new = changed[0]
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise ConfigError(
            f"{path} was trained with {k}={old!r} but this config has {new!r}{more}; "
            f"pass {k}={old} to resume it, or start over (train.resume=never "
            f"train.overwrite=true, or another train.run_dir)"
        )


def resume_config(recipe: str, overrides: Sequence[str]) -> Tuple[DictConfig, Optional[Path]]:
    """The config a command line trains with, and the run it continues (None for a new run).

    A resumable run (``train.resume=auto`` and a last.pt in the run directory) continues from its
    own saved ``config.yaml`` with only the command's overrides on top, so a recipe edited since,
    or overrides left off the command, do not silently change it."""
    cfg = compose(recipe, overrides)
    run_dir = Path(cfg.train.run_dir) if cfg.train.run_dir else None
    if (
        cfg.train.resume != "auto"
        or run_dir is None
        or not (run_dir / LAST).is_file()
        or not (run_dir / "config.yaml").is_file()
    ):
        return cfg, None
    saved = compose(run_dir / "config.yaml", overrides)
    drift = [k for k, _, _ in config_changes(saved, cfg) if not _free(k)]
    if drift:
        log(
            f"resuming {run_dir} with its saved config; the recipe now differs in {', '.join(drift[:4])}"
            + (f" and {len(drift) - 4} more" if len(drift) > 4 else "")
            + " (not applied)"
        )
    return saved, run_dir


def continue_command(recipe: Optional[str], overrides: Sequence[str], run_dir: Path) -> str:
    """The exact command that continues this run: the recipe and overrides it was started with,
    and its run directory (added when the overrides do not already name it)."""
    parts = ["python", "-m", "scoreaudio.train", str(recipe) if recipe else "RECIPE", *overrides]
    if not any(o.startswith("train.run_dir=") for o in overrides):
        parts.append(f"train.run_dir={run_dir}")
    return " ".join(shlex.quote(p) for p in parts)


def rng_state(device: torch.device) -> dict:
    """The global generators' states (dropout draws from them; everything else has its own)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Optional[dict], device: torch.device) -> None:
    """Restore :func:`rng_state`'s generators (dropout then draws what the uninterrupted run drew)."""
    if not state:
        return  # a checkpoint from before the state was saved: exact only without dropout
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
