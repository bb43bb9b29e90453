"""Audio handed in by a caller as numpy or torch: checked, as (channels, T) float32, and back.

The denoiser works on a (C, T) float32 CPU tensor; a caller may hand in (T,) or (C, T), numpy or
torch, any float dtype, on any device, and gets the same type, shape, dtype and device back.
Integer PCM, NaN/inf, empty input and a (T, C) transpose are one-line :class:`AudioError` s.
"""

from __future__ import annotations

from typing import Callable, Tuple, Union

import numpy as np
import torch

from ..errors import AudioError, ScoreAudioError

__all__ = ["ArrayLike", "as_channels", "check_sample_rate"]

ArrayLike = Union[np.ndarray, torch.Tensor]


def check_sample_rate(sample_rate) -> int:
    """``sample_rate`` as an int of Hz; ScoreAudioError unless it is a positive whole number."""
    try:
        sr = int(sample_rate)
    except (TypeError, ValueError):
        raise ScoreAudioError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}") from None
    if sr <= 0 or sr != sample_rate:
        raise ScoreAudioError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    return sr


def as_channels(wav) -> Tuple[torch.Tensor, Callable[[torch.Tensor], ArrayLike]]:
    """(T,) or (C, T) ndarray/tensor -> ((C, T) float32 CPU tensor, a function that restores the
    input's type, shape, dtype and device)."""
    if isinstance(wav, torch.Tensor):
        if not torch.is_floating_point(wav):
            raise AudioError(
                f"expected floating-point samples, got a tensor of dtype {wav.dtype}; "
                f"convert with wav.float() / 32768 for 16-bit PCM"
            )
        device, dtype, shape = wav.device, wav.dtype, tuple(wav.shape)
        x = wav.detach().to("cpu", torch.float32)

        def restore(y: torch.Tensor):
            return y.reshape(shape).to(device=device, dtype=dtype)
    else:
        arr = np.asarray(wav)
        if not np.issubdtype(arr.dtype, np.floating):
            raise AudioError(
                f"expected floating-point samples, got an array of dtype {arr.dtype}; "
                f"convert with wav.astype(np.float32) / 32768 for 16-bit PCM"
            )
        dtype, shape = arr.dtype, arr.shape
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

        def restore(y: torch.Tensor):
            return y.numpy().reshape(shape).astype(dtype, copy=False)

    if x.ndim not in (1, 2):
        raise AudioError(f"expected a waveform of shape (T,) or (channels, T), got {tuple(x.shape)}")
    x = x.reshape(1, -1) if x.ndim == 1 else x
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise AudioError(f"the input has no samples (shape {tuple(shape)}); nothing to denoise")
    if x.shape[0] > 64 and x.shape[1] <= 64:
        raise AudioError(f"got shape {tuple(shape)}: that looks like (T, channels); pass (channels, T)")
    if not torch.isfinite(x).all():
        raise AudioError("the input contains NaN or inf samples; clean or re-export it before denoising")
    return x, restore
