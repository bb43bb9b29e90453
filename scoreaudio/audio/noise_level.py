"""How loud is the noise in a recording: minimum-statistics estimates and the SNR relation.

Used by :class:`scoreaudio.denoise.SpeechDenoiser` to pick the noise level of the prior-based
methods when the caller does not give one.
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch

from ..errors import ScoreAudioError

__all__ = ["estimate_noise_std", "noise_std_from_snr"]

ArrayLike = Union[np.ndarray, torch.Tensor]


def _frames(x: np.ndarray, n: int, hop: int) -> np.ndarray:
    k = 1 + (len(x) - n) // hop
    return np.lib.stride_tricks.as_strided(
        x, shape=(k, n), strides=(hop * x.strides[0], x.strides[0]), writeable=False
    )


def _spread(k: int, max_rows: int) -> np.ndarray:
    """Up to ``max_rows`` evenly spaced row indices out of ``k``."""
    return np.arange(k) if k <= max_rows else np.linspace(0, k - 1, max_rows).round().astype(int)


def estimate_noise_std(
    wav: ArrayLike,
    sample_rate: int,
    *,
    quantile: float = 0.1,
    frame_seconds: float = 0.02,
    max_frames: int = 40000,
) -> float:
    """Estimate the std of stationary additive noise in a mono recording (T,), in its units.

    Two minimum-statistics estimates, each unbiased for white Gaussian noise alone and biased
    *upward* by speech; the smaller one is returned:

    1. **Frame energy**: mean square of non-overlapping ``frame_seconds`` frames (the signal's
       mean removed), its ``quantile`` over time (the quietest frames: pauses), divided by the
       same quantile of chi^2_N / N (N samples per frame), which is where the quantile of pure
       white-noise frames lies.
    2. **Per-bin minimum statistics** (after Martin 2001): Hann-windowed 32 ms STFT frames
       (hop 1/4), per frequency bin the ``quantile`` over time of ``|X|^2 / sum(w^2)`` divided by
       ``-ln(1 - quantile)`` (the quantile of an exponential variable of mean 1: noise bins are
       complex Gaussian), then the mean over bins (DC and Nyquist left out): by Parseval, the
       noise variance. It needs no pauses, only that every bin is free of speech
       ``quantile`` of the time, and also holds for coloured noise.

    Measured on the synthetic corpus (8 utterances of 2.5 s each, white noise at 0, 5, 10, 20,
    30 dB SNR): mean error +0.2 to +0.3 dB, worst 0.5 dB. Without pauses (speech only) it
    over-estimates: +0.9, +1.8, +3.0, +7.8 dB at 0, 5, 10, 20 dB; with pink noise about -1.7 dB.
    Pass ``noise_std=`` or ``snr_db=`` to the denoiser when you know better.

    Args:
        wav: (T,) ndarray or tensor (any device; computed on the CPU).
        sample_rate: Hz.
        quantile: the low quantile used by both estimates.
        max_frames: frames beyond this are subsampled evenly (long recordings).

    Returns:
        The noise std (0.0 for an all-zero or too short input).
    """
    from scipy.stats import chi2

    if isinstance(wav, torch.Tensor):
        wav = wav.detach().to("cpu", torch.float32).numpy()
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    x = x - np.float32(x.mean(dtype=np.float64)) if x.size else x
    sr = int(sample_rate)
    if not 0.0 < quantile < 0.5:
        raise ValueError(f"quantile must be in (0, 0.5), got {quantile}")
    estimates = []
    # 1. frame energies (non-overlapping frames)
    n = max(8, int(round(frame_seconds * sr)))
    k = len(x) // n
    if k >= 1:
        e = np.empty(k, dtype=np.float64)
        for a in range(0, k, 65536):  # blocks: no full-length squared copy
            b = min(k, a + 65536)
            e[a:b] = np.mean(np.square(x[a * n : b * n].reshape(b - a, n), dtype=np.float64), axis=1)
        estimates.append(float(np.quantile(e, quantile)) / (chi2.ppf(quantile, n) / n))
    # 2. per-bin minimum statistics
    n_fft = 1 << max(4, int(round(math.log2(0.032 * sr))))
    if len(x) >= n_fft:
        w = np.hanning(n_fft + 1)[:-1]  # periodic Hann
        f = _frames(x, n_fft, n_fft // 4)
        rows = _spread(len(f), max_frames)
        p = np.empty((len(rows), n_fft // 2 - 1), dtype=np.float32)
        for a in range(0, len(rows), 4096):  # blocks of frames: bounded float64 temporaries
            spec = np.fft.rfft(f[rows[a : a + 4096]] * w, axis=1)[:, 1:-1]
            p[a : a + 4096] = np.square(np.abs(spec)) / np.sum(w * w)  # E p = sigma^2 for white noise
        per_bin = np.quantile(p, quantile, axis=0) / -math.log1p(-quantile)
        estimates.append(float(np.mean(per_bin)))
    if not estimates:  # shorter than one frame: all we know is an upper bound
        return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
    return math.sqrt(max(0.0, min(estimates)))


def noise_std_from_snr(wav: ArrayLike, snr_db: float) -> float:
    """Noise std of a mixture ``wav = clean + noise`` whose SNR is ``snr_db``.

    Assumes uncorrelated clean and noise, so ``P_wav = P_clean + P_noise`` and
    ``P_noise = P_wav / (1 + 10^(snr/10))`` (powers are means of squares over the whole input).
    """
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().to("cpu", torch.float64).numpy()
    x = np.asarray(wav, dtype=np.float64).reshape(-1)
    if not math.isfinite(float(snr_db)):
        raise ScoreAudioError(f"snr_db must be a finite number of dB, got {snr_db}")
    p = float(np.mean(np.square(x))) if x.size else 0.0
    return math.sqrt(p / (1.0 + 10.0 ** (float(snr_db) / 10.0)))
