"""Embeddings of the noise level for the backbones.

Networks never see an integer timestep: they see ``c_noise = log(sigma) / 4`` (EDM, Karras et al.
2022, Table 1), a (B,) tensor of order one over the usual sigma range (sigma in [1e-3, 1e2] gives
c_noise in [-1.7, 1.2]). Features of c_noise go through a small MLP (DDPM / NCSN++ style):

    features(c_noise) -> Linear -> SiLU -> Linear            # (B, out_dim)

Each residual block then applies SiLU and its own Linear to this vector: FiLM (scale and shift)
in the U-Net, an additive bias in WaveNet (as DiffWave does).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FourierFeatures(nn.Module):
    """Random Fourier features ``[cos(2 pi f c), sin(2 pi f c)]`` with fixed f ~ N(0, scale^2).

    Gaussian Fourier projection of NCSN++ (Song et al. 2021, after Tancik et al. 2020). The
    frequencies are a buffer (saved with the model, never trained), drawn from a fixed seed so two
    models built alike start alike.

    Args:
        dim: output width (even).
        scale: standard deviation of the frequencies.
    """

    def __init__(self, dim: int, scale: float = 16.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"FourierFeatures needs an even dim, got {dim}")
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("freqs", torch.randn(dim // 2, generator=generator) * scale)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """c: (B,) -> (B, dim)."""
        # Elementwise product (not a matmul) so the features stay float32 under autocast.
        phase = 2 * math.pi * c.float().unsqueeze(-1) * self.freqs  # (B, dim/2)
        return torch.cat([phase.cos(), phase.sin()], dim=-1)


class SinusoidalFeatures(nn.Module):
    """Deterministic sinusoidal features ``[cos(w_k c), sin(w_k c)]`` (Transformer / DDPM style).

    DDPM feeds integer timesteps in [0, 1000) to frequencies 10000^(-k/half); c_noise is a real
    number of order one, so the angular frequencies here are spaced geometrically from 1 (a period
    longer than the whole c_noise range) to ``max_freq`` (resolves changes of about 1% in sigma).

    Args:
        dim: output width (even).
        max_freq: the highest angular frequency.
    """

    def __init__(self, dim: int, max_freq: float = 100.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"SinusoidalFeatures needs an even dim, got {dim}")
        half = dim // 2
        freqs = torch.exp(torch.linspace(0.0, math.log(max_freq), half)) if half > 1 else torch.ones(1)
        self.register_buffer("freqs", freqs)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """c: (B,) -> (B, dim)."""
        phase = c.float().unsqueeze(-1) * self.freqs  # (B, dim/2)
        return torch.cat([phase.cos(), phase.sin()], dim=-1)


#: Feature maps of c_noise, by the name used in ``model.embedding``.
FEATURES = {"fourier": FourierFeatures, "sinusoidal": SinusoidalFeatures}


class SigmaEmbedding(nn.Module):
    """features(c_noise) -> Linear -> SiLU -> Linear: (B,) -> (B, out_dim).

    Args:
        kind: ``"fourier"`` or ``"sinusoidal"`` (see :data:`FEATURES`).
        dim: width of the features.
        out_dim: width of the embedding handed to the blocks.
    """

    def __init__(self, kind: str, dim: int, out_dim: int):
        super().__init__()
        if kind not in FEATURES:
            raise ValueError(f"unknown sigma embedding '{kind}'; valid: {', '.join(FEATURES)}")
        self.features = FEATURES[kind](dim)
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        """c_noise: (B,) -> (B, out_dim)."""
        if c_noise.ndim != 1:
            raise ValueError(f"c_noise must have shape (B,), got {tuple(c_noise.shape)}")
        return self.mlp(self.features(c_noise))
