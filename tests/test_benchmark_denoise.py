"""tools/benchmark_denoise.py --quick: runs end to end and writes the table with every column."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, train_tiny

from scoreaudio.data.synthetic import synthesize_utterance


def _tool():
    path = REPO / "tools" / "benchmark_denoise.py"
    spec = importlib.util.spec_from_file_location("benchmark_denoise", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_align_undoes_a_delay():
    tool = _tool()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4000)
    for lag in (0, 37, -12):
        delayed = np.roll(x, lag)
        out, found = tool.align(delayed, x, 100)
        assert found == lag
        inner = slice(50, -50)
        np.testing.assert_allclose(out[inner], x[inner])


def _quick(tool, run, tmp_path, *extra):
    clean = tmp_path / "clean"
    clean.mkdir(exist_ok=True)
    for k in range(3):
        sf.write(clean / f"utt{k}.wav", synthesize_utterance(k, 9000 + k, 3.0, 16000), 16000)
    out = tmp_path / "results.md"
    assert tool.main(["--checkpoint", str(run), "--clean-dir", str(clean), "--quick", "--no-dnsmos",
                      "--noises", "white", "babble",
                      "--device", "cpu", "--out", str(out), *extra]) == 0
    return out.read_text()


def _row(text, system):
    row = next(line for line in text.splitlines() if line.startswith(f"| {system} |"))
    return [c.strip() for c in row.strip("|").split("|")][1:]


def test_quick_benchmark_writes_a_full_table(tiny_run, tmp_path):
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    pytest.importorskip("noisereduce")
    pytest.importorskip("pyroomacoustics")
    tool = _tool()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{tool.START}\nold table\n{tool.END}\nafter\n")
    text = _quick(tool, tiny_run, tmp_path, "--update-readme", "--readme", str(readme))
    header = next(line for line in text.splitlines() if line.startswith("| system | SI-SDR"))
    for col in tool.COLUMNS:
        assert col in header
    for system in ("noisy input", "noisereduce (default, non-stationary)", "noisereduce (stationary)",
                   "pyroomacoustics spectral subtraction", "pyroomacoustics iterative Wiener",
                   "scoreaudio tweedie (estimated noise level)", "scoreaudio tweedie (true noise level)",
                   "scoreaudio posterior (4 steps)"):
        cells = _row(text, system)
        assert len(cells) == len(tool.COLUMNS)
        assert all(c != "–" for c in cells[:4]), (system, cells)  # SI-SDR, SI-SDRi, PESQ, ESTOI present
    for key in ("date", "git revision", "machine", "checkpoint", "noise"):
        assert f"**{key}**" in text
    assert "conditional" not in text.split("| system |", 1)[1]  # an unconditional checkpoint
    assert "white 5 dB" in text and "babble 5 dB" in text and "pink" not in text.split("| system |")[2]
    r = readme.read_text()
    assert "old table" not in r and "| noisy input |" in r
    assert r.startswith("# x\n\nbefore\n") and r.endswith("after\n")


@pytest.mark.slow
def test_quick_benchmark_with_a_conditional_checkpoint(tmp_path):
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    tool = _tool()
    run = train_tiny(tmp_path / "cdsm", "loss=cdsm", "data.noise_mix.enabled=true")
    text = _quick(tool, run, tmp_path)
    assert len(_row(text, "scoreaudio conditional (4 steps)")) == len(tool.COLUMNS)
