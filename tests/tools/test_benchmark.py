"""tools/benchmark.py (the package tools/bench) runs end to end on the tiny presets (--quick sizes,
in-process) and produces tables and JSON with every field; no test asserts a timing."""

from __future__ import annotations

import json
import math
import mmap
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO

# tools/ is not installed: like the tool scripts, put it on the path and import the package `bench`
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

from bench import cli, markdown, memory, readme
from bench.runner import run_suites
from bench.settings import Settings
from bench.stats import fit_exponent, median, pair_ratio
from bench.suites import SUITES
from bench.suites import denoise as denoise_suite
from bench.workloads import eval_model, set_layout

REQUIRED = {
    "matmul": ["dtype", "n", "gflops_median", "gflops_max", "spread"],
    "train": [
        "backbone",
        "preset",
        "params",
        "batch",
        "seconds",
        "precision",
        "step_s",
        "audio_s_per_s",
        "examples_per_s",
        "gflop_per_step",
        "achieved_gflops",
        "matmul_gflops",
        "utilisation",
        "peak_mem_mb",
        "mem_growth_mb",
        "layout_speedup",
        "sync_speedup",
    ],
    "sample": [
        "backbone",
        "preset",
        "sampler",
        "nfe",
        "batch",
        "audio_s",
        "rtf",
        "wall_s",
        "measured_nfe",
        "extrapolated",
        "overhead",
        "utilisation",
        "gflop_per_eval",
    ],
    "denoise": ["model", "method", "seconds", "rtf", "peak_mem_mb", "mem_growth_mb", "audio_mb"],
    "scale": ["backbone", "axis", "batch", "seconds", "step_s", "matmul_equiv_gflop"],
}
FIT_REQUIRED = {"denoise": ["method", "time_exponent", "peak_mem_exponent"], "scale": ["axis", "exponent"]}
METADATA = [
    "date",
    "machine",
    "cpu_model",
    "cpu_count",
    "threads",
    "torch",
    "device",
    "device_name",
    "git_revision",
    "load_average",
    "settings",
]


def tiny_settings(**kw):
    """--quick shrunk further: tiny presets, one repeat, short inputs, in-process."""
    base = dict(
        presets=["tiny"],
        isolate=False,
        repeats=1,
        matmul_n=128,
        train_batch=1,
        train_seconds=0.1,
        sample_seconds=0.2,
        sample_batches=[1],
        nfes=[30, 100],
        sample_budget_s=0.3,
        denoise_seconds=[0.3, 0.6],
        denoise_steps=3,
        scale_seconds=[0.1, 0.2],
        scale_batches=[1, 2],
        ab=["layout", "sync"],
        log=lambda msg: None,
    )
    base.update(kw)
    return Settings.make("cpu", quick=True, **base)


def test_all_suites_run_and_report_every_field(tiny_run, tmp_path, capsys):
    s = tiny_settings(checkpoints=[str(tiny_run)])
    results = run_suites(list(SUITES), s)
    text = json.dumps(results, allow_nan=False)  # strict JSON: NaN/inf became null
    assert json.loads(text)["metadata"]["device"] == "cpu"
    for key in METADATA:
        assert key in results["metadata"], key
    assert list(results["suites"]) == list(SUITES)
    for name, fields in REQUIRED.items():
        res = results["suites"][name]
        assert not res.get("error"), (name, res.get("error"))
        assert res["rows"], name
        for row in res["rows"]:
            assert "error" not in row, (name, row["error"])
            if row.get("skipped"):
                continue
            for f in fields:
                assert f in row, (name, f)
        for f in FIT_REQUIRED.get(name, []):
            assert res["fits"] and all(f in fit for fit in res["fits"]), (name, f)
    train = results["suites"]["train"]["rows"]
    assert {r["backbone"] for r in train} == {"unet2d", "wavenet"}
    assert all(r["gflop_per_step"] > 0 and r["utilisation"] > 0 for r in train)
    sample = results["suites"]["sample"]["rows"]
    assert {r["sampler"] for r in sample} == {"ald", "pc", "heun"}
    assert any(r["extrapolated"] for r in sample)  # the 0.3 s budget forces the cap-and-extrapolate path
    assert {r["method"] for r in results["suites"]["denoise"]["rows"]} == {"tweedie", "posterior"}

    md = markdown.render_markdown(results)
    for name in SUITES:
        assert f"### {name}" in md
    assert "| model | params | batch |" in md and "utilisation" in md and "RTF @30 NFE" in md
    out = capsys.readouterr().out  # each suite printed its table as it finished
    assert "## train" in out and "|---|" in out


