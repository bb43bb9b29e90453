"""The denoising methods as pure functions of a model and a noisy state: :data:`METHOD_FUNCTIONS`.

Each method maps ``y`` (B, C, *S), the encoded noisy input, to an estimate of the clean state of
the same shape. The caller (:class:`scoreaudio.denoise.SpeechDenoiser`) does loudness, chunking
and the noise-level estimate; these functions only do the mathematics. They all take keyword
arguments ``sigma`` (the input's noise level in model space, for the prior-based methods),
``cond`` (the conditioning for conditional models), ``sigma_min`` / ``sigma_max`` /
``sigma_data`` (the checkpoint's), ``steps`` (network calls) and ``generator``.

Prior-based (an unconditional model of clean speech; the noise must be white Gaussian in the
model's state for them to be exact):

``tweedie``     ``x = y + sigma^2 s(y, sigma)``: the posterior mean E[x | y] in one call.
``posterior``   reverse diffusion from (y, sigma) to sigma_min: a draw from p(x | y).

Conditional (a model D(x, sigma, y) trained on clean/noisy pairs; any noise):

``predictive``  ``D(sigma_max z, sigma_max, y)``: at sigma_max the state carries nothing about the
                clean signal, so D is the trained regression E[x | y]. One call; the default.
``refined``     StoRM (Lemercier et al. 2023): the predictive estimate plus ``sigma_s z``, then
                reverse diffusion from sigma_s to sigma_min conditioned on y; ``steps`` calls in
                all (one predictive, the rest ancestral reverse-diffusion steps ending in a
                Tweedie step; :func:`scoreaudio.sampling.ancestral`, exact for large steps). It
                restores detail the regression averages away, at the cost of a sample's variance.
``ouve``        SGMSE+ (Richter et al. 2023): the reverse mean-reverting SDE from ``y + sigma(1) z``
                with a Langevin corrector (:func:`scoreaudio.ouve.ouve_sampler`), for models
                trained with ``noise.train_distribution=ouve``; ``steps`` calls in all.
``conditional`` the earlier SGMSE-style start from ``y + 2 sigma_y z`` at sqrt(5) sigma_y with the
                predictor-corrector sampler; kept for old checkpoints and comparison.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import torch

from .errors import ScoreAudioError
from .utils.tensor import append_dims, as_sigma_batch

__all__ = [
    "DEFAULT_STEPS",
    "METHODS",
    "METHOD_FUNCTIONS",
    "check_method",
    "check_steps",
    "CONDITIONAL_METHODS",
    "PRIOR_METHODS",
    "REFINE_START",
    "predictive",
    "refined",
    "tweedie",
    "posterior",
    "conditional_pc",
    "ouve",
]

#: refined: the start level sigma_s in units of sigma_data (the predictive estimate's typical
#: error is about this share of the signal's std: ~10 dB SI-SDR).
REFINE_START = 0.3
#: conditional_pc: the start is y + k sigma_y z, k = this.
CONDITIONAL_START_FACTOR = 2.0


def _call(model, x: torch.Tensor, sigma: torch.Tensor, cond: Optional[torch.Tensor]) -> torch.Tensor:
    return model(x, sigma) if cond is None else model(x, sigma, cond)


def denoised(model, x: torch.Tensor, sigma, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
    """D(x, sigma[, cond]) = E[x0 | x]: the model's own ``denoise`` when it has one (EDM computes
    it without the score's 1/sigma^2), else Tweedie's formula on its score."""
    sig = as_sigma_batch(sigma, x.shape[0], device=x.device, dtype=x.dtype)
    if hasattr(model, "denoise"):
        return model.denoise(x, sig) if cond is None else model.denoise(x, sig, cond)
    return x + append_dims(sig * sig, x.ndim) * _call(model, x, sig, cond)


def _randn(like: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


# --------------------------------------------------------------------------------------------
# Prior-based
# --------------------------------------------------------------------------------------------
def tweedie(model, y: torch.Tensor, sigma, cond: Optional[torch.Tensor] = None, **_) -> torch.Tensor:
    """Tweedie's formula: the posterior mean E[x | y] for y = x + sigma z, z ~ N(0, I).

    ``x_hat = y + sigma^2 * s(y, sigma)`` with ``s = grad_y log p_sigma(y)`` the score of the noisy
    data (Robbins 1956; Efron 2011, Eq. (2.8)). With the exact score this is the MMSE estimate.
    ``model(y, sigma[, cond])`` returns the score; ``sigma`` is a float or (B,); y (B, C, *S).
    """
    sig = as_sigma_batch(sigma, y.shape[0], device=y.device, dtype=y.dtype)
    return y + append_dims(sig * sig, y.ndim) * _call(model, y, sig, cond)


def posterior(
    model,
    y: torch.Tensor,
    *,
    sigma: float,
    sigma_min: float,
    steps: int,
    generator: Optional[torch.Generator] = None,
    cond: Optional[torch.Tensor] = None,
    **_,
) -> torch.Tensor:
    """Reverse diffusion from the observation: y is a draw of the data perturbed at ``sigma``, so
    integrating the VE reverse SDE from (y, sigma) to sigma_min samples p(x | y) (Song et al.
    2021; Kadkhodaie & Simoncelli 2021). ``steps`` network calls."""
    from .sampling import pc_sampler, posterior_ladder

    if sigma <= sigma_min * 1.01:  # nothing to integrate: the input is already at the floor
        return tweedie(model, y, sigma=sigma, cond=cond)
    ladder = posterior_ladder(steps, sigma_min, sigma).to(y.device)
    fn = model if cond is None else (lambda x_, s_: model(x_, s_, cond))
    return pc_sampler(fn, y, ladder, corrector_steps=0, generator=generator)


# --------------------------------------------------------------------------------------------
# Conditional
# --------------------------------------------------------------------------------------------
def predictive(
    model,
    y: torch.Tensor,
    *,
    cond: torch.Tensor,
    sigma_max: float,
    generator: Optional[torch.Generator] = None,
    **_,
) -> torch.Tensor:
    """One call: ``D(sigma_max z, sigma_max, cond)``, the regression E[x | y] the conditional model
    learns at its top level (module docstring). ``y`` only fixes the shape. Without a
    ``generator`` the state's noise is drawn from a fixed seed, so the estimate is deterministic."""
    if generator is None:
        generator = torch.Generator(device=y.device).manual_seed(0)
    x = _randn(y, generator) * float(sigma_max)
    return denoised(model, x, float(sigma_max), cond)


