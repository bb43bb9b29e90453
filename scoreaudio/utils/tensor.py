"""Small tensor helpers shared by losses, samplers and networks."""

from __future__ import annotations

from typing import Optional

import torch


def append_dims(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """Append trailing singleton axes to ``t`` until it has ``ndim`` dims.

    Used to broadcast a per-example ``sigma`` of shape (B,) against data of shape
    (B, C, *S) without hard-coding the rank: ``append_dims(sigma, x.ndim) * x``.
    """
    missing = ndim - t.ndim
    if missing < 0:
        raise ValueError(f"tensor has {t.ndim} dims, more than the target {ndim}")
    return t.reshape(*t.shape, *([1] * missing))


def fit_length(x: torch.Tensor, length: int) -> torch.Tensor:
    """Crop or zero-pad the last axis of ``x`` to ``length`` (at the end).

    Decoding and resampling round trips can come back a few samples off; this puts them back.
    """
    T = x.shape[-1]
    if T >= length:
        return x[..., :length]
    return torch.nn.functional.pad(x, (0, length - T))


def as_sigma_batch(sigma, batch: int, *, device=None, dtype=None) -> torch.Tensor:
    """Return sigma as a (B,) tensor: a float or 0-d tensor is broadcast to the batch."""
    sigma = torch.as_tensor(sigma, device=device, dtype=dtype)
    if sigma.ndim == 0:
        sigma = sigma.expand(batch)
    if sigma.shape != (batch,):
        raise ValueError(f"sigma must be a float or of shape ({batch},), got {tuple(sigma.shape)}")
    return sigma


_MIX = 0x9E3779B97F4A7C15  # 64-bit golden-ratio constant for mixing seeds


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that is a deterministic hash of integers (splitmix64 rounds)."""
    h = 0
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 + _MIX
        h &= 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


def generator_on(device: torch.device, generator: Optional[torch.Generator]) -> Optional[torch.Generator]:
    """``generator`` when it lives on ``device``, else a generator there seeded from it (one draw),
    so a caller's CPU generator still makes a CUDA run reproducible; None stays None."""
    if generator is None:
        return None
    g, d = generator.device, torch.device(device)
    if g.type == d.type and (g.index is None or d.index is None or g.index == d.index):
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=g))
    return torch.Generator(device=d).manual_seed(seed)
