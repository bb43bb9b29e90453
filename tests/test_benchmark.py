"""tools/benchmark.py runs end to end on the tiny presets (--quick sizes, in-process) and produces
tables and JSON with every field; no test asserts a timing."""
from __future__ import annotations

import importlib.util
import json
import math
import mmap
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

REQUIRED = {
    "matmul": ["dtype", "n", "gflops_median", "gflops_max", "spread"],
    "train": ["backbone", "preset", "params", "batch", "seconds", "precision", "step_s", "audio_s_per_s",
              "examples_per_s", "gflop_per_step", "achieved_gflops", "matmul_gflops", "utilisation",
              "peak_mem_mb", "mem_growth_mb", "layout_speedup", "sync_speedup"],
    "sample": ["backbone", "preset", "sampler", "nfe", "batch", "audio_s", "rtf", "wall_s", "measured_nfe",
               "extrapolated", "overhead", "utilisation", "gflop_per_eval"],
    "denoise": ["model", "method", "seconds", "rtf", "peak_mem_mb", "mem_growth_mb", "audio_mb"],
    "scale": ["backbone", "axis", "batch", "seconds", "step_s", "matmul_equiv_gflop"],
}
FIT_REQUIRED = {"denoise": ["method", "time_exponent", "peak_mem_exponent"], "scale": ["axis", "exponent"]}
METADATA = ["date", "machine", "cpu_model", "cpu_count", "threads", "torch", "device", "device_name",
            "git_revision", "load_average", "settings"]


@pytest.fixture(scope="module")
def bench():
    path = REPO / "tools" / "benchmark.py"
    spec = importlib.util.spec_from_file_location("scoreaudio_tools_benchmark", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


def tiny_settings(bench, **kw):
    """--quick shrunk further: tiny presets, one repeat, short inputs, in-process."""
    base = dict(presets=["tiny"], isolate=False, repeats=1, matmul_n=128, train_batch=1, train_seconds=0.1,
                sample_seconds=0.2, sample_batches=[1], nfes=[30, 100], sample_budget_s=0.3,
                denoise_seconds=[0.3, 0.6], denoise_steps=3, scale_seconds=[0.1, 0.2], scale_batches=[1, 2],
                ab=["layout", "sync"], log=lambda msg: None)
    base.update(kw)
    return bench.Settings.make("cpu", quick=True, **base)


def test_all_suites_run_and_report_every_field(bench, tiny_run, tmp_path, capsys):
    s = tiny_settings(bench, checkpoints=[str(tiny_run)])
    results = bench.run_suites(list(bench.SUITES), s)
    text = json.dumps(results, allow_nan=False)  # strict JSON: NaN/inf became null
    assert json.loads(text)["metadata"]["device"] == "cpu"
    for key in METADATA:
        assert key in results["metadata"], key
    assert list(results["suites"]) == list(bench.SUITES)
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

    md = bench.render_markdown(results)
    for name in bench.SUITES:
        assert f"### {name}" in md
    assert "| model | params | batch |" in md and "utilisation" in md and "RTF @30 NFE" in md
    out = capsys.readouterr().out  # each suite printed its table as it finished
    assert "## train" in out and "|---|" in out


def test_cli_writes_json_markdown_and_readme_block(bench, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text("# project\n\nintro\n")
    monkeypatch.setattr(bench, "update_readme", lambda md, _f=bench.update_readme: _f(md, readme))
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    rc = bench.main(["matmul", "--quick", "--device", "cpu", "--repeats", "1", "--json", str(out_json),
                     "--markdown", str(out_md), "--update-readme"])
    assert rc == 0
    data = json.loads(out_json.read_text())
    assert data["suites"]["matmul"]["rows"][0]["gflops_median"] > 0
    assert "### matmul" in out_md.read_text()
    text = readme.read_text()
    assert text.startswith("# project\n\nintro\n")
    assert bench.PERF_START in text and bench.PERF_END in text and "## Performance" in text
    # re-rendering saved results measures nothing and gives the same tables
    out_md2 = tmp_path / "r2.md"
    assert bench.main(["--from-json", str(out_json), "--markdown", str(out_md2)]) == 0
    assert out_md2.read_text() == out_md.read_text()


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "no-reset"])
def test_peak_memory_sees_a_block_below_an_earlier_peak(bench, monkeypatch, reset):
    """The CPU peak is the block's own where Linux lets the high-water mark be reset on entry; without
    the reset it is the process's peak, an upper bound. Either way the block's own pages are seen."""
    if not Path("/proc/self/statm").is_file():
        pytest.skip("reads the resident set from Linux /proc")
    if not reset:
        monkeypatch.setattr(bench, "reset_peak_rss", lambda: False)
    elif not bench.reset_peak_rss():
        pytest.skip("/proc/self/clear_refs is not writable here: the peak cannot be reset")
    big = bytearray(300 * 2 ** 20)  # an earlier, higher peak of the process
    big[:: 4096] = b"x" * len(big[:: 4096])
    del big
    with bench.PeakMemory(torch.device("cpu")) as mem:
        # fresh pages from the kernel: a bytearray can reuse heap pages earlier tests left resident,
        # and then the resident set does not grow at all
        small = mmap.mmap(-1, 40 * 2 ** 20)
        for offset in range(0, len(small), 4096):
            small[offset] = 1
        small.close()
    assert mem.reset is reset
    assert mem.growth > 20, (mem.base, mem.peak)  # the block's 40 MB
    if reset:
        assert mem.growth < 200, mem.growth  # ... and not the earlier 300 MB peak
        assert mem.kind == "peak RSS during the block"
    else:
        assert mem.kind == "peak RSS of the process"


