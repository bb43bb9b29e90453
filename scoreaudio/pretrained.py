"""Rebuild a trained model from nothing but its checkpoint (or run directory, or weights file).

Three kinds of source:

* a training checkpoint (``.pt``, loaded with ``weights_only=True``) or a run directory;
* a **weights file** (``.safetensors``): the EMA weights (fp16 or fp32) with the config,
  representation and sigma settings as JSON in its metadata, written by :func:`export_weights`;
  safetensors holds only tensors, so loading one never runs code;
* a **built-in model** by name (:data:`BUILTIN_MODELS`): a weights file shipped in the package
  under ``scoreaudio/models/``, with its model card beside it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import torch
from omegaconf import DictConfig

from .audio.representation import representation_from_dict
from .config import from_container, is_conditional
from .errors import CheckpointError, ConfigError
from .nn.build import build_score_model
from .noise import NoiseLevels
from .utils.checkpoint import load_checkpoint_dict, resolve_checkpoint
from .utils.device import resolve_device

#: Models shipped in the package: name -> weights file under scoreaudio/models/ (model card: same stem, .md).
BUILTIN_MODELS = {"default": "denoiser_default.safetensors"}
MODELS_DIR = Path(__file__).resolve().parent / "models"
#: The safetensors metadata key that holds the JSON description of a weights file.
META_KEY = "scoreaudio"


@dataclass
class Pretrained:
    """A model ready for sampling or denoising, with everything needed to use it."""

    model: torch.nn.Module  # ScoreModel in eval mode, on `device`, EMA weights unless asked otherwise
    cfg: DictConfig  # the resolved training config
    representation: object  # Representation used in training
    levels: NoiseLevels  # the run's noise levels (sigma_min, sigma_max, num_levels, sigma_data, ...)
    step: int  # optimiser steps the weights have seen
    path: Path  # the checkpoint file
    device: torch.device

    @property
    def sample_rate(self) -> int:
        return int(self.cfg.data.sample_rate)

    @property
    def conditional(self) -> bool:
        """True for a conditional denoiser: the network takes the noisy input as ``cond``."""
        return bool(getattr(self.model, "cond_channels", 0))


#: Settings added after checkpoints were first written, with the value that reproduces what a
#: checkpoint without them was trained with (the schema's default is for new runs).
LEGACY_DEFAULTS = {("model", "unet2d", "norm"): "global"}  # before per-frame GroupNorm/attention


def checkpoint_config(container: dict) -> DictConfig:
    """The validated config of a checkpoint's stored config dict, with :data:`LEGACY_DEFAULTS`
    filled in where the dict lacks them, so old checkpoints rebuild the network they trained."""
    container = copy.deepcopy(container)
    for (*parents, key), value in LEGACY_DEFAULTS.items():
        node = container
        for name in parents:
            node = node.setdefault(name, {})
        node.setdefault(key, value)
    return from_container(container)


def builtin_path(name: str) -> Path:
    """The weights file of built-in model ``name``.

    Raises:
        CheckpointError: an unknown name, or a package installed without its model files.
    """
    if name not in BUILTIN_MODELS:
        raise CheckpointError(f"unknown built-in model {name!r}; valid: {', '.join(BUILTIN_MODELS)}")
    path = MODELS_DIR / BUILTIN_MODELS[name]
    if not path.is_file():
        raise CheckpointError(
            f"the built-in model {name!r} is missing from this installation ({path.name}); "
            f"reinstall scoreaudio or pass a checkpoint"
        )
    return path


def export_weights(
    checkpoint: Union[str, Path],
    out: Union[str, Path],
    *,
    dtype: torch.dtype = torch.float16,
    ema: bool = True,
) -> Path:
    """Write a checkpoint's EMA (or live) weights as a safetensors file with its description.

    Floating-point tensors are stored as ``dtype`` (fp16 halves the size; the loader computes
    in fp32); the config (without the training machine's folders), representation, sigmas,
    cond_channels and step go into the file's metadata as JSON. Returns ``out``.
    """
    from safetensors.torch import save_file

    path = resolve_checkpoint(checkpoint)
    ckpt = load_checkpoint_dict(path, map_location="cpu")
    weights = {
        k: (v.to(dtype) if v.is_floating_point() else v).contiguous()
        for k, v in ckpt["ema" if ema else "model"].items()
    }
    cfg = checkpoint_config(ckpt["config"])
    representation = representation_from_dict(ckpt["representation"])
    meta = {
        "config": _without_paths(ckpt["config"]),
        "representation": ckpt["representation"],
        "sigmas": ckpt["sigmas"],
        "cond_channels": int(
            ckpt.get("cond_channels", representation.channels if is_conditional(cfg) else 0)
        ),
        "step": int(ckpt.get("step", 0)),
        "package_version": ckpt.get("package_version", "?"),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out), metadata={META_KEY: json.dumps(meta)})
    out.chmod(0o644)  # a file to ship and share (the writer creates it private)
    return out


def _without_paths(config: dict) -> dict:
    """The config with the training machine's folders (data, noise, run dir) set to None: a weights
    file travels, and those paths mean nothing elsewhere (nor are they needed to run the model)."""
    config = copy.deepcopy(config)
    data = config.get("data", {})
    data["root"] = None
    mix = data.get("noise_mix", {})
    mix["folder"] = None
    for source in mix.get("sources", []) or []:
        source["root"] = None
    config.get("train", {})["run_dir"] = None
    return config


def load_weights_file(path: Union[str, Path]) -> dict:
    """A weights file (:func:`export_weights`) as a checkpoint-like dict (weights under ``ema``
    and ``model``, in fp32).

    Raises:
        CheckpointError: not a safetensors file, or one without scoreaudio's metadata.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = (f.metadata() or {}).get(META_KEY)
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({' '.join(str(e).split())[:120]})"
        ) from None
    if meta is None:
        raise CheckpointError(
            f"{path} has no '{META_KEY}' metadata: it was not written by scoreaudio's "
            f"export_weights, so its model cannot be rebuilt"
        )
    d = json.loads(meta)
    state = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
    return {**d, "ema": state, "model": state}


