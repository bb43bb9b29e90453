"""Small tensor helpers shared by losses, samplers and networks."""
from __future__ import annotations

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


def as_sigma_batch(sigma, batch: int, *, device=None, dtype=None) -> torch.Tensor:
    """Return sigma as a (B,) tensor: a float or 0-d tensor is broadcast to the batch."""
    sigma = torch.as_tensor(sigma, device=device, dtype=dtype)
    if sigma.ndim == 0:
        sigma = sigma.expand(batch)
    if sigma.shape != (batch,):
        raise ValueError(f"sigma must be a float or of shape ({batch},), got {tuple(sigma.shape)}")
    return sigma