def refined(
    model,
    y: torch.Tensor,
    *,
    cond: torch.Tensor,
    sigma_max: float,
    sigma_min: float,
    sigma_data: float,
    steps: int,
    generator: Optional[torch.Generator] = None,
    start: Optional[float] = None,
    **_,
) -> torch.Tensor:
    """StoRM-style: predictive estimate, then ``steps - 1`` calls of conditional reverse diffusion
    from ``start`` (default :data:`REFINE_START` x sigma_data) down to sigma_min."""
    from .sampling import ancestral, posterior_ladder

    x_hat = predictive(model, y, cond=cond, sigma_max=sigma_max, generator=generator)
    if steps < 2:
        return x_hat
    s0 = float(start) if start is not None else REFINE_START * float(sigma_data)
    s0 = min(max(s0, sigma_min * 1.5), sigma_max)
    x = x_hat + s0 * _randn(x_hat, generator)
    ladder = (
        posterior_ladder(steps - 1, sigma_min, s0).to(y.device)
        if steps > 2
        else torch.tensor([s0, sigma_min], device=y.device)
    )
    return ancestral(lambda x_, s_: model(x_, s_, cond), x, ladder, generator=generator, final_denoise=True)


def conditional_pc(
    model,
    y: torch.Tensor,
    *,
    cond: torch.Tensor,
    sigma: float,
    sigma_min: float,
    sigma_max: float,
    steps: int,
    snr: float = 0.16,
    generator: Optional[torch.Generator] = None,
    **_,
) -> torch.Tensor:
    """The earlier conditional sampler: start at ``y + k sigma z`` (level ``sqrt(1 + k^2) sigma``),
    then the predictor-corrector sampler down to sigma_min (SGMSE-style, a heuristic start)."""
    from .sampling import pc_sampler, sampler_ladder

    k = CONDITIONAL_START_FACTOR
    start = min(max(math.sqrt(1.0 + k * k) * sigma, sigma_min * 1.01), sigma_max)
    add = math.sqrt(max(start * start - sigma * sigma, 0.0))
    x = y + add * _randn(y, generator)
    plan = sampler_ladder("pc", steps, sigma_min, start, snr=snr)
    return pc_sampler(
        lambda x_, s_: model(x_, s_, cond), x, plan.sigmas.to(y.device), generator=generator, **plan.kwargs
    )