def load_pretrained(
    checkpoint: Union[str, Path, None],
    *,
    device: Union[str, torch.device, None] = None,
    ema: bool = True,
    runs_root: Union[str, Path] = "runs",
) -> Pretrained:
    """Load a checkpoint file, a run directory, a ``.safetensors`` weights file, a built-in model
    by name (``"default"``), or (None) the newest run under ``runs_root``."""
    device = resolve_device(device)
    if isinstance(checkpoint, str) and checkpoint in BUILTIN_MODELS and not Path(checkpoint).exists():
        checkpoint = builtin_path(checkpoint)
    if checkpoint is not None and Path(checkpoint).suffix == ".safetensors":
        path = Path(checkpoint)
        if not path.is_file():
            raise CheckpointError(f"weights file not found: {path}")
        ckpt = load_weights_file(path)
    else:
        path = resolve_checkpoint(checkpoint, runs_root)
        ckpt = load_checkpoint_dict(path, map_location="cpu")
    try:
        cfg = checkpoint_config(ckpt["config"])
        representation = representation_from_dict(ckpt["representation"])
        levels = NoiseLevels.from_dict(ckpt["sigmas"], source=f"{path}: sigmas")
        # stored since conditional became a property of the model; older checkpoints: loss=cdsm
        cond_channels = int(ckpt.get("cond_channels", representation.channels if is_conditional(cfg) else 0))
        model = build_score_model(cfg.model, representation.channels, cond_channels=cond_channels)
        model.load_state_dict(ckpt["ema" if ema else "model"])
    except (KeyError, RuntimeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(
            f"{path} is incomplete or does not match this scoreaudio version "
            f"({type(e).__name__}: {' '.join(str(e).split())[:160]})"
        ) from None
    model.to(device).eval().requires_grad_(False)
    return Pretrained(model, cfg, representation, levels, int(ckpt.get("step", 0)), path, device)


def init_weights(
    model: torch.nn.Module, source: Union[str, Path], representation, cond_channels: int
) -> NoiseLevels:
    """Load the EMA weights of ``source`` (what :func:`load_pretrained` takes) into ``model`` to
    fine-tune it (``train.init_from``); returns the source's noise levels, which the run keeps:
    the network learned its levels relative to them (sigma_data, sigma_max).

    Raises:
        ConfigError: the source was trained on another representation or conditioning, or its
            network has other shapes than ``model`` (one line, naming the source's model preset).
    """
    pre = load_pretrained(source, device="cpu")
    if pre.representation.to_dict() != representation.to_dict():
        raise ConfigError(
            f"train.init_from={source}: it was trained on another representation "
            f"({pre.representation.to_dict()}); use its representation settings"
        )
    if pre.model.cond_channels != cond_channels:
        raise ConfigError(
            f"train.init_from={source}: it has {pre.model.cond_channels} conditioning channels, this "
            f"recipe {cond_channels}; fine-tune a {'conditional' if pre.conditional else 'prior'} "
            f"model with a recipe of that kind"
        )
    try:
        model.load_state_dict(pre.model.state_dict())
    except RuntimeError:
        raise ConfigError(
            f"train.init_from={source}: its network does not fit this recipe's; use "
            f"model={pre.cfg.model.get('preset', '?')} (and its overrides)"
        ) from None
    return pre.levels


# --------------------------------------------------------------------------------------------
# Command line: scoreaudio export CHECKPOINT OUT.safetensors
# --------------------------------------------------------------------------------------------
def configure_parser(p) -> None:
    p.add_argument("checkpoint", help="checkpoint file or run directory")
    p.add_argument("out", help="the .safetensors file to write")
    p.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16, half the size)")
    p.add_argument("--live", action="store_true", help="export the live weights instead of the EMA")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def run_cli(args) -> int:
    if Path(args.out).suffix != ".safetensors":
        raise ConfigError(f"the output must end in .safetensors, got '{args.out}'")
    if Path(args.out).exists() and not args.overwrite:
        raise ConfigError(f"'{args.out}' exists; pass --overwrite to replace it, or another path")
    out = export_weights(
        args.checkpoint, args.out, dtype=torch.float32 if args.fp32 else torch.float16, ema=not args.live
    )
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB); use it with --checkpoint {out}")
    return 0
