"""One optimiser step of score-model training, and the schedules around it.

The trainer (:mod:`scoreaudio.train`) and the benchmark (``tools/benchmark.py``) both call
:func:`train_step`, so what is timed is what trains. A step is:

    for each micro-batch: encode on the device -> draw sigma -> draw noise -> weighted per-example
    loss -> backward;  then check every loss and the gradient norm are finite -> clip -> AdamW
    step -> EMA update

Every random draw is a function of (train.seed, step, micro-batch, rank), which is what makes
resumed runs bit-exact.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from .losses import compressed_spectral_loss, dsm_loss, ssm_loss
from .noise import NoiseLevels, sample_training_sigmas
from .ouve import OUVE
from .utils.tensor import derive_seed

__all__ = [
    "NonFiniteStep",
    "OBJECTIVES",
    "StepResult",
    "autocast",
    "compute_loss",
    "ema_half_life",
    "loss_weight",
    "lr_at",
    "predictive_noise",
    "predictive_spectral_term",
    "sigma_bucket",
    "train_step",
    "training_sigmas",
]


class NonFiniteStep(Exception):
    """A loss or a gradient was not finite; the optimiser step was not taken.

    ``what`` is "loss" or "gradient"; ``sigma`` the noise level of the first bad example (for a
    gradient, the largest sigma of the step, since a gradient mixes every example).
    """

    def __init__(self, what: str, sigma: float):
        super().__init__(f"non-finite {what} (sigma={sigma:.4g})")
        self.what, self.sigma = what, sigma


@dataclass
class StepResult:
    """What one step leaves for the host-side bookkeeping; tensors are detached, on the device."""

    losses: torch.Tensor  # (B * grad_accum,) weighted per-example losses
    sigmas: torch.Tensor  # (B * grad_accum,) their noise levels
    grad_norm: torch.Tensor  # () global gradient norm before clipping


# --------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------
def lr_at(step: int, train_cfg: DictConfig) -> float:
    """Learning rate for optimiser step ``step`` (0-based): linear warm-up, then the schedule.

    ``cosine``: from ``lr`` down to ``lr_min_ratio * lr`` at ``train.steps`` (a fixed budget, the
    usual choice for short runs); ``inv_sqrt``: EDM2's ``lr / sqrt(max(step / lr_ref_steps, 1))``
    (no end point needed); ``constant``: EDM's schedule.
    """
    lr, warm = float(train_cfg.lr), max(1, int(train_cfg.warmup_steps))
    if step + 1 < warm:
        return lr * (step + 1) / warm
    schedule = train_cfg.lr_schedule
    if schedule == "cosine":
        span = max(1, int(train_cfg.steps) - warm)
        progress = min(1.0, max(0.0, (step + 1 - warm) / span))
        floor = lr * float(train_cfg.lr_min_ratio)
        return floor + (lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "inv_sqrt":
        return lr / math.sqrt(max((step + 1) / max(1, int(train_cfg.lr_ref_steps)), 1.0))
    return lr


def ema_half_life(train_cfg: DictConfig) -> float:
    """The EMA half-life in steps: ``train.ema_half_life``, or ``ema_fraction * train.steps``.

    Tying the EMA length to the run keeps its averaging window a fixed share of training, like
    EDM2's power EMA whose width is relative to the training time: a 150-step run gets a short
    average, a 100k-step run a long one.
    """
    if train_cfg.ema_half_life is not None:
        return float(train_cfg.ema_half_life)
    return max(1.0, float(train_cfg.ema_fraction) * int(train_cfg.steps))


def sigma_bucket(sigma: float) -> str:
    """Decade bucket of a sigma for per-level loss logging ("1e-2..1e-1")."""
    k = math.floor(math.log10(max(sigma, 1e-12)))
    return f"1e{k}..1e{k + 1}"


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CUDA (``auto``) or when asked for; a no-op context otherwise."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if use_bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------------------------
# The loss
# --------------------------------------------------------------------------------------------
def weighting_for(cfg: DictConfig, parameterisation: str) -> str:
    """``loss.weighting`` resolved: ``auto`` is ``edm`` for EDM-preconditioned models, else ``sigma2``."""
    w = cfg.loss.weighting
    if w == "auto":
        return "edm" if parameterisation == "edm" else "sigma2"
    return w


def loss_weight(weighting: str, sigma: torch.Tensor, sigma_data: torch.Tensor | float) -> torch.Tensor:
    """Per-example weight (B,) applied on top of the sigma^2-weighted losses of :mod:`scoreaudio.losses`.

    The losses there weight the score error by sigma^2 (NCSN), which on an EDM-preconditioned model
    ``D = c_skip x + c_out F`` puts the weight ``c_out^2 / sigma^2 = sd^2 / (sigma^2 + sd^2)`` on the
    raw network output F: the high levels, where structure is built, barely train. EDM's
    ``lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2`` gives F unit weight at every sigma; relative
    to sigma^2 that is the factor ``(sigma^2 + sd^2) / sd^2`` returned here for ``"edm"``
    (Karras et al. 2022, Eq. (8) and Table 1). ``"sigma2"`` returns ones (NCSN's weighting).
    """
    if weighting == "sigma2":
        return torch.ones_like(sigma)
    if weighting == "edm":
        sd2 = torch.as_tensor(sigma_data, dtype=sigma.dtype, device=sigma.device) ** 2
        return (sigma.square() + sd2) / sd2
    raise ValueError(f"unknown loss weighting {weighting!r}; valid: edm, sigma2")


#: loss.objective -> the score-matching loss it trains with. ``cdsm`` is DSM for a conditional model
#: (the noisy input goes in as ``cond``; see scoreaudio.config.is_conditional).
OBJECTIVES: dict[str, Callable[..., torch.Tensor]] = {"dsm": dsm_loss, "cdsm": dsm_loss, "ssm": ssm_loss}


def compute_loss(
    model,
    x0: torch.Tensor,
    sigma: torch.Tensor,
    cond: torch.Tensor | None,
    noise: torch.Tensor,
    cfg: DictConfig,
    generator: torch.Generator | None = None,
    *,
    weighting: str = "sigma2",
    sigma_data: float | torch.Tensor = 1.0,
    sigma_max: float | None = None,
) -> torch.Tensor:
    """Per-example training loss (B,) for the configured objective, with ``weighting`` applied.

    ``sigma_max`` (the run's top level) is needed by ``loss.predictive_spectral_weight > 0``."""
    loss = OBJECTIVES.get(cfg.loss.objective)
    if loss is None:
        raise ValueError(f"unknown loss.objective {cfg.loss.objective!r}; valid: {', '.join(OBJECTIVES)}")
    spectral_weight = float(cfg.loss.get("predictive_spectral_weight", 0.0))
    if loss is dsm_loss and spectral_weight > 0:
        per_example, score = dsm_loss(model, x0, sigma, cond, noise=noise, return_output=True)
        per_example = per_example * loss_weight(weighting, sigma.to(per_example.dtype), sigma_data)
        if sigma_max is None:
            raise ValueError("loss.predictive_spectral_weight > 0 needs the run's sigma_max")
        return per_example + spectral_weight * predictive_spectral_term(
            x0, sigma, noise, score, cfg, sigma_max=sigma_max
        )
    if loss is dsm_loss:
        per_example = dsm_loss(model, x0, sigma, cond, noise=noise)
    else:
        per_example = ssm_loss(
            model,
            x0,
            sigma,
            cond,
            n_projections=cfg.loss.n_projections,
            variance_reduction=cfg.loss.variance_reduction,
            projection=cfg.loss.projection,
            generator=generator,
        )
    return per_example * loss_weight(weighting, sigma.to(per_example.dtype), sigma_data)


def predictive_spectral_term(
    x0: torch.Tensor,
    sigma: torch.Tensor,
    noise: torch.Tensor,
    score: torch.Tensor,
    cfg: DictConfig,
    *,
    sigma_max: float,
) -> torch.Tensor:
    """Per-example (B,) compressed spectral loss of the one-call estimate, 0 off the top level.

    The estimate is Tweedie's ``D = x + sigma^2 s`` at the state ``x = x0 + sigma z`` the loss fed
    the model; only the draws at ``sigma_max`` (``noise.train_distribution=conditional``'s
    predictive half, where D is the output of the one-call mode) get the term, so the refinement
    band keeps plain DSM and with it a consistent score.
    """
    top = sigma >= sigma_max * (1.0 - 1e-6)
    out = torch.zeros_like(sigma, dtype=score.dtype)
    if not bool(top.any()):
        return out
    s_ = sigma[top].reshape(-1, *([1] * (x0.ndim - 1))).to(score.dtype)
    x = x0[top] + s_ * noise[top]
    denoised = x + s_.square() * score[top]
    term = compressed_spectral_loss(
        denoised.float(),
        x0[top].float(),
        n_ffts=tuple(cfg.loss.spectral_n_ffts),
        compression=float(cfg.loss.spectral_compression),
    )
    return out.index_put((top.nonzero(as_tuple=True)[0],), term.to(out.dtype))


def predictive_noise(
    x0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor, sigma_max: float
) -> torch.Tensor:
    """The noise that makes DSM at ``sigma_max`` the one-call predictive regression, exactly.

    Inference feeds the state ``sigma_max z`` with no clean signal in it (the clean signal is what
    is unknown); DSM's ``x = x0 + sigma z`` would still carry ``x0 / sigma_max`` there, which a
    spectrogram network reads (a harmonic's bins stand out of the noise floor) and then misses at
    inference. With ``z' = z - x0 / sigma`` the state is ``x = sigma z`` and DSM's target
    ``-z' / sigma = (x0 - x) / sigma^2`` is Tweedie's for D = x0: the loss is the regression
    ``|D(sigma z, sigma, y) - x0|^2`` the predictive mode evaluates. Other levels are unchanged.
    """
    top = (sigma >= sigma_max * (1.0 - 1e-6)).reshape(-1, *([1] * (x0.ndim - 1)))
    return torch.where(top, noise - x0 / sigma.reshape(-1, *([1] * (x0.ndim - 1))), noise)


def training_sigmas(
    cfg: DictConfig,
    batch: int,
    levels: NoiseLevels,
    *,
    ladder: torch.Tensor | None,
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """The (B,) sigmas of one micro-batch under ``noise.train_distribution`` (see noise.py)."""
    n = cfg.noise
    ouve = OUVE.from_config(n, levels.sigma_data) if n.train_distribution == "ouve" else None
    return sample_training_sigmas(
        n.train_distribution,
        batch,
        sigma_min=levels.sigma_min,
        sigma_max=levels.sigma_max,
        sigma_data=levels.sigma_data,
        log_normal_mean=n.log_normal_mean,
        log_normal_std=n.log_normal_std,
        band=tuple(n.denoise_band),
        band_weight=float(n.band_weight),
        predictive_share=float(n.predictive_share),
        ladder=ladder,
        ouve=ouve,
        generator=generator,
        device=device,
    )


# --------------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------------
def train_step(
    *,
    model: torch.nn.Module,
    train_model,
    optimizer: torch.optim.Optimizer,
    ema,
    batches: Iterator[dict],
    representation,
    sigmas: NoiseLevels | Mapping[str, float],
    cfg: DictConfig,
    step: int,
    device: torch.device,
    ladder: torch.Tensor | None = None,
    rank: int = 0,
    world: int = 1,
) -> StepResult:
    """Take optimiser step number ``step + 1``: returns its losses, sigmas and gradient norm.

    Args:
        model: the plain :class:`~scoreaudio.nn.score_model.ScoreModel` (parameters, sigma_data).
        train_model: what the loss calls: ``model``, or it compiled / wrapped in DDP.
        optimizer, ema: the run's AdamW and :class:`~scoreaudio.utils.ema.EMA`.
        batches: yields ``grad_accum`` collated batches ``{"clean": (B, 1, T)[, "noisy"]}``.
        representation: encodes waveforms into model space on ``device``.
        sigmas: the run's :class:`~scoreaudio.noise.NoiseLevels` (or the dict of them a
            checkpoint stores).
        cfg: the run's config; step: the number of steps already taken.
        ladder: (L,) NCSN levels, for ``noise.train_distribution=discrete``.

    Raises:
        NonFiniteStep: a loss or the gradient norm is not finite; parameters, optimiser and EMA
            are left as they were, so the last checkpoint and the live state agree.
    """
    levels = NoiseLevels.coerce(sigmas)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    for g in optimizer.param_groups:
        g["lr"] = lr_at(step, cfg.train)
    weighting = weighting_for(cfg, model.parameterisation)
    accum = int(cfg.train.grad_accum)
    step_losses, step_sigmas = [], []
    for micro in range(accum):
        batch = next(batches)
        gen = torch.Generator(device=device).manual_seed(derive_seed(cfg.train.seed, 4, step, micro, rank))
        x0 = representation.encode(batch["clean"].to(device, non_blocking=True))
        cond = None
        if model.cond_channels:
            cond = representation.encode(batch["noisy"].to(device, non_blocking=True))
        sigma = training_sigmas(cfg, x0.shape[0], levels, ladder=ladder, generator=gen, device=device)
        noise = torch.randn(x0.shape, generator=gen, device=device)
        if cfg.noise.train_distribution == "conditional":
            noise = predictive_noise(x0, sigma, noise, levels.sigma_max)
        sync = train_model.no_sync() if world > 1 and micro < accum - 1 else contextlib.nullcontext()
        with sync:
            with autocast(device, cfg.train.precision):
                per_example = compute_loss(
                    train_model,
                    x0,
                    sigma,
                    cond,
                    noise,
                    cfg,
                    gen,
                    weighting=weighting,
                    sigma_data=model.sigma_data,
                    sigma_max=levels.sigma_max,
                )
            per_example = per_example.float()
            (per_example.mean() / accum).backward()
        step_losses.append(per_example.detach())
        step_sigmas.append(sigma.detach())
    losses, sig = torch.cat(step_losses), torch.cat(step_sigmas)
    if not torch.isfinite(losses).all():  # one host sync per step; needed to stop at once
        bad = int((~torch.isfinite(losses)).nonzero()[0])
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteStep("loss", float(sig[bad]))
    clip = float(cfg.train.grad_clip) if cfg.train.grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if not torch.isfinite(grad_norm):  # clip_grad_norm_ returns NaN/inf without raising
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteStep("gradient", float(sig.max()))
    optimizer.step()
    ema.update(model, step + 1)
    return StepResult(losses, sig, grad_norm.detach())
