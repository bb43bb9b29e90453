"""tools/generation_table.py: the table from `scoreaudio evaluate --generated` results goes between
its block's markers in docs/benchmarks.md by default (never README.md), or in the file --readme names."""

from __future__ import annotations

import importlib.util
import json

from conftest import REPO

INTRO = "# project\n\nintro\n\n"
SETS = {
    "n_files": 8,
    "voiced_share": 0.5,
    "pause_share": 0.25,
    "spectral_flatness": 0.125,
    "dnsmos_sig": 2.0,
    "dnsmos_bak": 2.5,
    "dnsmos_ovrl": 1.75,
    "frechet_logmel": 1234.0,
}


def _tool():
    spec = importlib.util.spec_from_file_location("generation_table", REPO / "tools" / "generation_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _checkout(tmp_path, monkeypatch, tool):
    repo = tmp_path / "checkout"
    (repo / "docs").mkdir(parents=True)
    readme, docs = repo / "README.md", repo / "docs" / "benchmarks.md"
    readme.write_text(INTRO + "## Usage\n")
    body = "".join(
        f"{s}\nold {name}\n{e}\n\n"
        for name in ("generation-quality", "generation-samplers")
        for s, e in [tool.markers(name)]
    )
    docs.write_text(INTRO + body + "the end\n")
    monkeypatch.setattr(tool, "REPO", repo)
    result = tmp_path / "gen.json"
    result.write_text(json.dumps({"generated": SETS, "reference": SETS, "white_noise": SETS}))
    return readme, docs, f"my model={result}"


def test_update_readme_writes_docs_benchmarks_not_the_readme(tmp_path, monkeypatch):
    tool = _tool()
    readme, docs, arg = _checkout(tmp_path, monkeypatch, tool)
    assert tool.main([arg, "--update-readme"]) == 0
    text = docs.read_text()
    assert "old generation-quality" not in text and "| my model | 8 | 0.500 |" in text
    assert "old generation-samplers" in text  # the other block is left alone
    assert text.startswith(INTRO) and text.endswith("\n\nthe end\n")
    assert readme.read_text() == INTRO + "## Usage\n"
    assert tool.main([arg, "--update-readme", "--block", "generation-samplers"]) == 0
    text = docs.read_text()
    assert "old generation-samplers" not in text and text.count("| my model |") == 2
    assert readme.read_text() == INTRO + "## Usage\n"


def test_readme_option_and_missing_markers(tmp_path, monkeypatch, capsys):
    tool = _tool()
    readme, docs, arg = _checkout(tmp_path, monkeypatch, tool)
    before = docs.read_text()
    other = tmp_path / "other.md"
    start, end = tool.markers()
    other.write_text(f"{start}\n{end}\n")
    assert tool.main([arg, "--update-readme", "--readme", str(other)]) == 0
    assert "| my model |" in other.read_text() and docs.read_text() == before
    # a file without the block's markers is refused and left as it was
    assert tool.main([arg, "--update-readme", "--readme", str(readme)]) == 2
    assert "generation-quality" in capsys.readouterr().err
    assert readme.read_text() == INTRO + "## Usage\n"


def test_default_target_is_the_checkouts_docs_benchmarks():
    tool = _tool()
    for block in ("generation-quality", "generation-samplers"):
        args = tool.argparse.Namespace(readme=None, block=block)
        assert tool.target(args) == REPO / "docs" / "benchmarks.md"
