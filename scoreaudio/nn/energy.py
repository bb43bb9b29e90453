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

__all__ = ["EnergyScoreModel"]


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
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            e = self.energy(x, sigma, cond)
            (grad,) = torch.autograd.grad(e.sum(), x, create_graph=create_graph)
        return -grad if create_graph else -grad.detach()