def test_update_readme_touches_only_the_marked_block(bench, tmp_path):
    readme = tmp_path / "README.md"
    before, after = "# title\n\ntext before\n\n", "\n\n## later section\ntext after\n"
    readme.write_text(before + f"{bench.PERF_START}\nold table\n{bench.PERF_END}" + after)
    bench.update_readme("new table", readme)
    text = readme.read_text()
    assert text.startswith(before) and text.endswith(after)
    assert "new table" in text and "old table" not in text
    bench.update_readme("newer table", readme)
    assert readme.read_text().count(bench.PERF_START) == 1 and "newer table" in readme.read_text()


def test_fit_exponent_and_helpers(bench):
    xs = [1.0, 2.0, 4.0, 8.0]
    assert bench.fit_exponent(xs, [3 * x for x in xs]) == pytest.approx(1.0)
    assert bench.fit_exponent(xs, [5 * x ** 2 for x in xs]) == pytest.approx(2.0)
    assert bench.fit_exponent(xs, [7.0] * 4) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(bench.fit_exponent([1.0], [1.0]))
    assert bench.pair_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]) == pytest.approx(2.0)
    assert bench.median([3.0, float("nan"), 1.0, 2.0]) == 2.0
    table = bench.md_table([{"a": 1.5, "b": 0.25}], [("a", "A"), ("b", "B"), ("c", "C")])
    assert table.splitlines()[0] == "| A | B |"


def test_denoise_suite_skips_cleanly_without_the_denoiser(bench, monkeypatch):
    monkeypatch.setitem(sys.modules, "scoreaudio.denoise", None)  # import now raises ImportError
    res = bench.suite_denoise(tiny_settings(bench))
    assert res["rows"] == [] and "skipped" in res["skipped"] and "SpeechDenoiser" in res["skipped"]


@pytest.mark.parametrize("preset,shape", [("unet2d_tiny", (2, 2, 40, 21)), ("wavenet_tiny", (2, 1, 999))])
def test_layout_variants_compute_the_same_function(bench, preset, shape):
    """The benchmark's --ab layout switch (channels-last activations on the CPU) is performance-only."""
    backbone = preset.split("_")[0]
    _, _, model = bench.eval_model(backbone, "tiny", torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():  # the output layers start at zero: give every layer weight
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2 / p[0].numel() ** 0.5)
    x = torch.randn(shape, generator=g)
    sigma = torch.tensor([0.05, 3.0])
    outs = []
    for layout in (False, True, None):
        bench._layout(model, layout)
        with torch.inference_mode():
            outs.append(model(x, sigma))
    bench._layout(model, None)
    for out in outs[1:]:
        assert out.shape == outs[0].shape
        assert torch.allclose(out, outs[0], rtol=1e-4, atol=1e-5)
