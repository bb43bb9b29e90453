"""Speech quality metrics. SI-SDR is our own; PESQ/ESTOI/DNSMOS come from the `eval` extra."""
from __future__ import annotations

import torch


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019), per signal.

    Both inputs (..., T); the reference is made zero-mean, the estimate is projected onto it:
    s = <x, r> r / ||r||^2, e = x - s, SI-SDR = 10 log10(||s||^2 / ||e||^2). Returns shape (...).
    """
    if estimate.shape != reference.shape:
        raise ValueError(f"shape mismatch: estimate {tuple(estimate.shape)} vs reference {tuple(reference.shape)}")
    x = estimate.double() - estimate.double().mean(dim=-1, keepdim=True)
    r = reference.double() - reference.double().mean(dim=-1, keepdim=True)
    scale = (x * r).sum(-1, keepdim=True) / (r.square().sum(-1, keepdim=True) + eps)
    s = scale * r
    e = x - s
    return (10 * torch.log10((s.square().sum(-1) + eps) / (e.square().sum(-1) + eps))).to(estimate.dtype)
