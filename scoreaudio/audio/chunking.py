"""Any length in bounded memory: overlapping chunks joined by overlap-add with sin^2 cross-fades.

:func:`overlap_add` cuts a (T,) signal into chunks whose start points lie on a grid (the STFT
hop, so every chunk sees the same frame phase), runs a batched function on them and joins the
results, normalised by the summed window: memory grows with the chunk, not with T.
"""

from __future__ import annotations

import math
from typing import Callable, List

import torch

__all__ = ["chunk_starts", "ola_window", "overlap_add"]


def ola_window(length: int, overlap: int, rise: bool, fall: bool, device, dtype) -> torch.Tensor:
    """(length,) weights: 1, with sin^2 ramps of ``overlap`` samples where chunks overlap.

    The ramp is sampled at half-sample offsets, so it is strictly positive and a rise and a fall
    over the same samples sum to exactly 1 (sin^2 + cos^2).
    """
    w = torch.ones(length, device=device, dtype=dtype)
    ov = min(overlap, length)
    if ov > 0:
        ramp = torch.sin(0.5 * math.pi * (torch.arange(ov, device=device, dtype=dtype) + 0.5) / ov) ** 2
        if rise:
            w[:ov] = ramp
        if fall:
            w[length - ov :] = torch.minimum(w[length - ov :], ramp.flip(0))
    return w


def chunk_starts(length: int, chunk: int, hop: int, unit: int = 1) -> List[int]:
    """Start samples of overlapping chunks covering ``length`` samples (all but the last ``hop``
    apart; the last one ends at ``length`` rounded up to ``unit``). One chunk when it fits."""
    if length <= chunk:
        return [0]
    starts = list(range(0, length - chunk, hop))
    last = -(-(length - chunk) // unit) * unit  # on the unit grid; may run past the end by < unit
    if last > starts[-1]:
        starts.append(last)
    return starts


def overlap_add(
    y: torch.Tensor,
    fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    chunk: int,
    overlap: int,
    unit: int = 1,
    min_length: int = 1,
    batch_size: int = 4,
) -> torch.Tensor:
    """``fn`` applied to a long (T,) signal chunk by chunk: returns (T,) float32.

    ``fn`` maps a (B, 1, L) batch of chunks to (B, 1, L). Chunks are ``chunk`` samples long
    (a multiple of ``unit``), ``overlap`` apart from the next (clamped below ``chunk``); an input
    shorter than one chunk is run as one chunk of ``max(T, min_length)`` samples (zero-padded).
    The outputs are joined with sin^2 ramps over the overlaps (:func:`ola_window`) and divided by
    the summed window, so a constant ``fn`` output stays constant across chunk edges.
    """
    T = y.shape[0]
    chunk = max(unit, (chunk // unit) * unit)
    overlap = min((overlap // unit) * unit, chunk - unit)
    starts = chunk_starts(T, chunk, chunk - overlap, unit)
    clen = chunk if T > chunk else max(T, min_length)
    acc = torch.zeros(starts[-1] + clen, device=y.device, dtype=torch.float32)
    wsum = torch.zeros_like(acc)
    y_pad = torch.nn.functional.pad(y.float(), (0, acc.shape[0] - T))
    for b in range(0, len(starts), batch_size):
        batch = starts[b : b + batch_size]
        seg = torch.stack([y_pad[s : s + clen] for s in batch])[:, None, :]  # (B, 1, clen)
        est = fn(seg)  # (B, 1, clen)
        for j, s in enumerate(batch):
            i = b + j
            w = ola_window(
                clen, overlap, rise=i > 0, fall=i < len(starts) - 1, device=y.device, dtype=torch.float32
            )
            acc[s : s + clen] += w * est[j, 0]
            wsum[s : s + clen] += w
    return acc[:T] / wsum[:T]
