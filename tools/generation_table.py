"""Write the README's generation-quality table from ``scoreaudio evaluate --generated`` results.

    python tools/generation_table.py "quickstart (150 steps)=gen_qs.json" "..." --out table.md [--update-readme]

Each argument is ``LABEL=RESULT.json``; the table has one row per result (its generated set) and
the first result's reference and white-noise rows. With ``--update-readme`` the table replaces
what lies between ``<!-- generation-quality:start -->`` and ``<!-- generation-quality:end -->``
in README.md, so the numbers there are never typed by hand; ``--block NAME`` writes between
``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` instead (a second table).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import scoreaudio  # noqa: F401
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
TOOLS = Path(__file__).resolve().parent
if str(TOOLS) not in sys.path:  # the shared README-block helper (tools/bench)
    sys.path.insert(0, str(TOOLS))

from bench.readme import MarkersMissing, update_readme

from scoreaudio.generation_metrics import comparison_table

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- generation-quality:start -->", "<!-- generation-quality:end -->"


def markers(name: str = "generation-quality") -> tuple:
    """The (start, end) marker lines of README block ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", metavar="LABEL=RESULT.json")
    p.add_argument("--out", default=None, help="also write the table to this Markdown file")
    p.add_argument("--update-readme", action="store_true")
    p.add_argument("--block", default="generation-quality", help="README marker name (default: %(default)s)")
    p.add_argument("--readme", default=str(REPO / "README.md"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    labelled = []
    for item in args.results:
        label, eq, path = item.rpartition("=")
        if not eq or not label:
            print(f"error: {item!r} is not LABEL=RESULT.json", file=sys.stderr)
            return 2
        try:
            labelled.append((label, json.loads(Path(path).read_text())))
        except (OSError, json.JSONDecodeError) as e:
            print(f"error: cannot read {path}: {e}", file=sys.stderr)
            return 2
    table = comparison_table(labelled)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    if args.update_readme:
        try:
            update_readme(Path(args.readme), table, *markers(args.block))
        except MarkersMissing as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
