"""SGMSE+'s mean-reverting diffusion (OUVE) on a conditional VE model: training levels and sampler.

Richter, Welker, Lemercier, Lay & Gerkmann (2023), "Speech enhancement and dereverberation with
diffusion-based generative models", Eq. (4)-(7): the forward SDE

    dx_t = gamma (y - x_t) dt + g(t) dw,   g(t) = s_min (s_max / s_min)^t sqrt(2 ln(s_max / s_min)),

t in [0, 1], drifts the clean x_0 towards the noisy y while adding noise, with the Gaussian kernel

    x_t = e^{-gamma t} x_0 + (1 - e^{-gamma t}) y + sigma(t) z,
    sigma(t)^2 = s_min^2 ((s_max / s_min)^{2t} - e^{-2 gamma t}) ln(s_max / s_min) / (gamma + ln(s_max / s_min)).

Given y this is an affine change of coordinates of the VE diffusion that scoreaudio's conditional
models already learn: with ``a = e^{gamma t}``,

    x_VE = a (x_t - (1 - e^{-gamma t}) y) = x_0 + sigma_eff(t) z,   sigma_eff(t) = a sigma(t),

and, the map being ``a`` times the identity, ``grad_{x_t} log p_t(x_t | y) = a s_VE(x_VE, sigma_eff, y)``.
So one network ``D(x, sigma, y)`` serves both: training under OUVE is DSM with cond at the levels
``sigma_eff(t)``, ``t ~ U[t_eps, 1]`` (:func:`sample_sigmas_ouve`; SGMSE+'s loss
``|sigma(t) s + z|^2`` is NCSN's ``|sigma_eff s_VE + z|^2``), and the sampler
(:func:`ouve_sampler`) integrates the reverse OUVE SDE from SGMSE+'s prior ``N(y, sigma(1)^2)``
with the score mapped as above. What OUVE changes against the VE methods is the levels trained,
the start (the noisy input plus noise, not pure noise: its mismatch ``e^{-gamma}(x_0 - y)`` is what
the method accepts) and the discretisation.

Levels here are in units of sigma_data (``s_min``, ``s_max`` below are multiplied by it), so one
setting serves every representation; SGMSE+'s 0.05 / 0.5 on its compressed spectrogram (data of
std ~0.25) are about 0.2 / 2 sigma_data, the defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .utils.tensor import append_dims

__all__ = ["OUVE", "ouve_one_call", "ouve_sampler", "sample_sigmas_ouve"]


@dataclass(frozen=True)
class OUVE:
    """The OUVE SDE's constants in model units: ``gamma`` (stiffness, 1/time), ``sigma_min`` /
    ``sigma_max`` (the diffusion's scale at t = 0 / 1) and ``t_eps`` (the smallest time used)."""

    gamma: float = 1.5
    sigma_min: float = 0.05
    sigma_max: float = 0.5
    t_eps: float = 0.03

    def __post_init__(self):
        if not (self.gamma > 0 and 0 < self.sigma_min < self.sigma_max and 0 < self.t_eps < 1):
            raise ValueError(f"OUVE needs gamma > 0, 0 < sigma_min < sigma_max and 0 < t_eps < 1, got {self}")

    @classmethod
    def from_config(cls, noise_cfg, sigma_data: float) -> "OUVE":
        """From ``noise.ouve_*`` (levels in units of sigma_data)."""
        return cls(
            gamma=float(noise_cfg.ouve_gamma),
            sigma_min=float(noise_cfg.ouve_sigma_min) * sigma_data,
            sigma_max=float(noise_cfg.ouve_sigma_max) * sigma_data,
            t_eps=float(noise_cfg.ouve_t_eps),
        )

    @property
    def _log_ratio(self) -> float:
        return math.log(self.sigma_max / self.sigma_min)

    def g(self, t: torch.Tensor) -> torch.Tensor:
        """The diffusion coefficient g(t) (Eq. (5))."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t * math.sqrt(2.0 * self._log_ratio)

    def std(self, t: torch.Tensor) -> torch.Tensor:
        """sigma(t), the kernel's std (Eq. (7)): the solution of dV/dt = -2 gamma V + g^2, V(0) = 0."""
        lr = self._log_ratio
        var = self.sigma_min**2 * (
            (self.sigma_max / self.sigma_min) ** (2 * t) - torch.exp(-2 * self.gamma * t)
        )
        return (var * lr / (self.gamma + lr)).clamp_min(0).sqrt()

    def sigma_eff(self, t: torch.Tensor) -> torch.Tensor:
        """The VE level of time t: ``e^{gamma t} sigma(t)``."""
        return torch.exp(self.gamma * t) * self.std(t)

    def to_ve(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """OUVE state (B, ...) at times t (B,) -> the VE state ``e^{gamma t}(x - (1 - e^{-gamma t}) y)``."""
        decay = append_dims(torch.exp(-self.gamma * t), x.ndim)
        return (x - (1.0 - decay) * y) / decay


def sample_sigmas_ouve(
    batch: int, process: OUVE, *, generator: Optional[torch.Generator] = None, device=None
) -> torch.Tensor:
    """(B,) training levels ``sigma_eff(t)``, ``t ~ U[t_eps, 1]``: SGMSE+'s time distribution."""
    u = torch.rand(batch, generator=generator, device=device)
    t = process.t_eps + (1.0 - process.t_eps) * u
    return process.sigma_eff(t)


def ouve_sampler(
    score_ve: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    denoise_ve: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    process: OUVE,
    *,
    steps: int,
    snr: float = 0.5,
    corrector: bool = True,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Reverse OUVE SDE from ``y + sigma(1) z`` to ``t_eps``, then a Tweedie step: ``steps`` calls.

    Args:
        score_ve: ``(x_VE, sigma) -> s_VE``, the conditional model's score (cond bound), sigma (B,).
        denoise_ve: ``(x_VE, sigma) -> D``, its denoiser, for the last call.
        y: (B, C, *S) the noisy input in model space (the SDE's mean-reversion target).
        process: the SDE's constants.
        steps: network calls in all, >= 2: with the corrector, ``(steps - 1) // 2`` predictor steps
            each preceded by one annealed-Langevin corrector step (SGMSE+'s PC sampler, snr 0.5),
            else ``steps - 1`` predictor steps; the last call is ``D`` at t_eps (which removes the
            ``(1 - e^{-gamma t_eps})`` share of y still mixed into the state).
        snr: the corrector's signal-to-noise ratio r: step ``eps = 2 (r |z| / |s|)^2`` (Song et al. 2021).
            On a Gaussian level of variance V that step is ``2 r^2 V`` and unadjusted Langevin then
            keeps the variance ``V / (1 - r^2)``: SGMSE+'s r = 0.5 widens each level by up to 4/3
            (measured on a Gaussian posterior in the tests); ``corrector=False`` is exact.

    The predictor is Euler-Maruyama on the reverse SDE
    ``dx = [gamma (y - x) - g(t)^2 s(x, t)] dt + g(t) dw-bar`` over a uniform grid of t, with
    ``s(x, t) = e^{gamma t} s_VE(x_VE, sigma_eff(t))`` (module docstring).
    """
    if steps < 2:
        raise ValueError(
            f"the OUVE sampler needs steps >= 2 (one reverse step and the final Tweedie step), got {steps}"
        )
    n = (steps - 1) // 2 if corrector and steps >= 3 else steps - 1
    use_corrector = corrector and steps >= 3
    b = y.shape[0]
    ones = torch.ones(b, device=y.device, dtype=y.dtype)
    grid = torch.linspace(1.0, process.t_eps, n + 1, dtype=torch.float64).tolist()

    def randn() -> torch.Tensor:
        return torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)

    def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return append_dims(torch.exp(process.gamma * t), x.ndim) * score_ve(
            process.to_ve(x, y, t), process.sigma_eff(t)
        )

    x = y + append_dims(process.std(ones), y.ndim) * randn()
    for t_now, t_next in zip(grid[:-1], grid[1:]):
        t = ones * t_now
        if use_corrector:  # the corrector of Song et al. 2021's PC sampler: one Langevin step at time t
            s = score(x, t)
            z = randn()
            ratio = z.flatten(1).norm(dim=1) / s.flatten(1).norm(dim=1).clamp_min(1e-12)
            eps = append_dims(2.0 * (snr * ratio) ** 2, x.ndim)
            x = x + eps * s + (2.0 * eps).sqrt() * z
        dt = t_now - t_next
        g = append_dims(process.g(t), x.ndim)
        drift = process.gamma * (y - x) - g.square() * score(x, t)  # reverse-time drift
        x = x - drift * dt + g * math.sqrt(dt) * randn()
    t_end = ones * grid[-1]
    return denoise_ve(process.to_ve(x, y, t_end), process.sigma_eff(t_end))


def ouve_one_call(
    denoise_ve: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    process: OUVE,
    *,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """The network's MMSE estimate at the sampler's start: ``D(x_VE, sigma_eff(1))`` for
    ``x_1 = y + sigma(1) z`` drawn from SGMSE+'s prior, one call (B, C, *S) -> (B, C, *S).

    It is what the first reverse step aims at and a cheap, low-variance signal of how well the
    model has learned its top level (validation uses it: a few-step sampler with the corrector is
    dominated by its discretisation error and tells little about the model).
    """
    ones = torch.ones(y.shape[0], device=y.device, dtype=y.dtype)
    z = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
    x = y + append_dims(process.std(ones), y.ndim) * z
    return denoise_ve(process.to_ve(x, y, ones), process.sigma_eff(ones))
