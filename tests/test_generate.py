"""scoreaudio generate: the Python API, the command line, the sampler budget and the user errors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import train_tiny

import scoreaudio
import scoreaudio.generation as gen_mod
from scoreaudio.audio.representation import Waveform
from scoreaudio.cli import main
from scoreaudio.errors import ScoreAudioError
from scoreaudio.generation import draw_samples, generate, sample_checkpoint
from scoreaudio.noise import NoiseLevels
from scoreaudio.utils.checkpoint import file_sha256

FAST = ["--device", "cpu", "--steps", "5", "--seconds", "0.25"]


@pytest.fixture(scope="module")
def cdsm_run(tmp_path_factory, synthetic_cache):
    """A conditional (cdsm) denoiser checkpoint: one optimiser step, no validation."""
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before the per-test cache fixture
        mp.setenv("SCOREAUDIO_CACHE", str(synthetic_cache))
        return train_tiny(
            tmp_path_factory.mktemp("runs") / "cdsm",
            "loss=cdsm",
            "data.noise_mix.enabled=true",
            "train.steps=1",
            "train.val_every=0",
        )


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def _read(path):
    data, rate = sf.read(str(path), dtype="float32")
    return data, rate


# --------------------------------------------------------------------------------------------
# Python API
# --------------------------------------------------------------------------------------------
def test_the_function_and_its_module_have_different_names():
    """``scoreaudio.generate`` is the function; the module is ``scoreaudio.generation`` (no shadowing)."""
    assert scoreaudio.generate is generate and callable(scoreaudio.generate)
    assert scoreaudio.generation is gen_mod and gen_mod.draw_samples is draw_samples
    assert scoreaudio.load_pretrained.__module__ == "scoreaudio.pretrained"
    assert not hasattr(scoreaudio, "load_checkpoint")


def test_api_returns_finite_arrays_and_reproduces_bit_exactly(tiny_run):
    out = generate(tiny_run, num=3, seconds=0.3, steps=5, batch_size=2, seed=7, device="cpu")
    assert len(out) == 3
    for wav, rate in out:
        assert rate == 16000 and wav.shape == (4800,) and wav.dtype == np.float32
        assert np.isfinite(wav).all() and np.abs(wav).max() > 0 and np.abs(wav).max() <= 0.99 + 1e-6
    assert not np.array_equal(out[0][0], out[1][0])  # different noise per sample
    # Same seed and batch size: bit-exact; asking for fewer samples keeps the earlier ones.
    again = generate(tiny_run, num=2, seconds=0.3, steps=5, batch_size=2, seed=7, device="cpu")
    for (a, _), (b, _) in zip(out[:2], again, strict=True):
        assert np.array_equal(a, b)
    other = generate(tiny_run, num=1, seconds=0.3, steps=5, batch_size=2, seed=8, device="cpu")
    assert not np.array_equal(other[0][0], out[0][0])


@pytest.mark.parametrize("sampler", ["ald", "pc", "heun"])
def test_every_sampler_runs_at_the_same_budget(tiny_run, sampler):
    res = sample_checkpoint(tiny_run, num=1, seconds=0.2, sampler=sampler, steps=5, device="cpu")
    assert res.plan.name == sampler and res.plan.nfe == 5  # 5 network calls whatever the sampler
    assert res.wavs.shape == (1, 1, 3200) and torch.isfinite(res.wavs).all() and res.wavs.abs().max() > 0
    assert res.timings["rtf"] > 0


def test_waveform_model(tiny_wave_run):
    ((wav, rate),) = generate(tiny_wave_run, num=1, seconds=0.1, steps=3, device="cpu")
    assert rate == 16000 and wav.shape == (1600,) and np.isfinite(wav).all() and np.abs(wav).max() > 0


def test_non_finite_sample_names_sampler_and_step():
    def exploding(x, sigma):
        return torch.full_like(x, float("nan"))

    cfg = type("S", (), {"name": "heun", "steps": 5, "snr": 0.16, "final_denoise": True})()
    with pytest.raises(ScoreAudioError, match=r"sampler 'heun' produced non-finite values at step 1 of 3"):
        draw_samples(
            exploding,
            Waveform(),
            NoiseLevels(sigma_min=0.01, sigma_max=1.0, num_levels=10, sigma_data=1.0),
            cfg,
            num=1,
            seconds=0.01,
            sample_rate=1000,
            device=torch.device("cpu"),
        )


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def test_cli_writes_wavs_pictures_tensors_and_manifest(tiny_run, tmp_path):
    out = tmp_path / "samples"
    assert (
        main(
            [
                "generate",
                "--checkpoint",
                str(tiny_run),
                "--out",
                str(out),
                "--num",
                "2",
                "--save-tensors",
                *FAST,
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json"] + [f"sample_{k:03d}{s}" for k in range(2) for s in (".wav", ".png", ".pt")]
    )
    first = []
    for k in range(2):
        data, rate = _read(out / f"sample_{k:03d}.wav")
        assert rate == 16000 and data.shape == (4000,) and np.isfinite(data).all() and np.abs(data).max() > 0
        assert (out / f"sample_{k:03d}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert torch.load(out / f"sample_{k:03d}.pt", weights_only=True).shape == (1, 2, 256, 32)
        first.append(data)
    m = json.loads((out / "manifest.json").read_text())
    assert m["checkpoint"]["sha256"] == file_sha256(tiny_run / "last.pt")
    assert m["checkpoint"]["path"] == str((tiny_run / "last.pt").resolve())
    assert m["settings"]["num"] == 2 and m["settings"]["seed"] == 0 and m["settings"]["sampler"] == "heun"
    assert m["sampler_plan"]["nfe"] == 5 and m["sampler_plan"]["ladder_length"] == 3
    assert m["sample_rate"] == 16000 and m["length"] == 4000 and m["representation"]["kind"] == "stft"
    assert m["rtf"] > 0 and m["timings"]["sample_s"] > 0
    assert [f["wav"] for f in m["files"]] == ["sample_000.wav", "sample_001.wav"]

    # --overwrite with the same seed rewrites the same samples bit for bit
    assert (
        main(
            [
                "generate",
                "--checkpoint",
                str(tiny_run),
                "--out",
                str(out),
                "--num",
                "2",
                "--overwrite",
                "--no-pictures",
                *FAST,
            ]
        )
        == 0
    )
    for k in range(2):
        assert np.array_equal(_read(out / f"sample_{k:03d}.wav")[0], first[k])


def test_existing_output_is_refused_before_any_sampling(tiny_run, tmp_path, capsys, monkeypatch):
    out = tmp_path / "samples"
    out.mkdir()
    (out / "sample_001.wav").write_bytes(b"keep me")

    def must_not_run(*args, **kwargs):
        raise AssertionError("sampled before checking the outputs")

    monkeypatch.setattr(gen_mod, "sample_checkpoint", must_not_run)
    assert main(["generate", "--checkpoint", str(tiny_run), "--out", str(out), "--num", "2", *FAST]) == 2
    err = _one_line_error(capsys)
    assert "sample_001.wav exists" in err and "--overwrite" in err
    assert (out / "sample_001.wav").read_bytes() == b"keep me"


def _copy_run(src, dst, mtime):
    dst.mkdir(parents=True)
    shutil.copy(src / "last.pt", dst / "last.pt")
    os.utime(dst / "last.pt", (mtime, mtime))


def test_default_checkpoint_is_the_newest_run(tiny_run, tmp_path):
    root = tmp_path / "runs"
    _copy_run(tiny_run, root / "older", 1_000_000_000)
    _copy_run(tiny_run, root / "newer", 1_500_000_000)
    (root / "not-a-run").mkdir()
    out = tmp_path / "samples"
    assert (
        main(["generate", "--runs-root", str(root), "--out", str(out), "--num", "1", "--no-pictures", *FAST])
        == 0
    )
    m = json.loads((out / "manifest.json").read_text())
    assert m["checkpoint"]["path"] == str((root / "newer" / "last.pt").resolve())
    assert m["settings"]["checkpoint"] is None and (out / "sample_000.wav").is_file()


@pytest.mark.parametrize("case", ["no_runs", "corrupt", "seconds0", "negative_seconds", "too_few_steps"])
def test_user_errors_exit_2_with_one_line(case, tiny_run, tmp_path, capsys):
    args = ["generate", "--out", str(tmp_path / "out"), "--device", "cpu", "--seconds", "0.25"]
    expect = {
        "no_runs": (["--runs-root", str(tmp_path / "empty")], "no run found"),
        "corrupt": (["--checkpoint", str(tmp_path / "bad.pt")], "not a readable checkpoint"),
        "seconds0": (["--checkpoint", str(tiny_run), "--seconds", "0"], "--seconds must be positive"),
        "negative_seconds": (["--checkpoint", str(tiny_run), "--seconds", "-1"], "must be positive"),
        "too_few_steps": (
            ["--checkpoint", str(tiny_run), "--steps", "1", "--sampler", "ald"],
            "too few for sampler 'ald'",
        ),
    }
    extra, message = expect[case]
    (tmp_path / "bad.pt").write_bytes(os.urandom(256))
    assert main(args + extra) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_conditional_checkpoint_points_to_denoise(cdsm_run, tmp_path, capsys):
    capsys.readouterr()  # drop the training log
    assert main(["generate", "--checkpoint", str(cdsm_run), "--out", str(tmp_path / "out"), *FAST]) == 2
    err = _one_line_error(capsys)
    assert "conditional" in err and "noisy input" in err and "scoreaudio denoise" in err
    with pytest.raises(ScoreAudioError, match="scoreaudio denoise"):
        generate(cdsm_run, num=1, seconds=0.1, device="cpu")
