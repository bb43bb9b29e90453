"""tools/export_wavs.py: saved tensors -> WAVs (round trip with generate), dataset examples -> WAVs."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import REPO, TINY

from scoreaudio.cli import main as cli

_spec = importlib.util.spec_from_file_location("export_wavs", REPO / "tools" / "export_wavs.py")
export_wavs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(export_wavs)

#: The tiny synthetic corpus of conftest.TINY (already cached by the tiny_run fixture).
TINY_DATA = [o for o in TINY if o.startswith("data.")]


@pytest.fixture(scope="module")
def generated(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    assert (
        cli(
            [
                "generate",
                "--checkpoint",
                str(tiny_run),
                "--out",
                str(out),
                "--num",
                "3",
                "--seconds",
                "0.3",
                "--batch-size",
                "2",
                "--steps",
                "5",
                "--device",
                "cpu",
                "--save-tensors",
                "--no-pictures",
            ]
        )
        == 0
    )
    return out


def _pcm(path):
    data, rate = sf.read(str(path), dtype="int16")
    return data, rate


def test_round_trip_through_the_manifest(generated, tmp_path):
    assert export_wavs.main(["tensors", str(generated), "--out", str(tmp_path)]) == 0
    for k in range(3):
        a, ra = _pcm(generated / f"sample_{k:03d}.wav")
        b, rb = _pcm(tmp_path / f"sample_{k:03d}.wav")
        assert ra == rb == 16000 and a.shape == b.shape == (4800,)
        assert np.abs(a.astype(int) - b).max() <= 1  # same decode and peak rule; at most 1 LSB apart


def test_round_trip_with_checkpoint_or_explicit_representation(generated, tiny_run, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    x = torch.load(generated / "sample_001.pt", weights_only=True)  # no manifest beside it now
    np.save(src / "x.npy", x.numpy())
    assert (
        export_wavs.main(
            [
                "tensors",
                str(src / "x.npy"),
                "--checkpoint",
                str(tiny_run),
                "--length",
                "4800",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    assert (
        export_wavs.main(
            [
                "tensors",
                str(src / "x.npy"),
                "--representation",
                "stft",
                "--sample-rate",
                "16000",
                "--length",
                "4800",
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    ref, _ = _pcm(generated / "sample_001.wav")
    for folder in ("a", "b"):
        got, rate = _pcm(tmp_path / folder / "x.wav")
        assert rate == 16000 and np.abs(got.astype(int) - ref).max() <= 1


def test_waveform_tensors(tmp_path):
    wav = 0.5 * torch.sin(torch.arange(800) / 5.0)
    torch.save(torch.stack([wav, -wav]), tmp_path / "pair.pt")  # (N, T)
    torch.save(2.0 * wav, tmp_path / "loud.pt")  # (T,), peak 1.0: scaled to 0.99, not clipped
    assert (
        export_wavs.main(
            [
                "tensors",
                str(tmp_path / "pair.pt"),
                str(tmp_path / "loud.pt"),
                "--sample-rate",
                "8000",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    a, rate = sf.read(str(tmp_path / "o" / "pair_000.wav"), dtype="float32")
    b, _ = sf.read(str(tmp_path / "o" / "pair_001.wav"), dtype="float32")
    c, _ = sf.read(str(tmp_path / "o" / "loud.wav"), dtype="float32")
    assert rate == 8000 and np.allclose(a, wav.numpy(), atol=1e-4) and np.allclose(b, -wav.numpy(), atol=1e-4)
    assert abs(np.abs(c).max() - 0.99) < 1e-3


def test_tensor_errors(tmp_path, capsys):
    torch.save(torch.randn(1, 2, 256, 10), tmp_path / "spec.pt")
    assert export_wavs.main(["tensors", str(tmp_path / "spec.pt"), "--out", str(tmp_path / "o")]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert (
        export_wavs.main(
            [
                "tensors",
                str(tmp_path / "spec.pt"),
                "--representation",
                "waveform",
                "--sample-rate",
                "16000",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "not a batch of Waveform" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert export_wavs.main(["tensors", str(tmp_path / "junk.pt"), "--sample-rate", "16000"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_dataset_clean_and_noisy_at_snr(tiny_run, tmp_path):
    out = tmp_path / "data"
    recipe = str(REPO / "recipes" / "quickstart.yaml")
    assert (
        export_wavs.main(
            [
                "dataset",
                recipe,
                *TINY_DATA,
                "--split",
                "valid",
                "--num",
                "2",
                "--snr",
                "5",
                "--noise",
                "pink",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    m = json.loads((out / "manifest.json").read_text())
    assert m["settings"]["snr_db"] == 5.0 and m["settings"]["noise"] == "pink" and len(m["files"]) == 2
    for k in range(2):
        clean, rate = sf.read(str(out / f"{k:03d}_clean.wav"), dtype="float64")
        noisy, _ = sf.read(str(out / f"{k:03d}_noisy.wav"), dtype="float64")
        assert rate == 16000 and clean.shape == noisy.shape and np.abs(noisy).max() <= 0.99 + 1e-4
        snr = 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2))
        assert abs(snr - 5.0) < 0.1
    # existing files are kept unless --overwrite
    assert export_wavs.main(["dataset", recipe, *TINY_DATA, "--num", "1", "--out", str(out)]) == 2
    assert (
        export_wavs.main(
            ["dataset", recipe, *TINY_DATA, "--num", "1", "--noise", "pink", "--out", str(tmp_path / "x")]
        )
        == 2
    )  # --noise needs --snr
