"""`scoreaudio info CHECKPOINT_OR_RECIPE [key=value ...]`: parameters, receptive field, input shape."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .errors import ScoreAudioError

#: What ``info`` takes, for its errors.
EXPECTED = ("a recipe YAML, a checkpoint (.pt), a run directory, a .safetensors file or a built-in "
            "model name")
RECIPE_SUFFIXES = (".yaml", ".yml")
WEIGHTS_SUFFIXES = (".pt", ".safetensors")


def target_kind(target: str) -> str:
    """``"model"`` (a checkpoint, run directory, .safetensors file or built-in model name) or
    ``"recipe"`` (a YAML file or a recipe name); ScoreAudioError saying what info takes when
    ``target`` is neither (a WAV, a text file, a typo), before anything is parsed."""
    from .config import PACKAGE_DIR
    from .pretrained import BUILTIN_MODELS

    path = Path(target)
    if path.is_dir():
        return "model"
    if path.is_file():
        if path.suffix.lower() in WEIGHTS_SUFFIXES:
            return "model"
        if path.suffix.lower() in RECIPE_SUFFIXES:
            return "recipe"
        raise ScoreAudioError(f"{target} is not something info describes: give {EXPECTED} "
                              f"({', '.join(BUILTIN_MODELS)})")
    if target in BUILTIN_MODELS:
        return "model"
    if not path.suffix and any((d / f"{target}.yaml").is_file() for d in (Path("recipes"), PACKAGE_DIR.parent / "recipes")):
        return "recipe"
    raise ScoreAudioError(f"{target}: no such file, folder or recipe; give {EXPECTED} ({', '.join(BUILTIN_MODELS)})")


def describe(target: str, overrides=()) -> dict:
    """Facts about the model of a checkpoint / run dir / .safetensors file / built-in model, or
    of the model a recipe would build (:func:`target_kind` says which)."""
    from .audio.representation import build_representation
    from .config import compose, is_conditional
    from .nn.build import build_score_model, describe_model

    path = Path(target)
    if target_kind(str(target)) == "model":
        from .pretrained import load_pretrained

        pre = load_pretrained(target, device="cpu")
        cfg, model, rep = pre.cfg, pre.model, pre.representation
        extra = {"checkpoint": str(pre.path), "step": pre.step, "sigmas": pre.sigmas}
    else:
        if not path.is_file() and (Path("recipes") / f"{target}.yaml").is_file():
            target = Path("recipes") / f"{target}.yaml"  # a recipe of the current folder by name
        cfg = compose(target, overrides)
        rep = build_representation(cfg.representation)
        cond = rep.channels if is_conditional(cfg) else 0
        model = build_score_model(cfg.model, rep.channels, cond_channels=cond)
        extra = {"recipe": str(target)}
    facts = describe_model(model, cfg.model, rep.channels, int(cfg.data.sample_rate),
                           int(cfg.representation.hop_length))
    return {**extra, "representation": cfg.representation.kind, "sample_rate": int(cfg.data.sample_rate), **facts}


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a checkpoint (.pt), a run directory, a .safetensors file, a built-in "
                                  "model name (default) or a recipe YAML")
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
