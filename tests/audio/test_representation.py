"""Waveform / CompressedSTFT: exact round trips, shapes, serialisation, the model-space noise std."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoreaudio.audio.features import log_mel, spectrogram_png, spectrograms_png
from scoreaudio.audio.representation import (
    CompressedSTFT,
    Waveform,
    build_representation,
    estimate_model_noise_std,
    representation_from_dict,
)
from scoreaudio.config import compose
from scoreaudio.errors import ConfigError


def _speechy(T, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float64) / 16000
    x = sum(torch.sin(2 * math.pi * 150 * k * t) / k for k in range(1, 8)) * 0.2
    x = x * (0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t))
    x = x + 0.01 * torch.randn(T, generator=g, dtype=torch.float64)
    return x.to(dtype)


@pytest.mark.parametrize("length", [16000, 16001, 12345, 1000])
def test_stft_round_trip_any_length(length):
    rep = CompressedSTFT()
    noise = 0.3 * torch.randn(length, generator=torch.Generator().manual_seed(1))
    wav = torch.stack([_speechy(length, 0), noise])[:, None]  # (2, 1, T)
    x = rep.encode(wav)
    assert x.shape == (2, *rep.encoded_shape(length)) == (2, 2, 256, 1 + length // 128)
    back = rep.decode(x, length)
    assert back.shape == wav.shape and back.dtype == wav.dtype
    assert (back - wav).abs().max().item() < 2e-6
    back64 = rep.decode(rep.encode(wav.double()), length)
    assert (back64 - wav.double()).abs().max().item() < 1e-12


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, 0.15), (0.3, 0.33)])
def test_stft_round_trip_other_settings(alpha, beta):
    rep = CompressedSTFT(n_fft=256, hop_length=64, alpha=alpha, beta=beta)
    wav = _speechy(4001)[None, None]
    assert (rep.decode(rep.encode(wav), 4001) - wav).abs().max().item() < 2e-6


def test_compression_is_what_the_docs_say():
    rep = CompressedSTFT(alpha=0.5, beta=0.15)
    wav = _speechy(8000, dtype=torch.float64)[None, None]
    X = torch.stft(
        wav[:, 0],
        510,
        128,
        window=torch.hann_window(510, periodic=True, dtype=torch.float64),
        center=True,
        return_complex=True,
    )
    z = rep.encode(wav)
    zc = torch.complex(z[:, 0], z[:, 1])
    torch.testing.assert_close(zc.abs(), 0.15 * X.abs() ** 0.5)
    mask = X.abs() > 1e-6
    torch.testing.assert_close(torch.angle(zc)[mask], torch.angle(X)[mask])


def test_waveform_identity_and_crop_pad():
    rep = Waveform()
    wav = torch.randn(3, 1, 100)
    assert rep.encode(wav) is wav and rep.channels == 1
    assert rep.decode(wav, 80).shape == (3, 1, 80)
    padded = rep.decode(wav, 120)
    assert padded.shape == (3, 1, 120) and padded[..., 100:].abs().sum() == 0
    assert rep.encoded_shape(100) == (1, 100)
    assert rep.noise_std_in_model_space(0.3) == 0.3


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\(B, 1, T\)"):
        CompressedSTFT().encode(torch.randn(2, 100))
    with pytest.raises(ValueError, match="spectrogram"):
        CompressedSTFT().decode(torch.randn(1, 2, 100, 5), 100)


def test_half_precision_and_window_cache():
    rep = CompressedSTFT()
    wav = _speechy(4000)[None, None]
    x = rep.encode(wav.to(torch.bfloat16))
    assert x.dtype == torch.bfloat16
    rep.encode(wav)
    assert (torch.device("cpu"), torch.float32) in rep._windows
    assert rep.decode(x, 4000).dtype == torch.bfloat16


def test_serialisation_and_build():
    rep = CompressedSTFT(n_fft=254, hop_length=64, alpha=0.4, beta=0.2)
    again = representation_from_dict(rep.to_dict())
    assert isinstance(again, CompressedSTFT) and again.to_dict() == rep.to_dict()
    assert isinstance(representation_from_dict(Waveform().to_dict()), Waveform)
    with pytest.raises(ConfigError, match="valid"):
        representation_from_dict({"kind": "mel"})
    with pytest.raises(ConfigError, match="unexpected"):
        representation_from_dict({"kind": "stft", "n_ftt": 510})
    cfg = compose(None)
    built = build_representation(cfg.representation)
    assert isinstance(built, CompressedSTFT) and built.channels == 2 and built.n_fft == 510
    wave_cfg = compose(None, ["representation.kind=waveform"]).representation
    assert isinstance(build_representation(wave_cfg), Waveform)


def test_noise_std_linear_stft_is_analytic():
    rep = CompressedSTFT(alpha=1.0, beta=0.15)
    w = torch.hann_window(510, periodic=True, dtype=torch.float64)
    expected = 0.15 * 0.1 * math.sqrt(float((w**2).sum()) / 2)
    assert rep.noise_std_in_model_space(0.1) == pytest.approx(expected, rel=1e-12)
    assert float((w**2).sum()) == pytest.approx(3 * 510 / 8)  # periodic Hann: sum w^2 = 3N/8


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_noise_std_matches_white_noise_empirically(alpha):
    rep = CompressedSTFT(alpha=alpha)
    g = torch.Generator().manual_seed(0)
    noise = 0.1 * torch.randn(4, 1, 48000, generator=g, dtype=torch.float64)
    x = rep.encode(noise)[..., 4:-4]  # away from the reflect-padded edges
    measured = x.pow(2).mean().sqrt().item()
    assert measured == pytest.approx(rep.noise_std_in_model_space(0.1), rel=0.02)
    # interior bins: each real/imag part has that std too (alpha = 1: exactly half of E|X|^2 each)
    interior = x[:, :, 1:-1].pow(2).mean().sqrt().item()
    assert interior == pytest.approx(measured, rel=0.02)


def test_estimate_model_noise_std():
    g = torch.Generator().manual_seed(0)
    clean = _speechy(32000)
    linear = CompressedSTFT(alpha=1.0)
    est = estimate_model_noise_std(linear, clean, 0.05, generator=g, draws=2)
    assert est == pytest.approx(linear.noise_std_in_model_space(0.05), rel=0.03)  # linear: signal-free
    assert estimate_model_noise_std(Waveform(), clean, 0.05, generator=g) == pytest.approx(0.05, rel=0.02)
    comp = CompressedSTFT(alpha=0.5)
    est_c = estimate_model_noise_std(comp, clean, 0.01, generator=g, draws=2)
    # compression shrinks deviations where the signal dominates: below the noise-only figure
    assert 0.0 < est_c < comp.noise_std_in_model_space(0.01)


def test_log_mel_and_png(tmp_path):
    wav = _speechy(16000)
    m = log_mel(wav[None, None], 16000)
    assert m.shape == (1, 1, 80, 1 + 16000 // 256) and torch.isfinite(m).all()
    assert log_mel(np.zeros(4000, dtype=np.float32), 16000).min().item() == pytest.approx(math.log(1e-5))
    p = spectrogram_png(wav, 16000, tmp_path / "plots" / "s.png", title="test")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [q.name for q in p.parent.iterdir()] == ["s.png"]


def test_stacked_spectrograms_are_one_png_with_a_panel_each(tmp_path):
    """Before/after pictures: one PNG, 3 inches of height a panel (PNG IHDR: width, height at 16:24)."""
    wav = _speechy(8000)
    one = spectrograms_png([(wav, "a")], 16000, tmp_path / "one.png").read_bytes()
    three = spectrograms_png(
        [(wav, "noisy"), (wav * 0.1, "denoised"), (np.zeros(8000), "clean")], 16000, tmp_path / "three.png"
    ).read_bytes()
    size = lambda png: (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big"))  # noqa: E731
    assert size(one) == (1000, 400) and size(three) == (1000, 1000)
    with pytest.raises(ValueError, match="at least one"):
        spectrograms_png([], 16000, tmp_path / "none.png")
