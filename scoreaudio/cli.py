"""The `scoreaudio` command line: thin subcommands over the Python API.

Each subcommand lives in the module that does the work and exposes two functions,
``configure_parser(parser)`` and ``run_cli(args) -> int``; this file only routes to them and
imports them lazily, so ``scoreaudio --help`` is fast and one broken extra never breaks the rest.
User errors (:class:`~scoreaudio.errors.ScoreAudioError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import ScoreAudioError

#: subcommand -> (module, one-line help)
COMMANDS = {
    "train": ("scoreaudio.train_cli", "train a score model from a recipe"),
    "generate": ("scoreaudio.generation", "sample WAV files from a checkpoint"),
    "denoise": ("scoreaudio.denoise_cli", "denoise audio files or folders with a checkpoint"),
    "evaluate": ("scoreaudio.evaluate", "score enhanced audio against clean references"),
    "data": ("scoreaudio.data.cli", "inspect and check the dataset a recipe names"),
    "info": ("scoreaudio.info", "describe a checkpoint or a recipe's model"),
    "export": ("scoreaudio.pretrained", "write a checkpoint's weights as a small .safetensors file"),
    "report": ("scoreaudio.report", "write an HTML page with players and spectrograms"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scoreaudio",
        description="Score-based (diffusion) models of speech: train, generate, denoise.",
        epilog="Run 'scoreaudio COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"scoreaudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Parsers are configured lazily: only the chosen command's module is imported.
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    command = argv[0]
    if command not in COMMANDS:
        # Lets argparse print --help/--version or its usual "invalid choice" message.
        parser.parse_args(argv)
        return 0
    module_name, help_text = COMMANDS[command]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("scoreaudio"):
            print(f"error: 'scoreaudio {command}' is not available in this version", file=sys.stderr)
            return 2
        raise
    sub = argparse.ArgumentParser(prog=f"scoreaudio {command}", description=help_text)
    module.configure_parser(sub)
    args = sub.parse_args(argv[1:])
    return run(module.run_cli, args)


def run(func, args) -> int:
    """Call a subcommand, turning user errors and Ctrl-C into one line and an exit status."""
    try:
        return int(func(args) or 0)
    except ScoreAudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
