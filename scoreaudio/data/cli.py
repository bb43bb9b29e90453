"""`scoreaudio data info|check RECIPE [key=value ...]`: what a recipe's dataset holds, and whether it reads."""

from __future__ import annotations

import argparse

from ..config import compose


def configure_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="per split: utterances, hours, sample rates, speakers")
    check = sub.add_parser("check", help="read every file once; list unreadable, empty, silent or NaN files")
    for q in (info, check):
        q.add_argument("recipe", help="recipe YAML or name (e.g. recipes/ljspeech.yaml)")
        q.add_argument(
            "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.root=PATH"
        )


def run_cli(args: argparse.Namespace) -> int:
    from .check import data_check, data_info

    cfg = compose(args.recipe, args.overrides)
    if args.action == "info":
        print(data_info(cfg))
        return 0
    table, n_bad = data_check(cfg)
    print(table)
    return 1 if n_bad else 0
