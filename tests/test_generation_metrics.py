"""Generation measured as speech: voiced/pause share, flatness, Fréchet log-mel, `evaluate --generated`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from scoreaudio.data.synthetic import synthesize_utterance
from scoreaudio.generation_metrics import (
    EVAL_RATE,
    SETS,
    SUMMARY_KEYS,
    frame_rms,
    frechet_distance,
    frechet_of_frames,
    gaussian_fit,
    logmel_frames,
    markdown_table,
    power_spectrogram,
    score_generated,
    speech_measures,
    voiced_flags,
)

SR = EVAL_RATE
#: A corpus as small as the shared test fixtures' (tests/conftest.py TINY), so its cache is reused.
TINY_CORPUS = [
    "data.synthetic.train_utterances=12",
    "data.synthetic.valid_utterances=3",
    "data.synthetic.test_utterances=3",
    "data.synthetic.utterance_seconds=1.0",
]


def harmonic_tone(seconds: float, f0: float = 150.0, level: float = 0.1) -> np.ndarray:
    """A voice-like tone: ten harmonics of f0 falling as 1/h."""
    t = np.arange(int(seconds * SR)) / SR
    return level * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 11))


def write_utterances(folder, speakers, seconds: float = 1.5, first_index: int = 7000):
    folder.mkdir(parents=True, exist_ok=True)
    for k, spk in enumerate(speakers):
        sf.write(folder / f"utt_{k}.wav", synthesize_utterance(spk, first_index + k, seconds, SR), SR)
    return folder


# ---------------------------------------------------------------------------------------------
# Fréchet distance: closed forms
# ---------------------------------------------------------------------------------------------
def test_frechet_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 8))
    cov = a @ a.T + 0.1 * np.eye(8)
    mu = rng.standard_normal(8)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)


def test_frechet_of_shifted_unit_gaussians_is_squared_shift():
    m = np.array([1.0, -2.0, 0.5, 3.0])
    eye = np.eye(4)
    assert frechet_distance(np.zeros(4), eye, m, eye) == pytest.approx(float(m @ m), rel=1e-12)


def test_frechet_of_diagonal_covariances():
    a, b = np.array([1.0, 4.0, 0.25, 9.0]), np.array([4.0, 1.0, 0.25, 0.0])  # b singular
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    expected = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_matches_the_matrix_square_root_form():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 6)), rng.standard_normal((6, 6))
    c1, c2 = x @ x.T + 0.5 * np.eye(6), y @ y.T + 0.5 * np.eye(6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    direct = float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * np.real(sqrtm(c1 @ c2))))
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(direct, rel=1e-8)
    assert frechet_distance(mu2, c2, mu1, c1) == pytest.approx(direct, rel=1e-8)  # symmetric


def test_gaussian_fit_and_frame_pools():
    rng = np.random.default_rng(2)
    frames = rng.standard_normal((5000, 3)) * [1.0, 2.0, 3.0] + [1.0, 0.0, -1.0]
    mu, cov = gaussian_fit(frames)
    np.testing.assert_allclose(mu, [1.0, 0.0, -1.0], atol=0.1)
    np.testing.assert_allclose(np.diag(cov), [1.0, 4.0, 9.0], rtol=0.1)
    assert frechet_of_frames([frames[:2500]], [frames[2500:]]) < 0.05
    assert math.isnan(frechet_of_frames([frames[:1]], [frames]))  # one frame: no covariance
    with pytest.raises(ValueError):
        gaussian_fit(frames[:1])


# ---------------------------------------------------------------------------------------------
# Frame measures
# ---------------------------------------------------------------------------------------------
def test_frame_grids_agree():
    x = harmonic_tone(0.77)
    hop = 320
    n = 1 + len(x) // hop
    assert frame_rms(x, hop).shape == (n,)
    assert power_spectrogram(x, hop, hop).shape == (hop // 2 + 1, n)
    assert voiced_flags(x, SR, hop).shape == (n,)
    assert logmel_frames(x, SR).shape[1] == 64


def test_harmonic_tone_with_silences_is_voiced_with_the_right_pause_share():
    rng = np.random.default_rng(3)
    tone, gap = harmonic_tone(1.0), np.zeros(SR // 2)
    x = np.concatenate([gap, tone, gap, tone, gap])  # 1.5 s of 3.5 s silent
    x = x + 1e-5 * rng.standard_normal(len(x))  # a noise floor far below the -40 dB threshold
    m = speech_measures(x, SR)
    assert m["voiced_share"] > 0.9
    assert m["pause_share"] == pytest.approx(1.5 / 3.5, abs=0.03)
    assert m["spectral_flatness"] < 0.05


def test_white_noise_is_unvoiced_flat_and_without_pauses():
    x = 0.1 * np.random.default_rng(4).standard_normal(2 * SR)
    m = speech_measures(x, SR)
    assert m["voiced_share"] < 0.2
    assert m["pause_share"] == 0.0
    assert m["spectral_flatness"] > 0.45  # ~exp(-Euler gamma) = 0.56 for a periodogram of white noise


def test_silence_has_only_pauses_and_other_rates_are_resampled():
    m = speech_measures(np.zeros(SR), SR)
    assert m["pause_share"] == 1.0 and math.isnan(m["voiced_share"]) and math.isnan(m["spectral_flatness"])
    from scoreaudio.audio.io import resample

    x = harmonic_tone(1.0)
    m16, m48 = speech_measures(x, SR), speech_measures(resample(x, SR, 48000), 48000)
    assert m48["voiced_share"] == pytest.approx(m16["voiced_share"], abs=0.05)


def test_the_synthetic_corpus_scores_as_voiced_speech_with_pauses():
    for spk in range(3):
        m = speech_measures(synthesize_utterance(spk, 9000 + spk, 2.0, SR), SR)
        assert m["voiced_share"] > 0.7, m
        assert 0.05 < m["pause_share"] < 0.6, m
        assert m["spectral_flatness"] < 0.1, m


# ---------------------------------------------------------------------------------------------
# Sets and the command line
# ---------------------------------------------------------------------------------------------
def test_score_generated_places_speech_far_from_white_noise(tmp_path):
    gen = write_utterances(tmp_path / "gen", [0, 1, 2])
    ref = write_utterances(tmp_path / "ref", [3, 4, 5, 0], first_index=8000)
    r = score_generated(gen, ref, with_dnsmos=False)
    for name in SETS:
        assert set(SUMMARY_KEYS) <= set(r[name])
    assert (r["generated"]["n_files"], r["reference"]["n_files"], r["white_noise"]["n_files"]) == (3, 4, 4)
    assert r["generated"]["voiced_share"] > 0.7 and r["white_noise"]["voiced_share"] < 0.2
    assert r["white_noise"]["pause_share"] == 0.0 < r["generated"]["pause_share"]
    assert r["white_noise"]["spectral_flatness"] > 5 * r["generated"]["spectral_flatness"]
    assert r["white_noise"]["frechet_logmel"] > 10 * r["generated"]["frechet_logmel"]
    assert math.isnan(r["generated"]["dnsmos_ovrl"])
    assert len(r["per_file"]["generated"]) == 3
    table = markdown_table(r)
    assert table.count("\n") == 4 and "| white noise |" in table and "n/a" in table
    r2 = score_generated(gen, ref, with_dnsmos=False, max_files=2)
    assert r2["generated"]["n_files"] == 2 and r2["reference"]["n_files"] == 2


def test_cli_generated_mode_writes_json_and_refuses_to_overwrite(tmp_path, capsys):
    from scoreaudio.cli import main

    gen = write_utterances(tmp_path / "gen", [0, 1])
    ref = write_utterances(tmp_path / "ref", [2, 3], first_index=8000)
    out = tmp_path / "res" / "speech.json"
    argv = ["evaluate", "--generated", str(gen), "--reference", str(ref), "-o", str(out), "--no-dnsmos"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| generated |" in printed and "| reference |" in printed and "| white noise |" in printed
    data = json.loads(out.read_text())  # strict JSON: NaN written as null
    assert data["generated"]["n_files"] == 2 and data["generated"]["dnsmos_sig"] is None
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--overwrite" in err and "Traceback" not in err
    assert main(argv + ["--overwrite"]) == 0


@pytest.mark.parametrize("case", ["missing", "empty", "no_audio", "bad_reference", "with_estimate"])
def test_cli_generated_mode_bad_input_is_one_line(tmp_path, capsys, case):
    from scoreaudio.cli import main

    ref = write_utterances(tmp_path / "ref", [0], seconds=0.5)
    gen = tmp_path / "gen"
    extra = []
    if case == "empty":
        gen.mkdir()
    elif case == "no_audio":
        gen.mkdir()
        (gen / "notes.txt").write_text("not audio")
    else:
        gen = write_utterances(gen, [1], seconds=0.5)
    reference = str(tmp_path / "nowhere") if case == "bad_reference" else str(ref)
    if case == "with_estimate":
        extra = ["--estimate", str(ref)]
    gen_arg = str(tmp_path / "missing") if case == "missing" else str(gen)
    assert main(["evaluate", "--generated", gen_arg, "--reference", reference, "--no-dnsmos", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err


def test_cli_denoising_mode_still_needs_an_estimate(tmp_path, capsys):
    from scoreaudio.cli import main

    assert main(["evaluate", "--reference", str(tmp_path)]) == 2
    assert "--estimate" in capsys.readouterr().err


def test_cli_reference_from_a_recipe_with_dnsmos(tmp_path, capsys):
    from scoreaudio.cli import main

    gen = write_utterances(tmp_path / "gen", [0, 1], seconds=1.0)
    out = tmp_path / "speech.json"
    overrides = [a for o in TINY_CORPUS for a in ("--reference-override", o)]
    assert (
        main(["evaluate", "--generated", str(gen), "--reference", "quickstart", "-o", str(out), *overrides])
        == 0
    )
    data = json.loads(out.read_text())
    assert data["reference"]["n_files"] == 3 and data["settings"]["reference_split"] == "valid"
    assert all("/valid/" in row["file"].replace("\\", "/") for row in data["per_file"]["reference"])
    if data["generated"]["dnsmos_ovrl"] is not None:  # speechmos and onnxruntime installed
        assert data["generated"]["dnsmos_ovrl"] > data["white_noise"]["dnsmos_ovrl"]
    else:
        assert any("DNSMOS" in n for n in data["notes"])


# ---------------------------------------------------------------------------------------------
# The generate manifest and the report
# ---------------------------------------------------------------------------------------------
def test_manifest_measures_per_sample_and_the_report_shows_them(tmp_path):
    import torch

    from scoreaudio.generation import speech_measures_of
    from scoreaudio.report import build_report

    wavs = torch.stack(
        [torch.from_numpy(synthesize_utterance(0, 9100, 1.0, SR)).float()[None], torch.zeros(1, SR)]
    )
    measured = speech_measures_of(wavs, SR)
    assert measured[0]["voiced_share"] > 0.7 and measured[1] == {
        "voiced_share": None,
        "pause_share": 1.0,
        "spectral_flatness": None,
    }
    sf.write(tmp_path / "sample_000.wav", wavs[0, 0].numpy(), SR)
    manifest = {"settings": {"sampler": "heun"}, "files": [{"wav": "sample_000.wav", **measured[0]}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    page, _ = build_report(tmp_path)
    assert "voiced share" in page and f"{measured[0]['voiced_share']:.3f}" in page
