"""Write the generation-quality table of docs/benchmarks.md from ``scoreaudio evaluate --generated`` results.

    python tools/generation_table.py "quickstart (150 steps)=gen_qs.json" "..." --out table.md [--update-readme]

Each argument is ``LABEL=RESULT.json``; the table has one row per result (its generated set) and
the first result's reference and white-noise rows. With ``--update-readme`` the table replaces
what lies between ``<!-- generation-quality:start -->`` and ``<!-- generation-quality:end -->``
in docs/benchmarks.md (or the file ``--readme`` names), so the numbers there are never typed by
hand; ``--block NAME`` writes between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` instead
(a second table: ``generation-samplers``).
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
if str(TOOLS) not in sys.path:  # the shared marked-block helper (tools/bench)
    sys.path.insert(0, str(TOOLS))

from bench.readme import MarkersMissing, home, update_readme
from bench.readme import markers as _markers

from scoreaudio.generation_metrics import comparison_table

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- generation-quality:start -->", "<!-- generation-quality:end -->"


def markers(name: str = "generation-quality") -> tuple:
    """The (start, end) marker lines of block ``name``."""
    return _markers(name)


def target(args: argparse.Namespace) -> Path:
    """The file --update-readme writes: ``--readme``, else the file of this checkout that holds
    block ``--block`` (docs/benchmarks.md; :data:`bench.readme.HOMES`)."""
    return Path(args.readme) if args.readme else home(args.block, REPO)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", metavar="LABEL=RESULT.json")
    p.add_argument("--out", default=None, help="also write the table to this Markdown file")
    p.add_argument(
        "--update-readme",
        action="store_true",
        help="put the table between the block's markers in docs/benchmarks.md (or --readme)",
    )
    p.add_argument("--block", default="generation-quality", help="marker name (default: %(default)s)")
    p.add_argument(
        "--readme",
        default=None,
        metavar="FILE.md",
        help="the Markdown file --update-readme writes (default: docs/benchmarks.md)",
    )
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
            update_readme(target(args), table, *markers(args.block))
        except MarkersMissing as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
