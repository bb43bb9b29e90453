"""Small sigma-conditioned MLPs for low-dimensional (toy) data: x of shape (B, dim).

Both networks see the input scaled to unit size, ``u = c_in(sigma) x`` with
``c_in = 1 / sqrt(sigma_data^2 + sigma^2)`` (Karras et al. 2022, EDM Table 1), and the noise level
as Fourier features of ``c_noise = log(sigma) / 4`` (EDM's c_noise). The output is scaled by
``1 / sigma`` as in NCSNv2 Technique 3 (Song & Ermon 2020: ``s(x, sigma) = s(x) / sigma``),
because the true score of a sigma-perturbed density has size ~1/sigma.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EnergyMLP", "ScoreMLP"]


def _sigma_features(sigma: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """(B,) sigma -> (B, 1 + 2 n_freqs): [c, sin(2^k c), cos(2^k c)], c = log(sigma) / 4."""
    c = sigma.log().unsqueeze(1) / 4.0  # (B, 1)
    freqs = 2.0 ** torch.arange(n_freqs, device=sigma.device, dtype=sigma.dtype)  # (K,)
    ang = c * freqs  # (B, K)
    return torch.cat([c, ang.sin(), ang.cos()], dim=1)


def _trunk(in_dim: int, hidden: int, layers: int, out_dim: int, out_bias: bool) -> nn.Sequential:
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    mods: list[nn.Module] = [nn.Linear(in_dim, hidden), nn.SiLU()]
    for _ in range(layers - 1):
        mods += [nn.Linear(hidden, hidden), nn.SiLU()]  # SiLU: smooth, so second derivatives exist (SSM, EBM)
    out = nn.Linear(hidden, out_dim, bias=out_bias)
    nn.init.zeros_(out.weight)  # start from s = 0 (DiffWave-style zero-initialised output)
    if out.bias is not None:
        nn.init.zeros_(out.bias)
    mods.append(out)
    return nn.Sequential(*mods)


class _SigmaMLP(nn.Module):
    def __init__(
        self,
        dim: int,
        hidden: int,
        layers: int,
        out_dim: int,
        sigma_data: float,
        n_freqs: int,
        out_bias: bool,
    ) -> None:
        super().__init__()
        if dim <= 0 or hidden <= 0:
            raise ValueError(f"dim and hidden must be positive, got dim={dim}, hidden={hidden}")
        self.dim, self.sigma_data, self.n_freqs = dim, float(sigma_data), n_freqs
        self.net = _trunk(dim + 1 + 2 * n_freqs, hidden, layers, out_dim, out_bias)

    def _features(self, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected x of shape (B, {self.dim}), got {tuple(x.shape)}")
        if sigma.shape != (x.shape[0],):
            raise ValueError(f"expected sigma of shape ({x.shape[0]},), got {tuple(sigma.shape)}")
        c_in = (self.sigma_data**2 + sigma.square()).rsqrt().unsqueeze(1)  # (B, 1)
        h = torch.cat([c_in * x, _sigma_features(sigma, self.n_freqs)], dim=1)  # (B, dim + 1 + 2K)
        return h, c_in


class ScoreMLP(_SigmaMLP):
    """Score network for (B, dim) data: ``s(x, sigma) = F(c_in x, c_noise) / sigma``, shape (B, dim).

    ``layers`` hidden layers of width ``hidden`` with SiLU; ``sigma_data`` is the data's typical
    per-coordinate scale (sets c_in); ``cond`` is accepted for API compatibility and must be None.
    """

    def __init__(
        self, dim: int, hidden: int = 128, layers: int = 3, *, sigma_data: float = 1.0, n_freqs: int = 4
    ) -> None:
        super().__init__(dim, hidden, layers, dim, sigma_data, n_freqs, out_bias=True)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            raise ValueError("ScoreMLP is unconditional; cond must be None")
        h, _ = self._features(x, sigma)
        return self.net(h) / sigma.unsqueeze(1)  # NCSNv2 Technique 3


class EnergyMLP(_SigmaMLP):
    """Energy network for (B, dim) data: ``E(x, sigma) = g(c_in x, c_noise) / (sigma c_in)``, shape (B,).

    The prefactor makes the score ``-grad_x E = -(grad_u g)(c_in x) / sigma``: the same 1/sigma
    output scaling as :class:`ScoreMLP` (NCSNv2 Technique 3) for the energy view. Wrap in
    :class:`scoreaudio.nn.energy.EnergyScoreModel` to get a score model.
    """

    def __init__(
        self, dim: int, hidden: int = 128, layers: int = 3, *, sigma_data: float = 1.0, n_freqs: int = 4
    ) -> None:
        # no output bias: a constant energy offset does not change the score, and a parameter
        # without gradient would trouble DDP
        super().__init__(dim, hidden, layers, 1, sigma_data, n_freqs, out_bias=False)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            raise ValueError("EnergyMLP is unconditional; cond must be None")
        h, c_in = self._features(x, sigma)
        return self.net(h).squeeze(1) / (sigma * c_in.squeeze(1))
