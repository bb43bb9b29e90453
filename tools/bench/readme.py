"""Replacing a marked block of README.md, so tool-written numbers are never typed by hand.

A block is whatever lies between a start and an end marker line (HTML comments, invisible once
rendered). The tools that write one (tools/benchmark.py, tools/benchmark_denoise.py,
tools/generation_table.py) all go through :func:`update_readme`: the same replacement, and an
atomic write, so a run that stops half-way never leaves a truncated README.
"""
from __future__ import annotations

from pathlib import Path

from bench.files import write_text_atomic

PERF_START, PERF_END = "<!-- perf:start -->", "<!-- perf:end -->"


class MarkersMissing(ValueError):
    """The README has no start marker followed by an end marker."""


def replace_block(text: str, block: str, start: str, end: str) -> str:
    """``text`` with what lies between the first ``start`` and the first ``end`` marker replaced by
    ``block`` (one newline after ``start``, one before ``end``); :class:`MarkersMissing` when either
    marker is absent or ``end`` comes first."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise MarkersMissing(f"README has no {start} ... {end} block")
    return text[: i + len(start)] + "\n" + block.rstrip("\n") + "\n" + text[j:]


def update_readme(readme: Path, block: str, start: str, end: str, *, append_missing: bool = False) -> Path:
    """Put ``block`` between the ``start`` and ``end`` markers of ``readme`` (a missing file reads as
    empty); nothing else in the file changes. Without the markers: with ``append_missing``, the
    markers and the block are appended after a blank line; else :class:`MarkersMissing`."""
    readme = Path(readme)
    text = readme.read_text() if readme.is_file() else ""
    try:
        text = replace_block(text, block, start, end)
    except MarkersMissing:
        if not append_missing:
            raise
        body = block.rstrip("\n")
        text = text.rstrip("\n") + ("\n\n" if text else "") + f"{start}\n{body}\n{end}\n"
    write_text_atomic(readme, text)
    return readme


def update_perf_section(markdown: str, readme: Path) -> Path:
    """tools/benchmark.py's README section: a "## Performance" heading and ``markdown`` between the
    perf markers, which are appended at the end of the file when missing."""
    return update_readme(readme, f"## Performance\n\n{markdown.strip()}", PERF_START, PERF_END,
                         append_missing=True)
