"""Isotropic Gaussian mixtures with exact scores, for tests and toy experiments.

The default mixture is the one of NCSN (Song & Ermon 2019), Sec. 3.2 / Fig. 3:
``p(x) = 1/5 N((-5, -5), I) + 4/5 N((5, 5), I)``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["GaussianMixture", "ncsn_mixture"]


class GaussianMixture:
    """``p(x) = sum_k w_k N(x; mu_k, std^2 I)`` on R^D, and its sigma-perturbed versions.

    Perturbing with ``N(0, sigma^2 I)`` keeps it a mixture with variance ``std^2 + sigma^2``, so
    ``log_prob(x, sigma)`` and ``score(x, sigma)`` are exact for every sigma (sigma = 0: the data).
    ``score`` has the score-model signature ``(x, sigma) -> (B, D)`` with sigma a float or (B,),
    so it can be passed directly to the samplers.
    """

    def __init__(self, means: torch.Tensor, weights: torch.Tensor, std: float = 1.0) -> None:
        means = torch.as_tensor(means, dtype=torch.float32)
        weights = torch.as_tensor(weights, dtype=torch.float32)
        if means.ndim != 2 or weights.shape != (means.shape[0],):
            raise ValueError(
                f"need means (K, D) and weights (K,), got {tuple(means.shape)} and {tuple(weights.shape)}"
            )
        if (weights <= 0).any() or abs(float(weights.sum()) - 1.0) > 1e-5:
            raise ValueError(f"weights must be positive and sum to 1, got {weights.tolist()}")
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.means, self.weights, self.std = means, weights, float(std)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def _log_joint(self, x: torch.Tensor, sigma: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """log(w_k N(x; mu_k, v I)) of shape (B, K), and the variance v of shape (B, 1)."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        var = (self.std**2 + sigma.square()).reshape(-1, 1).expand(x.shape[0], 1)  # (B, 1)
        mu = self.means.to(x)
        d2 = torch.cdist(x, mu).square()  # (B, K)
        log_n = -0.5 * d2 / var - 0.5 * self.dim * torch.log(2 * math.pi * var)
        return log_n + self.weights.to(x).log(), var

    def log_prob(self, x: torch.Tensor, sigma: torch.Tensor | float = 0.0) -> torch.Tensor:
        """log p_sigma(x) for x of shape (B, D): shape (B,)."""
        lj, _ = self._log_joint(x, sigma)
        return torch.logsumexp(lj, dim=1)

    def responsibilities(self, x: torch.Tensor, sigma: torch.Tensor | float = 0.0) -> torch.Tensor:
        """Posterior component probabilities p(k | x) under p_sigma: shape (B, K)."""
        lj, _ = self._log_joint(x, sigma)
        return torch.softmax(lj, dim=1)

    def score(self, x: torch.Tensor, sigma: torch.Tensor | float = 0.0) -> torch.Tensor:
        """grad_x log p_sigma(x) = sum_k p(k | x) (mu_k - x) / (std^2 + sigma^2): shape (B, D)."""
        lj, var = self._log_joint(x, sigma)
        r = torch.softmax(lj, dim=1)  # (B, K)
        return (r @ self.means.to(x) - x) / var

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n i.i.d. samples: shape (n, D)."""
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator)
        return self.means[k] + self.std * z

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the most probable component for each point (under the data density): shape (B,)."""
        return self.responsibilities(x).argmax(dim=1)

    def recovered_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Fraction of the points assigned to each component: shape (K,). Non-finite points count for none."""
        ok = torch.isfinite(x).all(dim=1)
        counts = torch.bincount(self.assign(x[ok]), minlength=self.means.shape[0]).to(torch.float32)
        return counts / max(x.shape[0], 1)


def ncsn_mixture() -> GaussianMixture:
    """The NCSN Sec. 3.2 mixture: 1/5 N((-5,-5), I) + 4/5 N((5,5), I)."""
    return GaussianMixture(torch.tensor([[-5.0, -5.0], [5.0, 5.0]]), torch.tensor([0.2, 0.8]), std=1.0)
