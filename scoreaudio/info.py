"""`scoreaudio info CHECKPOINT_OR_RECIPE [key=value ...]`: parameters, receptive field, input shape."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict

from .errors import ScoreAudioError

if TYPE_CHECKING:
    from .nn.score_model import ScoreModel

#: What ``info`` takes, for its errors.
EXPECTED = "a recipe YAML, a checkpoint (.pt), a run directory, a .safetensors file or a built-in model name"
RECIPE_SUFFIXES = (".yaml", ".yml")
WEIGHTS_SUFFIXES = (".pt", ".safetensors")


def target_kind(target: str) -> str:
    """``"model"`` (a checkpoint, run directory, .safetensors file or built-in model name) or
    ``"recipe"`` (a YAML file or a recipe name); ScoreAudioError saying what info takes when
    ``target`` is neither (a WAV, a text file, a typo), before anything is parsed."""
    from .config import find_recipe
    from .pretrained import BUILTIN_MODELS

    path = Path(target)
    if path.is_dir():
        return "model"
    if path.is_file():
        if path.suffix.lower() in WEIGHTS_SUFFIXES:
            return "model"
        if path.suffix.lower() in RECIPE_SUFFIXES:
            return "recipe"
        raise ScoreAudioError(
            f"{target} is not something info describes: give {EXPECTED} ({', '.join(BUILTIN_MODELS)})"
        )
    if target in BUILTIN_MODELS:
        return "model"
    if find_recipe(target) is not None:
        return "recipe"
    raise ScoreAudioError(
        f"{target}: no such file, folder or recipe; give {EXPECTED} ({', '.join(BUILTIN_MODELS)})"
    )


def describe(target: str, overrides=()) -> dict:
    """Facts about the model of a checkpoint / run dir / .safetensors file / built-in model, or
    of the model a recipe would build (:func:`target_kind` says which)."""
    from .audio.representation import build_representation
    from .config import compose, find_recipe, is_conditional
    from .nn.build import build_score_model

    if target_kind(str(target)) == "model":
        from .pretrained import load_pretrained

        pre = load_pretrained(target, device="cpu")
        cfg, model, rep = pre.cfg, pre.model, pre.representation
        extra = {"checkpoint": str(pre.path), "step": pre.step, "sigmas": pre.levels.to_dict()}
    else:
        target = find_recipe(target) or target  # a recipe by name, here or in the package
        cfg = compose(target, overrides)
        rep = build_representation(cfg.representation)
        cond = rep.channels if is_conditional(cfg) else 0
        model = build_score_model(cfg.model, rep.channels, cond_channels=cond)
        extra = {"recipe": str(target)}
    facts = describe_model(
        model, cfg.model, rep.channels, int(cfg.data.sample_rate), int(cfg.representation.hop_length)
    )
    return {
        **extra,
        "representation": cfg.representation.kind,
        "sample_rate": int(cfg.data.sample_rate),
        **facts,
    }


def describe_model(
    model: "ScoreModel", model_cfg: Any, representation_channels: int, sample_rate: int, hop_length: int
) -> Dict[str, Any]:
    """Facts about a built model for ``scoreaudio info``.

    Args:
        model: the built :class:`ScoreModel`.
        model_cfg: its config (``model:`` section).
        representation_channels: channels of x (1 for waveform, 2 for a complex STFT).
        sample_rate: Hz, to state the receptive field in milliseconds.
        hop_length: STFT hop in samples (frames -> samples); ignored for waveform backbones.

    Returns:
        A dict with ``backbone``, ``preset``, ``parameterisation``, ``parameters``,
        ``receptive_field`` (samples, or (freq bins, frames) for spectrograms; None for the MLP),
        ``receptive_field_samples`` and ``receptive_field_ms`` (for spectrograms approximated as
        frames * hop_length, the time span the frames' hops cover), ``global_context`` (True when
        every output depends on the whole input: a U-Net with ``norm="global"``, whose GroupNorm
        statistics and attention span all frames; False for local ones, whose output frames see
        only the receptive field) and ``input_shape`` (a description).
    """
    from .nn.build import count_parameters

    rf = model.receptive_field
    cond = model.cond_channels
    channels = f"{representation_channels}" + (f" + {cond} cond" if cond else "")
    name = model_cfg.backbone
    samples = None
    if name == "wavenet":
        samples = int(rf)
        shape = f"(B, {channels}, T) waveform"
    elif name == "unet2d":
        samples = int(rf[1]) * int(hop_length)
        multiple = model.backbone.multiple
        shape = f"(B, {channels}, F, T) spectrogram, F and T padded to a multiple of {multiple}"
    elif name == "stft_unet":
        samples = int(rf)
        net = model.backbone
        shape = (
            f"(B, {channels}, T) waveform, any T; STFT'd inside (n_fft {net.n_fft}, hop "
            f"{net.hop_length}) for a (B, 2 x {channels}, F, frames) U-Net, frames padded to a "
            f"multiple of {net.unet.multiple}"
        )
    else:
        shape = f"(B, {channels}) vectors"
    return {
        "backbone": name,
        "preset": model_cfg.preset,
        "parameterisation": model.parameterisation,
        "sigma_data": float(model.sigma_data),
        "parameters": count_parameters(model),
        "receptive_field": rf,
        "receptive_field_samples": samples,
        "receptive_field_ms": None if samples is None else 1000.0 * samples / sample_rate,
        # stft_unet wraps its UNet2d as .unet; WaveNet and the MLP have no global context.
        "global_context": bool(
            getattr(getattr(model.backbone, "unet", model.backbone), "global_context", False)
        ),
        "input_shape": shape,
    }


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "target",
        help="a checkpoint (.pt), a run directory, a .safetensors file, a built-in "
        "model name (default) or a recipe YAML",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (recipes only)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run_cli(args: argparse.Namespace) -> int:
    facts = describe(args.target, args.overrides)
    if args.json:
        print(json.dumps(facts, indent=2, default=str))
        return 0
    width = max(len(k) for k in facts)
    for k, v in facts.items():
        if k == "parameters":
            v = f"{v:,} ({v / 1e6:.2f}M)"
        elif k == "receptive_field_ms" and v is not None:
            v = f"{v:.1f} ms"
        print(f"{k:<{width}}  {v}")
    return 0
