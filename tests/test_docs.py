"""The documentation: every relative link of README.md, docs/*.md and the model card resolves (file
and heading); every tool-written block lives in the file its tool writes by default
(tools/bench/readme.py HOMES), once; the README's short results table is the summary of the report in
docs/benchmarks.md; the README's first screen shows the install, the uses, the built-in model, the
results and a picture; CI's test command is where .ci/run reads it."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from conftest import REPO

if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

from bench import readme as blocks  # noqa: E402

MODEL_CARD = REPO / "scoreaudio" / "models" / "denoiser_default.md"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), MODEL_CARD]
FENCE = re.compile(r"^```.*?^```[^\n]*$", re.M | re.S)
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|(?:src|href)=\"([^\"]+)\"")


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code (links there are not links)."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def _slugs(path: Path) -> set:
    """GitHub's anchors of the headings of Markdown file ``path`` (lower case, punctuation dropped,
    spaces to hyphens, repeats numbered)."""
    seen, out = {}, set()
    for line in _prose(path.read_text()).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m[1].strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(path: Path):
    for m in LINK.finditer(_prose(path.read_text())):
        yield m[1] or m[2]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(doc):
    assert doc.is_file(), doc
    bad = []
    for link in _links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # https:, mailto: ...
            continue
        target, _, anchor = link.partition("#")
        dest = (doc.parent / target).resolve() if target else doc
        if not dest.exists():
            bad.append(f"{link}: no file {target}")
        elif anchor and dest.suffix == ".md" and anchor not in _slugs(dest):
            bad.append(f"{link}: no heading #{anchor} in {target or doc.name}")
    assert not bad, f"{doc.relative_to(REPO)}: " + "; ".join(bad)


def test_every_block_lives_in_its_tools_default_file():
    """Each block's markers are in the file its tool writes by default, once, and in no other
    document (the model card has its own copy of the denoising report, written with --readme)."""
    found = {}
    for doc in DOCS:
        for name in re.findall(r"<!-- ([\w-]+):start -->", doc.read_text()):
            found.setdefault(name, []).append(doc)
    for name, home in blocks.HOMES.items():
        start, end = blocks.markers(name)
        text = (REPO / home).read_text()
        assert text.count(start) == 1 and text.count(end) == 1 and text.index(start) < text.index(end), name
        allowed = {REPO / home} | ({MODEL_CARD} if name == "denoise-benchmark" else set())
        assert set(found.pop(name)) <= allowed, (name, found)
    assert not found, f"blocks no tool writes: {found}"


def test_readme_results_table_is_the_summary_of_the_docs_report():
    spec = importlib.util.spec_from_file_location(
        "benchmark_denoise", REPO / "tools" / "benchmark_denoise.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    report = blocks.read_block((REPO / blocks.BENCHMARKS_DOC).read_text(), tool.START, tool.END)
    short = blocks.read_block((REPO / blocks.README_DOC).read_text(), tool.SUMMARY_START, tool.SUMMARY_END)
    assert short == tool.summary(report).strip("\n"), "run: python tools/benchmark_denoise.py --summary-only"
    for system in (
        "noisy input",
        "scoreaudio predictive",
        "scoreaudio refined",
        "DeepFilterNet3",
        "NSNet2",
        "RNNoise",
    ):
        assert f"| {system}" in short, system


def test_readme_first_screen():
    lines = (REPO / "README.md").read_text().splitlines()
    first = "\n".join(lines[:80])
    for needed in (
        "pip install -e .",
        "python -m scoreaudio.train",
        "scoreaudio generate",
        "scoreaudio denoise",
        "SpeechDenoiser.from_pretrained()",
        "(scoreaudio/models/denoiser_default.md)",
        "<!-- denoise-summary:end -->",
        "![",
        ".png)",
        "(docs/benchmarks.md",
        "(docs/performance.md",
        "(docs/architecture.md",
    ):
        assert needed in first, needed
    # .ci/run runs the line after "# 2." as the test command
    k = next(i for i, line in enumerate(lines) if line.startswith("# 2."))
    assert "python -m pytest" in lines[k + 1] and "ruff check" in lines[k + 1]
