"""`scoreaudio info CHECKPOINT_OR_RECIPE [key=value ...]`: parameters, receptive field, input shape."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .errors import ScoreAudioError


def describe(target: str, overrides=()) -> dict:
    """Facts about the model of a checkpoint / run dir, or of the model a recipe would build."""
    from .audio.representation import build_representation
    from .config import compose, is_conditional
    from .nn.build import build_score_model, describe_model

    path = Path(target)
    if path.suffix == ".pt" or path.is_dir():
        from .pretrained import load_pretrained

        pre = load_pretrained(path, device="cpu")
        cfg, model, rep = pre.cfg, pre.model, pre.representation
        extra = {"checkpoint": str(pre.path), "step": pre.step, "sigmas": pre.sigmas}
    else:
        cfg = compose(target, overrides)
        rep = build_representation(cfg.representation)
        cond = rep.channels if is_conditional(cfg) else 0
        model = build_score_model(cfg.model, rep.channels, cond_channels=cond)
        extra = {"recipe": str(target)}
    facts = describe_model(model, cfg.model, rep.channels, int(cfg.data.sample_rate),
                           int(cfg.representation.hop_length))
    return {**extra, "representation": cfg.representation.kind, "sample_rate": int(cfg.data.sample_rate), **facts}


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a checkpoint (.pt), a run directory, or a recipe YAML")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (recipes only)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run_cli(args: argparse.Namespace) -> int:
    if not Path(args.target).exists() and not (Path("recipes") / f"{args.target}.yaml").exists():
        raise ScoreAudioError(f"{args.target}: no such checkpoint, run directory or recipe")
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