def test_cli_writes_json_markdown_and_the_perf_block_of_docs_performance(tmp_path, monkeypatch):
    """--update-readme writes the perf block into docs/performance.md of the checkout and leaves its
    README.md alone; --readme FILE sends it to FILE instead and leaves docs/performance.md alone."""
    repo = tmp_path / "checkout"
    (repo / "docs").mkdir(parents=True)
    readme_file, perf_file = repo / "README.md", repo / "docs" / "performance.md"
    readme_file.write_text("# project\n\nintro\n")
    perf_file.write_text("# Performance\n\nintro\n")
    monkeypatch.setattr(cli, "REPO", repo)
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    rc = cli.main(
        [
            "matmul",
            "--quick",
            "--device",
            "cpu",
            "--repeats",
            "1",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
            "--update-readme",
        ]
    )
    assert rc == 0
    data = json.loads(out_json.read_text())
    assert data["suites"]["matmul"]["rows"][0]["gflops_median"] > 0
    assert "### matmul" in out_md.read_text()
    assert readme_file.read_text() == "# project\n\nintro\n"  # not the perf block's file
    text = perf_file.read_text()
    assert text.startswith("# Performance\n\nintro\n")
    assert readme.PERF_START in text and readme.PERF_END in text and "## Performance" in text
    assert "### matmul" in text
    # re-rendering saved results measures nothing and gives the same tables; --readme writes elsewhere
    out_md2, other = tmp_path / "r2.md", tmp_path / "other.md"
    perf_file.write_text("# Performance\n\nunchanged\n")
    assert (
        cli.main(
            [
                "--from-json",
                str(out_json),
                "--markdown",
                str(out_md2),
                "--update-readme",
                "--readme",
                str(other),
            ]
        )
        == 0
    )
    assert out_md2.read_text() == out_md.read_text()
    assert "### matmul" in other.read_text() and readme.PERF_START in other.read_text()
    assert perf_file.read_text() == "# Performance\n\nunchanged\n"
    assert readme_file.read_text() == "# project\n\nintro\n"


def test_perf_block_default_target_is_docs_performance():
    assert cli.perf_target(cli.parse_args(["--update-readme"])) == REPO / "docs" / "performance.md"
    assert readme.HOMES["perf"] == Path("docs") / "performance.md"


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "no-reset"])
def test_peak_memory_sees_a_block_below_an_earlier_peak(monkeypatch, reset):
    """The CPU peak is the block's own where Linux lets the high-water mark be reset on entry; without
    the reset it is the process's peak, an upper bound. Either way the block's own pages are seen."""
    if not (Path("/proc/self/statm").is_file() and Path("/proc/self/status").is_file()):
        pytest.skip("reads the resident set and its high-water mark (VmHWM) from Linux /proc")
    if not reset:
        monkeypatch.setattr(memory, "reset_peak_rss", lambda: False)
    elif not memory.reset_peak_rss():
        pytest.skip("/proc/self/clear_refs is not writable here: the peak cannot be reset")
    big = bytearray(300 * 2**20)  # an earlier, higher peak of the process
    big[::4096] = b"x" * len(big[::4096])
    del big
    earlier_peak = memory.peak_rss_mb()
    tol = 5.0  # MB: the kernel's RSS counters are summed lazily over CPUs, reads are approximate
    with memory.PeakMemory(torch.device("cpu")) as mem:
        # fresh pages from the kernel: a bytearray can reuse heap pages earlier tests left resident,
        # and then the resident set does not grow at all
        small = mmap.mmap(-1, 40 * 2**20)
        for offset in range(0, len(small), 4096):
            small[offset] = 1
        inside = memory.rss_mb()  # the block's 40 MB, resident now
        small.close()
    assert mem.reset is reset
    # the block really grew the resident set (else nothing below would be checked) ...
    assert inside - mem.base > 30, (mem.base, inside)
    # ... and the measured peak and growth include it
    assert mem.peak >= inside - tol, (mem.peak, inside)
    assert mem.growth >= inside - mem.base - tol, (mem.growth, mem.base, inside)
    if reset:
        assert mem.growth < 200, mem.growth  # ... and not the earlier 300 MB peak
        assert mem.peak < earlier_peak - 100, (mem.peak, earlier_peak)
        assert mem.kind == "peak RSS during the block"
    else:  # the process's peak: the earlier 300 MB are in it, so it bounds the block's from above
        assert mem.peak >= earlier_peak - tol, (mem.peak, earlier_peak)
        assert mem.kind == "peak RSS of the process"


