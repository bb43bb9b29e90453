"""`python -m scoreaudio.train RECIPE [key=value ...]` and `scoreaudio train`: the command line of
:func:`scoreaudio.train.train` (resuming with the saved config, timing, what to run next)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import torch.distributed as dist

from .config import is_conditional, to_yaml
from .resume import continue_command, resume_config
from .train import train
from .utils.logging import log

__all__ = ["configure_parser", "main", "run_cli"]


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="recipe YAML (e.g. recipes/quickstart.yaml) or a recipe name")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. train.steps=1000 data.root=/data/LJSpeech-1.1 model=unet2d_tiny",
    )
    p.add_argument("--print-config", action="store_true", help="print the composed config and exit")


def run_cli(args: argparse.Namespace) -> int:
    cfg, resuming = resume_config(args.recipe, args.overrides)
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    t0 = time.perf_counter()
    command = (
        continue_command(args.recipe, args.overrides, Path(cfg.train.run_dir)) if cfg.train.run_dir else None
    )
    run_dir = train(cfg, command=command)
    if int(os.environ.get("RANK", "0")) == 0:
        minutes = (time.perf_counter() - t0) / 60
        log(f"done in {minutes:.1f} min. Run directory: {run_dir}")
        generate = (
            "" if is_conditional(cfg) else f"  scoreaudio generate --checkpoint {run_dir} --out samples/\n"
        )
        log(
            "next:\n"
            + generate
            + f"  python -c \"from scoreaudio import SpeechDenoiser; den = SpeechDenoiser.from_pretrained('{run_dir}'); "
            f"den.denoise_file('noisy.wav', 'clean.wav')\"\n"
            f"  scoreaudio denoise noisy.wav -o denoised/ --checkpoint {run_dir}"
        )
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .cli import run

    parser = argparse.ArgumentParser(
        prog="python -m scoreaudio.train", description="Train a score model from a recipe."
    )
    configure_parser(parser)
    args = parser.parse_args(argv)
    try:
        return run(run_cli, args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
