#!/usr/bin/env python3
"""Measure how fast scoreaudio trains, generates and denoises, as ratios that survive a busy machine.

    python tools/benchmark.py matmul train sample denoise scale [--presets tiny,small] [--device cpu|cuda]
                              [--quick] [--compile] [--ab layout,sync] [--checkpoint RUN_OR_PT]
                              [--json out.json] [--markdown out.md] [--update-readme [--readme FILE.md]]

--update-readme rewrites the tool-written tables of docs/performance.md (or of --readme FILE.md).

The suites, how the numbers are made, the outputs, and which module does what: the package
``tools/bench`` (its ``__init__.py``). This file is only the entry point; it is also what every
isolated worker process runs (``--worker``).
"""

from __future__ import annotations

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
for _path in (TOOLS.parent, TOOLS):  # run from a checkout without installing: scoreaudio, then bench
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
