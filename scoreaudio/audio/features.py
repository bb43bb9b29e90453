"""Features and pictures of audio: the log-mel spectrogram (plots and metrics) and a spectrogram PNG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from ..utils.files import atomic_write

__all__ = ["log_mel", "spectrogram_png", "spectrograms_png"]

_HALF = (torch.float16, torch.bfloat16)

_MEL_CACHE: Dict[tuple, torch.Tensor] = {}


def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, device, dtype) -> torch.Tensor:
    key = (sample_rate, n_fft, n_mels, torch.device(device), dtype)
    basis = _MEL_CACHE.get(key)
    if basis is None:
        import librosa  # lazy: only plots and metrics need it

        fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=sample_rate / 2)
        basis = torch.as_tensor(fb, dtype=dtype, device=device)  # (n_mels, n_fft//2+1)
        _MEL_CACHE[key] = basis
    return basis


def log_mel(wav, sample_rate: int, n_mels: int = 80, n_fft: int = 1024, hop: int = 256) -> torch.Tensor:
    """Natural-log mel magnitude spectrogram, ``log(max(mel(|STFT|), 1e-5))``.

    Args:
        wav: tensor or ndarray (..., T); any leading dims are kept.

    Returns:
        (..., n_mels, 1 + T // hop) float tensor on the input's device (float32 for ndarray input).
    """
    x = torch.as_tensor(wav)
    if not torch.is_floating_point(x) or x.dtype in _HALF:
        x = x.float()
    lead, T = x.shape[:-1], x.shape[-1]
    window = torch.hann_window(n_fft, periodic=True, device=x.device, dtype=x.dtype)
    flat = x.reshape(-1, T)
    pad = "reflect" if T > n_fft // 2 else "constant"
    spec = torch.stft(
        flat,
        n_fft,
        hop_length=hop,
        win_length=n_fft,
        window=window,
        center=True,
        pad_mode=pad,
        return_complex=True,
    ).abs()  # (N, F, frames)
    mel = torch.matmul(_mel_basis(int(sample_rate), n_fft, n_mels, x.device, x.dtype), spec)
    out = torch.log(torch.clamp(mel, min=1e-5))
    return out.reshape(*lead, n_mels, out.shape[-1])


def _log_spectrogram(x: np.ndarray, sr: int) -> np.ndarray:
    """(F, frames) log magnitude in dB of a mono signal, ~32 ms Hann windows, 1/8 hop."""
    n_fft = 1 << max(6, int(round(math.log2(0.032 * sr))))  # ~32 ms
    t = torch.as_tensor(x, dtype=torch.float32)
    if t.numel() < 2:
        t = torch.nn.functional.pad(t, (0, 2 - t.numel()))
    mag = (
        torch.stft(
            t,
            n_fft,
            hop_length=n_fft // 8,
            window=torch.hann_window(n_fft),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        .abs()
        .numpy()
    )
    return 20.0 * np.log10(np.maximum(mag, 1e-10))


def _mono(wav) -> np.ndarray:
    x = wav.detach().float().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, np.float32)
    return x.reshape(-1, x.shape[-1]).mean(axis=0) if x.ndim > 1 else x


def spectrogram_png(
    wav, sample_rate: int, path, title: Optional[str] = None, *, dynamic_range_db: float = 80.0
) -> Path:
    """Write a log-magnitude spectrogram of a mono signal as a PNG (atomically); returns the path.

    Args:
        wav: tensor or ndarray (T,) or (1, T) (more channels are averaged).
        dynamic_range_db: colours span [peak - range, peak] dB.
    """
    return spectrograms_png([(wav, title)], sample_rate, path, dynamic_range_db=dynamic_range_db)


def spectrograms_png(
    panels: Sequence[Tuple[object, Optional[str]]], sample_rate: int, path, *, dynamic_range_db: float = 80.0
) -> Path:
    """Write stacked log-magnitude spectrograms, one panel per ``(wav, title)``, as one PNG
    (atomically); returns the path. Every panel shares one colour scale, [peak - range, peak] dB
    with the peak over all panels, so a before/after pair shows what was removed.

    Args:
        panels: ``(wav, title)`` pairs; each wav a tensor or ndarray (T,) or (C, T) (channels averaged).
        sample_rate: Hz, for the axes.
        dynamic_range_db: the colour span in dB.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy, no pyplot global state
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("spectrograms_png needs at least one (wav, title) panel")
    sr = int(sample_rate)
    waves = [_mono(w) for w, _ in panels]
    dbs = [_log_spectrogram(x, sr) for x in waves]
    top = max(float(d.max()) for d in dbs)
    fig = Figure(figsize=(10, 1.0 + 3.0 * len(panels)), dpi=100)
    FigureCanvasAgg(fig)
    for k, (x, db, (_, title)) in enumerate(zip(waves, dbs, panels)):
        ax = fig.add_subplot(len(panels), 1, k + 1)
        im = ax.imshow(
            db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=top - dynamic_range_db,
            vmax=top,
            extent=(0.0, len(x) / sr, 0.0, sr / 2 / 1000.0),
            interpolation="nearest",
        )
        ax.set_ylabel("frequency (kHz)")
        if title:
            ax.set_title(title)
        fig.colorbar(im, ax=ax, label="dB")
    ax.set_xlabel("time (s)")
    fig.tight_layout()

    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
