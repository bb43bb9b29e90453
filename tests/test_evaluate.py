"""`scoreaudio evaluate` on a tiny folder pair."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf

from scoreaudio.data.synthetic import synthesize_utterance

SR = 16000


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    ref, est, noi = tmp_path / "clean", tmp_path / "enhanced", tmp_path / "noisy"
    for k, rel in enumerate(["a", "spk1/b", "spk1/c"]):
        clean = synthesize_utterance(k, 4000 + k, 3.0, SR)
        noisy = clean + 0.05 * rng.standard_normal(len(clean))
        enhanced = clean + 0.01 * rng.standard_normal(len(clean))
        for folder, x, ext in ((ref, clean, ".wav"), (noi, noisy, ".wav"), (est, enhanced, ".flac")):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(folder / f"{rel}{ext}", x, SR)
    sf.write(ref / "only_in_ref.wav", np.zeros(SR), SR)
    sf.write(ref / "silent.wav", np.zeros(SR), SR)
    sf.write(est / "silent.wav", 0.01 * rng.standard_normal(SR), SR)
    sf.write(noi / "silent.wav", 0.01 * rng.standard_normal(SR), SR)
    # an estimate at another rate (resampled to the reference's)
    clean = synthesize_utterance(4, 4010, 1.5, SR)
    sf.write(ref / "d.wav", clean, SR)
    from scoreaudio.audio.io import resample

    sf.write(est / "d.wav", resample(clean, SR, 48000), 48000)
    sf.write(noi / "d.wav", clean + 0.05 * rng.standard_normal(len(clean)), SR)
    return ref, est, noi


def test_evaluate_folder_pair_writes_csv_json_and_table(folders, tmp_path, capsys):
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    from scoreaudio.cli import main

    ref, est, noi = folders
    out = tmp_path / "res" / "results.csv"
    assert (
        main(
            ["evaluate", "--reference", str(ref), "--estimate", str(est), "--noisy", str(noi), "-o", str(out)]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "unmatched in reference: 1 file(s): only_in_ref" in captured.err
    assert "si_sdr_i" in captured.out and "95% interval" in captured.out
    with open(out, newline="") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"a", "spk1/b", "spk1/c", "d", "silent"}
    for name in ("a", "spk1/b", "spk1/c"):
        r = rows[name]
        assert float(r["si_sdr"]) > float(r["noisy_si_sdr"]) and float(r["si_sdr_i"]) > 5
        assert 1.0 <= float(r["noisy_pesq"]) < float(r["pesq"]) <= 4.7
        assert float(r["estoi"]) > float(r["noisy_estoi"]) and float(r["lsd"]) < float(r["noisy_lsd"])
    assert float(rows["d"]["si_sdr"]) > 40  # the 48 kHz copy of the reference, resampled back
    assert math.isnan(float(rows["silent"]["pesq"])) and "silent reference" in rows["silent"]["notes"]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["summary"]["si_sdr"]["n"] == 4 and meta["summary"]["pesq"]["ci_low"] is not None
    assert meta["unmatched"]["reference"] == ["only_in_ref"]
    assert "16000" in meta["resampling"]["pesq/estoi/dnsmos"] and meta["versions"]["pesq"]


def test_evaluate_without_the_extra_metrics_and_errors(folders, tmp_path):
    from scoreaudio.cli import main
    from scoreaudio.evaluate import evaluate

    ref, est, _ = folders
    res = evaluate(ref, est, metrics=["si_sdr", "lsd"])
    assert set(res.summary) == {"si_sdr", "lsd"} and res.summary["si_sdr"]["n"] == 4
    assert main(["evaluate", "--reference", str(ref), "--estimate", str(est), "--metrics", "bogus"]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", "--reference", str(ref), "--estimate", str(empty), "--metrics", "si_sdr"]) == 2


def test_a_silent_estimate_scores_minus_inf_and_the_summary_counts_it(folders, capsys):
    """A broken (silent) output must not flatter the summary: its SI-SDR is -inf, and values left
    out of a mean (NaN: not scorable, inf) are counted per metric and said on the terminal."""
    from scoreaudio.cli import main
    from scoreaudio.evaluate import evaluate, format_table

    ref, est, _ = folders
    sf.write(est / "a.flac", np.zeros(sf.info(ref / "a.wav").frames), SR)
    res = evaluate(ref, est, metrics=["si_sdr", "lsd"])
    row = {r["file"]: r for r in res.rows}["a"]
    assert row["si_sdr"] == -math.inf and "silent estimate" in row["notes"]
    s = res.summary["si_sdr"]
    assert (s["n"], s["n_inf"], s["n_nan"]) == (3, 1, 1)  # + "silent": a silent reference, NaN
    table = format_table(res.summary)
    assert "nan" in table.splitlines()[0] and "inf" in table.splitlines()[0]
    assert main(["evaluate", "--reference", str(ref), "--estimate", str(est), "--metrics", "si_sdr"]) == 0
    err = capsys.readouterr().err
    assert "si_sdr: 2 of 5 file(s) left out of the mean (1 NaN, 1 inf)" in err


def test_evaluate_output_refuses_to_overwrite_and_keeps_csv_and_json_apart(folders, tmp_path, capsys):
    from scoreaudio.cli import main

    ref, est, _ = folders
    args = ["evaluate", "--reference", str(ref), "--estimate", str(est), "--metrics", "si_sdr"]
    out = tmp_path / "scores.json"
    assert main(args + ["-o", str(out)]) == 0
    assert json.loads(out.read_text())["csv"] == "scores.csv"  # JSON where asked, the CSV beside it
    with open(tmp_path / "scores.csv", newline="") as f:
        assert {r["file"] for r in csv.DictReader(f)} >= {"a", "d"}
    precious = tmp_path / "precious.wav"
    sf.write(precious, np.zeros(100), SR)
    before = {p: p.read_bytes() for p in (out, tmp_path / "scores.csv", precious)}
    capsys.readouterr()
    for o in (out, tmp_path / "scores.csv"):  # exists: refused before any scoring
        assert main(args + ["-o", str(o)]) == 2
        err = capsys.readouterr().err
        assert "--overwrite" in err and len(err.strip().splitlines()) == 1
    for o in (precious, tmp_path / "new.wav"):  # an audio name for a CSV, existing or not
        assert main(args + ["-o", str(o), "--overwrite"]) == 2
        assert "give a .csv name" in capsys.readouterr().err
    assert not (tmp_path / "new.wav").exists()
    assert {p: p.read_bytes() for p in before} == before
    assert main(args + ["-o", str(out), "--overwrite"]) == 0
