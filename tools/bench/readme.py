"""Replacing a marked block of a Markdown file, so tool-written numbers are never typed by hand.

A block is whatever lies between a start and an end marker line (HTML comments, invisible once
rendered). The tools that write one (tools/benchmark.py, tools/benchmark_denoise.py,
tools/generation_table.py) all go through :func:`update_readme`: the same replacement, and an
atomic write, so a run that stops half-way never leaves a truncated file.

:data:`HOMES` says which file of the checkout holds each block: the tools' default targets (their
``--readme`` option writes elsewhere, e.g. the built-in model's card).
"""

from __future__ import annotations

from pathlib import Path

from bench.files import write_text_atomic

PERF_START, PERF_END = "<!-- perf:start -->", "<!-- perf:end -->"

#: the README: install, the three uses, the built-in model and the short results table
README_DOC = Path("README.md")
#: speed, utilisation and memory (tools/benchmark.py)
PERF_DOC = Path("docs") / "performance.md"
#: denoising and generation quality (tools/benchmark_denoise.py, tools/generation_table.py)
BENCHMARKS_DOC = Path("docs") / "benchmarks.md"

#: block name (``<!-- NAME:start -->``) -> the file of the checkout that holds it, relative to its root
HOMES = {
    "perf": PERF_DOC,  # tools/benchmark.py --update-readme
    "denoise-benchmark": BENCHMARKS_DOC,  # tools/benchmark_denoise.py --update-readme: the report
    "denoise-summary": README_DOC,  # ... and its short table (overall rows, a few columns)
    "generation-quality": BENCHMARKS_DOC,  # tools/generation_table.py --update-readme
    "generation-samplers": BENCHMARKS_DOC,  # tools/generation_table.py --block generation-samplers
}


def markers(name: str) -> tuple:
    """The (start, end) marker lines of block ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def home(name: str, repo: Path) -> Path:
    """The file of checkout ``repo`` that holds block ``name`` (:data:`BENCHMARKS_DOC` for a name
    :data:`HOMES` does not list)."""
    return Path(repo) / HOMES.get(name, BENCHMARKS_DOC)


class MarkersMissing(ValueError):
    """The file has no start marker followed by an end marker."""


def read_block(text: str, start: str, end: str) -> str:
    """What lies between the first ``start`` and the first ``end`` marker of ``text`` (without the
    newlines next to the markers); :class:`MarkersMissing` when either is absent or ``end`` comes first."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise MarkersMissing(f"no {start} ... {end} block")
    return text[i + len(start) : j].strip("\n")


def replace_block(text: str, block: str, start: str, end: str) -> str:
    """``text`` with what lies between the first ``start`` and the first ``end`` marker replaced by
    ``block`` (one newline after ``start``, one before ``end``); :class:`MarkersMissing` when either
    marker is absent or ``end`` comes first."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise MarkersMissing(f"no {start} ... {end} block")
    return text[: i + len(start)] + "\n" + block.rstrip("\n") + "\n" + text[j:]


def update_readme(readme: Path, block: str, start: str, end: str, *, append_missing: bool = False) -> Path:
    """Put ``block`` between the ``start`` and ``end`` markers of the Markdown file ``readme`` (a
    missing file reads as empty); nothing else in the file changes. Without the markers: with
    ``append_missing``, the markers and the block are appended after a blank line; else
    :class:`MarkersMissing` (naming the file) and the file is left as it was."""
    readme = Path(readme)
    text = readme.read_text() if readme.is_file() else ""
    try:
        text = replace_block(text, block, start, end)
    except MarkersMissing:
        if not append_missing:
            raise MarkersMissing(f"{readme} has no {start} ... {end} block") from None
        body = block.rstrip("\n")
        text = text.rstrip("\n") + ("\n\n" if text else "") + f"{start}\n{body}\n{end}\n"
    write_text_atomic(readme, text)
    return readme


def update_perf_section(markdown: str, readme: Path) -> Path:
    """tools/benchmark.py's section (in :data:`PERF_DOC` by default): a "## Performance" heading and
    ``markdown`` between the perf markers, which are appended at the end of the file when missing."""
    return update_readme(
        readme, f"## Performance\n\n{markdown.strip()}", PERF_START, PERF_END, append_missing=True
    )
