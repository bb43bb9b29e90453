"""One self-contained HTML page for a run directory or a folder of WAVs (same as `scoreaudio report`).

    python tools/make_report.py runs/quickstart-20261129-120000            # -> that folder/report.html
    python tools/make_report.py samples/ -o samples.html

Players and spectrograms for every WAV (embedded), the manifest settings, and the loss curves of a
run directory. See scoreaudio/report.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

try:
    import scoreaudio  # noqa: F401
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoreaudio.cli import run
from scoreaudio.report import configure_parser, run_cli


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="make_report.py", description=__doc__.split("\n\n")[0])
    configure_parser(parser)
    return run(run_cli, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
