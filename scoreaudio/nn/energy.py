"""Energy-based parameterisation of a score model: s(x, sigma) = -grad_x E(x, sigma).

The EBM view (LeCun et al. 2006; Song & Ermon 2019 use score networks instead, Salimans & Ho 2021
compare the two): a network outputs one scalar energy per example, and the score is its negative
gradient, so the learned vector field is conservative by construction and
``p_sigma(x) ~ exp(-E(x, sigma))``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["EnergyScoreModel", "EnergyFromDenoiser"]


class EnergyScoreModel(nn.Module):
    """Wrap ``energy_net(x, sigma[, cond]) -> (B,)`` into a score model ``(x, sigma, cond) -> (B, C, *S)``.

    ``forward`` returns ``-grad_x E(x, sigma)`` computed with ``torch.autograd.grad``:

    * when gradients are enabled (training, or a loss such as SSM that differentiates the score
      again), the gradient is taken with ``create_graph=True``, so the score is differentiable
      w.r.t. the parameters and w.r.t. ``x`` (if ``x`` already requires grad, its graph is used);
    * under ``torch.no_grad()`` or ``torch.inference_mode()`` (sampling) gradients are enabled
      locally, the graph is dropped after the call, and a plain tensor is returned.

    Usable with every loss in :mod:`scoreaudio.losses` and every sampler in
    :mod:`scoreaudio.sampling` (samplers never force inference mode for this reason).
    ``energy_net`` is called with ``cond`` only when ``cond`` is not None.
    """

    def __init__(self, energy_net: nn.Module | Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.energy_net = energy_net

    def energy(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """E(x, sigma): shape (B,)."""
        e = self.energy_net(x, sigma) if cond is None else self.energy_net(x, sigma, cond)
        if e.shape != (x.shape[0],):
            raise ValueError(
                f"energy_net must return one energy per example, shape ({x.shape[0]},), got {tuple(e.shape)}"
            )
        return e

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if torch.is_inference_mode_enabled():
            # Inference tensors cannot enter autograd: leave inference mode and work on normal copies.
            with torch.inference_mode(False):
                x, sigma = x.clone(), sigma.clone()
                cond = None if cond is None else cond.clone()
                return self._score(x, sigma, cond, create_graph=False)
        return self._score(x, sigma, cond, create_graph=torch.is_grad_enabled())

    def _score(
        self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None, *, create_graph: bool
    ) -> torch.Tensor:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        # training differentiates this gradient again: the fused attention kernels have no double
        # backward on the CPU, the plain (math) one has, with the same values
        with torch.enable_grad(), sdpa_kernel([SDPBackend.MATH]):
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            e = self.energy(x, sigma, cond)
            (grad,) = torch.autograd.grad(e.sum(), x, create_graph=create_graph)
        return -grad if create_graph else -grad.detach()


class EnergyFromDenoiser(nn.Module):
    """A conservative score model built from any denoiser D (a :class:`~scoreaudio.nn.score_model.ScoreModel`).

    Salimans & Ho (2021), "Should EBMs model the energy or the score?", Eq. (6):
    ``E(x, sigma) = ||x - D(x, sigma)||^2 / (2 sigma^2)`` (one scalar per example), and
    ``s(x, sigma) = -grad_x E = -(I - dD/dx)^T (x - D) / sigma^2``. Where D's Jacobian is small
    this is the usual ``(D - x) / sigma^2``; unlike it, the field is a gradient by construction.
    Every score costs one extra backward pass (and training a double backward: about 2-3x the
    step time of the plain model).

    It keeps the inner model's interface: ``parameterisation`` (so the EDM loss weight applies),
    ``cond_channels``, ``sigma_data``, ``receptive_field``, and ``denoise`` = Tweedie on the
    conservative score.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self._score_model = EnergyScoreModel(self.energy)

    @property
    def parameterisation(self) -> str:
        return self.inner.parameterisation

    @property
    def cond_channels(self) -> int:
        return self.inner.cond_channels

    @property
    def sigma_data(self) -> torch.Tensor:
        return self.inner.sigma_data

    @property
    def receptive_field(self):
        return self.inner.receptive_field

    @property
    def backbone(self) -> nn.Module:
        return self.inner.backbone

    def energy(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """E(x, sigma): (B,)."""
        d = self.inner.denoise(x, sigma, cond)
        s2 = sigma.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1))) ** 2
        return ((x - d).square() / (2.0 * s2)).flatten(1).sum(dim=1)

    def forward(self, x: torch.Tensor, sigma, cond: torch.Tensor | None = None) -> torch.Tensor:
        from ..utils.tensor import as_sigma_batch

        sigma = as_sigma_batch(sigma, x.shape[0], device=x.device, dtype=x.dtype)
        return self._score_model(x, sigma, cond)

    def denoise(self, x: torch.Tensor, sigma, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Tweedie's estimate on the conservative score: x + sigma^2 s(x, sigma)."""
        from ..utils.tensor import append_dims, as_sigma_batch

        sigma = as_sigma_batch(sigma, x.shape[0], device=x.device, dtype=x.dtype)
        return x + append_dims(sigma * sigma, x.ndim) * self(x, sigma, cond)