#: ouve: the corrector's snr (SGMSE+'s setting).
OUVE_SNR = 0.5


def ouve(
    model,
    y: torch.Tensor,
    *,
    cond: torch.Tensor,
    process,
    steps: int,
    generator: Optional[torch.Generator] = None,
    **_,
) -> torch.Tensor:
    """SGMSE+'s sampler on the model's VE score (:mod:`scoreaudio.ouve`); ``process`` is the
    checkpoint's :class:`~scoreaudio.ouve.OUVE`. ``steps`` calls, >= 2."""
    from .ouve import ouve_sampler

    return ouve_sampler(
        lambda x_, s_: model(x_, s_, cond),
        lambda x_, s_: denoised(model, x_, s_, cond),
        y,
        process,
        steps=steps,
        snr=OUVE_SNR,
        generator=generator,
    )


#: method name -> function(model, y, **keywords) -> estimate (B, C, *S).
METHOD_FUNCTIONS: Dict[str, Callable[..., torch.Tensor]] = {
    "tweedie": tweedie,
    "posterior": posterior,
    "predictive": predictive,
    "refined": refined,
    "conditional": conditional_pc,
    "ouve": ouve,
}
#: Methods that need an unconditional prior / a conditional model.
PRIOR_METHODS = ("tweedie", "posterior")
CONDITIONAL_METHODS = ("predictive", "refined", "conditional", "ouve")
#: The denoising methods, in the order the docs list them.
METHODS = tuple(METHOD_FUNCTIONS)
#: Network evaluations per chunk when ``steps`` is not given.
DEFAULT_STEPS = {"tweedie": 1, "posterior": 20, "predictive": 1, "refined": 6, "conditional": 30, "ouve": 30}


def check_method(method: Optional[str], usable: tuple, default: str, conditional: bool) -> str:
    """``method`` (None: ``default``) if a checkpoint whose methods are ``usable`` can run it;
    ScoreAudioError naming the valid ones otherwise."""
    method = default if method is None else str(method)
    if method == "langevin":
        raise ScoreAudioError(
            "method 'langevin' was replaced by 'posterior' (reverse diffusion from the input): "
            "annealed Langevin mixes toward the marginal, not the posterior"
        )
    if method not in METHODS:
        raise ScoreAudioError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    if method not in usable:
        kind = "a conditional" if conditional else "an unconditional (clean-speech prior)"
        raise ScoreAudioError(
            f"method '{method}' does not fit this checkpoint: it is {kind} model; "
            f"use one of: {', '.join(usable)}"
        )
    return method


def check_steps(method: str, steps: Optional[int]) -> int:
    """Network calls per chunk for ``method``: ``steps``, or :data:`DEFAULT_STEPS` when None;
    ScoreAudioError for a count the method cannot use."""
    if steps is None:
        return DEFAULT_STEPS[method]
    if isinstance(steps, bool) or int(steps) != steps or int(steps) < 1:
        raise ScoreAudioError(f"steps must be a positive integer, got {steps!r}")
    steps = int(steps)
    if method == "posterior" and steps < 2:
        raise ScoreAudioError(
            "posterior needs steps >= 2 (one reverse-diffusion step and the final Tweedie "
            "step); use method='tweedie' for one step"
        )
    if method in ("conditional", "refined", "ouve") and steps < 2:
        raise ScoreAudioError(f"{method} needs steps >= 2; use method='predictive' for one call")
    if method in ("tweedie", "predictive") and steps != 1:
        raise ScoreAudioError(f"{method} makes exactly one network call; steps={steps} does not apply")
    return steps