def test_update_readme_touches_only_the_marked_block(tmp_path):
    path = tmp_path / "README.md"
    before, after = "# title\n\ntext before\n\n", "\n\n## later section\ntext after\n"
    path.write_text(before + f"{readme.PERF_START}\nold table\n{readme.PERF_END}" + after)
    readme.update_perf_section("new table", path)
    text = path.read_text()
    assert text.startswith(before) and text.endswith(after)
    assert "new table" in text and "old table" not in text
    readme.update_perf_section("newer table", path)
    assert path.read_text().count(readme.PERF_START) == 1 and "newer table" in path.read_text()


def test_readme_block_is_appended_or_refused_without_markers(tmp_path):
    """benchmark.py adds its perf block at the end of a README without one; the other tools' blocks
    must already be placed, so a README without their markers is an error and stays untouched."""
    path = tmp_path / "README.md"
    path.write_text("# title\n\n")
    readme.update_perf_section("table", path)
    assert path.read_text() == f"# title\n\n{readme.PERF_START}\n## Performance\n\ntable\n{readme.PERF_END}\n"
    before = path.read_text()
    with pytest.raises(readme.MarkersMissing):
        readme.update_readme(path, "x", "<!-- a:start -->", "<!-- a:end -->")
    assert path.read_text() == before
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left nothing behind


def test_fit_exponent_and_helpers():
    xs = [1.0, 2.0, 4.0, 8.0]
    assert fit_exponent(xs, [3 * x for x in xs]) == pytest.approx(1.0)
    assert fit_exponent(xs, [5 * x**2 for x in xs]) == pytest.approx(2.0)
    assert fit_exponent(xs, [7.0] * 4) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(fit_exponent([1.0], [1.0]))
    assert pair_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]) == pytest.approx(2.0)
    assert median([3.0, float("nan"), 1.0, 2.0]) == 2.0
    table = markdown.md_table([{"a": 1.5, "b": 0.25}], [("a", "A"), ("b", "B"), ("c", "C")])
    assert table.splitlines()[0] == "| A | B |"


def test_denoise_suite_skips_cleanly_without_the_denoiser(monkeypatch):
    monkeypatch.setitem(sys.modules, "scoreaudio.denoise", None)  # import now raises ImportError
    res = denoise_suite.run(tiny_settings())
    assert res["rows"] == [] and "skipped" in res["skipped"] and "SpeechDenoiser" in res["skipped"]


@pytest.mark.parametrize("preset,shape", [("unet2d_tiny", (2, 2, 40, 21)), ("wavenet_tiny", (2, 1, 999))])
def test_layout_variants_compute_the_same_function(preset, shape):
    """The benchmark's --ab layout switch (channels-last activations on the CPU) is performance-only."""
    backbone = preset.split("_")[0]
    _, _, model = eval_model(backbone, "tiny", torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():  # the output layers start at zero: give every layer weight
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2 / p[0].numel() ** 0.5)
    x = torch.randn(shape, generator=g)
    sigma = torch.tensor([0.05, 3.0])
    outs = []
    for layout in (False, True, None):
        set_layout(model, layout)
        with torch.inference_mode():
            outs.append(model(x, sigma))
    set_layout(model, None)
    for out in outs[1:]:
        assert out.shape == outs[0].shape
        assert torch.allclose(out, outs[0], rtol=1e-4, atol=1e-5)
