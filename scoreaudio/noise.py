"""Noise levels: sigma ladders, training-time sigma samplers and the NCSNv2 selection rules.

Everything is in the variance-exploding (sigma) view: data ``x0`` is perturbed as
``x = x0 + sigma * z`` with ``z ~ N(0, I)``. A *ladder* is a 1-D tensor of noise levels in
descending order, ``sigmas[0] = sigma_max`` ... ``sigmas[-1] = sigma_min``; samplers walk it from
left to right. A run's *noise levels* (:class:`NoiseLevels`) are the settings the ladder and the
training draws come from; checkpoints store them as the dict ``NoiseLevels.to_dict()`` under
``"sigmas"``.

The rules at the end pick the ladder from the data, following Song & Ermon (2020), "Improved
Techniques for Training Score-Based Generative Models" (NCSNv2), Techniques 1, 2 and 4.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

import torch

from scoreaudio.errors import CheckpointError
from scoreaudio.utils.checks import check_int

__all__ = [
    "NoiseLevels",
    "gamma_from_dim",
    "geometric_sigmas",
    "karras_sigmas",
    "langevin_eps",
    "langevin_variance_ratio",
    "num_levels_from_dim",
    "sample_sigmas_discrete",
    "sample_sigmas_log_normal",
    "sample_sigmas_log_uniform",
    "sample_sigmas_mixture",
    "sample_sigmas_conditional",
    "sample_training_sigmas",
    "TRAIN_DISTRIBUTIONS",
    "sigma_max_from_data",
]


# --------------------------------------------------------------------------------------------
# A run's noise levels
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoiseLevels:
    """The noise-level settings of one training run (what checkpoints store as ``"sigmas"``).

    Every sigma is a noise standard deviation in the units of the model's representation (model
    space: the encoded waveform or compressed STFT the network sees), not of the audio.

    Attributes:
        sigma_min: smallest noise level of the run (the ladder's last rung).
        sigma_max: largest noise level (NCSNv2 Technique 1 unless the recipe sets it).
        num_levels: rungs of the geometric ladder from sigma_max down to sigma_min (Technique 2).
        sigma_data: std of the encoded training data (EDM preconditioning).
        dim: numbers in one encoded training example, as measured when the levels were chosen
            (None: not recorded).
        noise_map_scale: the scale k of a prior's noise-level map fitted on validation speech at
            the end of training (calibration.py; dimensionless); None: not calibrated, the
            analytic map (k = 1) applies.

    :meth:`to_dict` gives the on-disk dict (keys in this order; None fields left out) and
    :meth:`from_dict` reads it back, so checkpoints and weights files keep the dict they always had.
    The object is immutable: :meth:`with_noise_map_scale` returns a calibrated copy.
    """

    sigma_min: float
    sigma_max: float
    num_levels: int
    sigma_data: float
    dim: Optional[int] = None
    noise_map_scale: Optional[float] = None

    #: keys a stored dict must have, and the optional ones (None when absent)
    REQUIRED = ("sigma_min", "sigma_max", "num_levels", "sigma_data")
    OPTIONAL = ("dim", "noise_map_scale")

    def to_dict(self) -> dict[str, Any]:
        """The dict checkpoints, ``sigmas.json`` and weights-file metadata hold: every field in
        declaration order, the optional ones only when set."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None or f.name in self.REQUIRED:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "sigmas") -> "NoiseLevels":
        """Read a stored dict (:meth:`to_dict`; any checkpoint's ``"sigmas"``).

        Raises:
            CheckpointError: ``d`` is not a dict, lacks a required key, has an unknown key or a
                value that is not a number (one line, starting with ``source``).
        """
        if not isinstance(d, Mapping):
            raise CheckpointError(f"{source} must be a dict of noise levels, got {type(d).__name__}")
        missing = [k for k in cls.REQUIRED if k not in d]
        if missing:
            raise CheckpointError(
                f"{source} lacks {', '.join(repr(k) for k in missing)} (has "
                f"{', '.join(map(str, d)) or 'nothing'}; needs {', '.join(cls.REQUIRED)})"
            )
        unknown = [str(k) for k in d if k not in cls.REQUIRED + cls.OPTIONAL]
        if unknown:
            raise CheckpointError(
                f"{source} has unknown keys {', '.join(unknown)} (known: "
                f"{', '.join(cls.REQUIRED + cls.OPTIONAL)})"
            )
        values: dict[str, Any] = {}
        for key, kind in (
            ("sigma_min", float),
            ("sigma_max", float),
            ("num_levels", int),
            ("sigma_data", float),
            ("dim", int),
            ("noise_map_scale", float),
        ):
            if d.get(key) is None:
                continue
            try:
                values[key] = kind(d[key])
            except (TypeError, ValueError):
                raise CheckpointError(f"{source}: {key}={d[key]!r} is not a number") from None
        return cls(**values)

    @classmethod
    def coerce(cls, levels: "NoiseLevels | Mapping[str, Any]") -> "NoiseLevels":
        """``levels`` itself, or a plain dict of the stored keys read with :meth:`from_dict`."""
        return levels if isinstance(levels, cls) else cls.from_dict(levels)

    def with_noise_map_scale(self, scale: float) -> "NoiseLevels":
        """A copy with the calibrated noise-map scale set."""
        return dataclasses.replace(self, noise_map_scale=float(scale))


def _check_range(n: int, sigma_min: float, sigma_max: float) -> int:
    n = check_int("n", n)
    if not (0.0 < sigma_min <= sigma_max) or not math.isfinite(sigma_max):
        raise ValueError(
            f"need 0 < sigma_min <= sigma_max < inf, got sigma_min={sigma_min}, sigma_max={sigma_max}"
        )
    if n > 1 and sigma_min == sigma_max:
        raise ValueError(f"a ladder of {n} distinct levels needs sigma_min < sigma_max, both are {sigma_min}")
    return n


# --------------------------------------------------------------------------------------------
# Ladders
# --------------------------------------------------------------------------------------------
def geometric_sigmas(
    n: int,
    sigma_min: float,
    sigma_max: float,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Geometric ladder of ``n`` noise levels, descending: shape (n,).

    ``sigma_i = sigma_max * (sigma_min / sigma_max) ** (i / (n - 1))``, i = 0..n-1 (NCSN, Song &
    Ermon 2019, Sec. 4.1: "a positive geometric sequence"). The constant ratio
    ``gamma = sigma_{i-1} / sigma_i`` is what NCSNv2 Technique 2 fixes. ``n == 1`` gives
    ``[sigma_max]``.
    """
    n = _check_range(n, sigma_min, sigma_max)
    if n == 1:
        return torch.tensor([float(sigma_max)], dtype=dtype, device=device)
    log_s = torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64)
    sigmas = log_s.exp()
    sigmas[0], sigmas[-1] = float(sigma_max), float(sigma_min)  # exact end points
    return sigmas.to(dtype=dtype, device=device)


def karras_sigmas(
    n: int,
    sigma_min: float,
    sigma_max: float,
    rho: float = 7.0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Karras et al. (2022, EDM) ladder, descending: shape (n,).

    EDM Eq. (5): ``sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``,
    i = 0..n-1. ``rho = 7`` spends more steps at small sigma than the geometric ladder
    (which is the limit rho -> inf). The trailing ``sigma_N = 0`` of EDM is *not* included: the ODE
    sampler :func:`scoreaudio.sampling.heun` appends it itself.
    """
    n = _check_range(n, sigma_min, sigma_max)
    if rho <= 0:
        raise ValueError(f"rho must be positive, got {rho}")
    if n == 1:
        return torch.tensor([float(sigma_max)], dtype=dtype, device=device)
    ramp = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    sigmas[0], sigmas[-1] = float(sigma_max), float(sigma_min)
    return sigmas.to(dtype=dtype, device=device)


# --------------------------------------------------------------------------------------------
# Training-time sigma samplers: (B,) tensors
# --------------------------------------------------------------------------------------------
def sample_sigmas_log_uniform(
    batch: int,
    sigma_min: float,
    sigma_max: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw ``batch`` sigmas with ``log sigma ~ U[log sigma_min, log sigma_max]``: shape (B,).

    The continuous counterpart of NCSN's uniform choice among geometric levels (the VE SDE of
    Song et al. 2021 trains with ``sigma(t) = sigma_min (sigma_max/sigma_min)^t``, ``t ~ U[0, 1]``,
    which is the same distribution).
    """
    batch = check_int("batch", batch)
    _check_range(1, sigma_min, sigma_max)
    u = torch.rand(batch, generator=generator, device=device, dtype=torch.float32)
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return torch.exp(lo + (hi - lo) * u).to(dtype)


def sample_sigmas_log_normal(
    batch: int,
    log_mean: float,
    log_std: float,
    sigma_min: float,
    sigma_max: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw ``batch`` sigmas with ``log sigma ~ N(log_mean, log_std^2)``, clamped to [sigma_min, sigma_max]: (B,).

    EDM (Karras et al. 2022, Table 1, "Ours"): ``ln sigma ~ N(P_mean, P_std^2)`` with P_mean = -1.2,
    P_std = 1.2 for sigma_data = 0.5. It spends the training budget on the middle noise levels,
    where the denoiser has most to learn, instead of spreading it evenly over every decade; for
    denoising models, whose inputs sit at moderate noise levels, that is where quality comes from.
    """
    batch = check_int("batch", batch)
    _check_range(1, sigma_min, sigma_max)
    if not log_std > 0:
        raise ValueError(f"log_std must be positive, got {log_std}")
    z = torch.randn(batch, generator=generator, device=device, dtype=torch.float32)
    return torch.exp(log_mean + log_std * z).clamp(sigma_min, sigma_max).to(dtype)


def sample_sigmas_discrete(
    batch: int,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``batch`` levels uniformly from a ladder ``sigmas`` (L,): shape (B,).

    NCSN (Song & Ermon 2019), Eq. (6): the training loss averages over the L levels with equal
    probability; sampling a level index per example is the unbiased stochastic version.
    Output dtype follows ``sigmas``; ``device`` defaults to the ladder's device.
    """
    batch = check_int("batch", batch)
    sigmas = torch.as_tensor(sigmas)
    if sigmas.ndim != 1 or sigmas.numel() == 0:
        raise ValueError(f"sigmas must be a non-empty 1-D tensor, got shape {tuple(sigmas.shape)}")
    device = sigmas.device if device is None else torch.device(device)
    idx = torch.randint(sigmas.numel(), (batch,), generator=generator, device=device)
    return sigmas.to(device)[idx]


def sample_sigmas_mixture(
    batch: int,
    log_mean: float,
    log_std: float,
    band: tuple[float, float],
    band_weight: float,
    sigma_min: float,
    sigma_max: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw ``batch`` sigmas from a mixture for priors meant to denoise: shape (B,).

    With probability ``band_weight`` a draw is log-uniform over ``band = (lo, hi)`` (the levels a
    prior-based denoiser is evaluated at: the model-space std of the noise in the inputs users
    have), otherwise it is EDM's log-normal (``ln sigma ~ N(log_mean, log_std^2)``), which keeps the
    high levels generation needs trained. Everything is clamped to [sigma_min, sigma_max]. Each
    example consumes the same three draws (choice, uniform, normal) whatever it picks, so the
    stream of random numbers does not depend on the outcomes.
    """
    lo, hi = float(band[0]), float(band[1])
    if not (0.0 < lo < hi):
        raise ValueError(f"the denoising band must satisfy 0 < lo < hi, got {band}")
    if not 0.0 <= band_weight <= 1.0:
        raise ValueError(f"band_weight must be in [0, 1], got {band_weight}")
    pick = torch.rand(batch, generator=generator, device=device) < band_weight
    in_band = sample_sigmas_log_uniform(batch, lo, hi, generator=generator, device=device)
    log_normal = sample_sigmas_log_normal(
        batch, log_mean, log_std, sigma_min, sigma_max, generator=generator, device=device
    )
    return torch.where(pick, in_band.clamp(sigma_min, sigma_max), log_normal).to(dtype)


def sample_sigmas_conditional(
    batch: int,
    predictive_share: float,
    band: tuple[float, float],
    sigma_min: float,
    sigma_max: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Sigmas (B,) for a conditional denoiser D(x, sigma, y): the levels its inference uses, only.

    With probability ``predictive_share`` a draw is ``sigma_max``: there x carries nothing about
    the clean signal (c_skip ~ 0), so D(sigma_max z, sigma_max, y) is trained as a regression
    E[x | y], the one-call predictive estimate. The rest are log-uniform over ``band`` (clamped to
    [sigma_min, sigma_max]): the levels a refinement from the predictive estimate walks through
    (StoRM, Lemercier et al. 2023). Levels between the band and sigma_max are never used at
    inference, so none are drawn there. Two draws per example whatever it picks.
    """
    if not 0.0 <= predictive_share <= 1.0:
        raise ValueError(f"predictive_share must be in [0, 1], got {predictive_share}")
    lo, hi = max(float(band[0]), sigma_min), min(float(band[1]), sigma_max)
    if not lo < hi:
        raise ValueError(
            f"the refinement band {band} has nothing inside [sigma_min, sigma_max] = "
            f"[{sigma_min}, {sigma_max}]"
        )
    pick = torch.rand(batch, generator=generator, device=device) < predictive_share
    in_band = sample_sigmas_log_uniform(batch, lo, hi, generator=generator, device=device)
    return torch.where(pick, torch.full_like(in_band, float(sigma_max)), in_band).to(dtype)


#: noise.train_distribution -> what it is for (the choices the config accepts).
TRAIN_DISTRIBUTIONS = {
    "log_normal": "EDM's log-normal around sigma_data: generation priors (the default)",
    "mixture": "half log-normal, half log-uniform over the denoising band: priors meant to denoise",
    "conditional": "sigma_max (the one-call predictive estimate) or log-uniform over the refinement band: "
    "conditional denoisers",
    "log_uniform": "log-uniform over [sigma_min, sigma_max] (the continuous NCSN / VE-SDE choice)",
    "discrete": "uniform over the NCSN ladder's levels",
    "ouve": "SGMSE+'s mean-reverting diffusion: sigma_eff(t), t ~ U[t_eps, 1] (scoreaudio/ouve.py); "
    "conditional denoisers sampled with method 'ouve'",
}


def sample_training_sigmas(
    distribution: str,
    batch: int,
    *,
    sigma_min: float,
    sigma_max: float,
    sigma_data: float,
    log_normal_mean: float = -0.5,
    log_normal_std: float = 1.2,
    band: tuple[float, float] = (0.02, 2.0),
    band_weight: float = 0.5,
    predictive_share: float = 0.5,
    ladder: torch.Tensor | None = None,
    ouve=None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The training-time sigmas (B,) of one micro-batch, for every ``noise.train_distribution``.

    ``log_normal_mean`` is the mean of ``ln(sigma / sigma_data)`` and ``band`` is in units of
    ``sigma_data``, so one setting serves representations of any scale (EDM's P_mean = -1.2 at
    sigma_data = 0.5 is -0.51 here). ``ladder`` (L,) is needed for ``"discrete"`` only.
    ``predictive_share`` is the share of ``"conditional"`` draws at exactly ``sigma_max``;
    ``ouve`` (a :class:`scoreaudio.ouve.OUVE`) is needed for ``"ouve"`` only.
    """
    log_mean = log_normal_mean + math.log(sigma_data)
    if distribution == "conditional":
        return sample_sigmas_conditional(
            batch,
            predictive_share,
            (band[0] * sigma_data, band[1] * sigma_data),
            sigma_min,
            sigma_max,
            generator=generator,
            device=device,
        )
    if distribution == "log_normal":
        return sample_sigmas_log_normal(
            batch, log_mean, log_normal_std, sigma_min, sigma_max, generator=generator, device=device
        )
    if distribution == "mixture":
        lo, hi = band
        return sample_sigmas_mixture(
            batch,
            log_mean,
            log_normal_std,
            (lo * sigma_data, hi * sigma_data),
            band_weight,
            sigma_min,
            sigma_max,
            generator=generator,
            device=device,
        )
    if distribution == "log_uniform":
        return sample_sigmas_log_uniform(batch, sigma_min, sigma_max, generator=generator, device=device)
    if distribution == "ouve":
        from .ouve import sample_sigmas_ouve

        if ouve is None:
            raise ValueError("train_distribution 'ouve' needs the OUVE constants")
        return sample_sigmas_ouve(batch, ouve, generator=generator, device=device)
    if distribution == "discrete":
        if ladder is None:
            raise ValueError("train_distribution 'discrete' needs the ladder")
        return sample_sigmas_discrete(batch, ladder, generator=generator, device=device)
    raise ValueError(f"unknown train_distribution {distribution!r}; valid: {', '.join(TRAIN_DISTRIBUTIONS)}")


# --------------------------------------------------------------------------------------------
# NCSNv2 rules (Song & Ermon 2020, "Improved Techniques for Training SBGMs")
# --------------------------------------------------------------------------------------------
def sigma_max_from_data(x: torch.Tensor, *, chunk: int = 1024) -> float:
    """NCSNv2 Technique 1: ``sigma_max`` = the largest pairwise Euclidean distance in the data.

    Song & Ermon (2020), Technique 1: "Choose sigma_1 to be as large as the maximum Euclidean distance
    between all pairs of training data points." ``x`` is a sample of training examples of shape
    (N, ...), N >= 2, each flattened to a vector. Exact O(N^2 D) computation in float64, done in
    blocks of ``chunk`` rows so memory stays O(chunk * N); pass a random subset for big corpora
    (the max over a subset is a lower bound of the max over all data).
    """
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"need at least 2 examples of shape (N, ...), got {tuple(x.shape)}")
    flat = x.detach().reshape(x.shape[0], -1).to(torch.float64)
    best = 0.0
    for start in range(0, flat.shape[0], chunk):
        block = flat[start : start + chunk]
        # only pairs (i, j) with j >= i are needed, but the simple full block is fast enough
        d = torch.cdist(block, flat[start:], compute_mode="donot_use_mm_for_euclid_dist")
        best = max(best, float(d.max()))
    return best


def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _overlap(gamma: float, dim: int) -> float:
    """NCSNv2 Technique 2 criterion: Phi(sqrt(2D)(g-1) + 3g) - Phi(sqrt(2D)(g-1) - 3g)."""
    a = math.sqrt(2.0 * dim) * (gamma - 1.0)
    return _phi(a + 3.0 * gamma) - _phi(a - 3.0 * gamma)


def gamma_from_dim(dim: int, *, target: float = 0.5) -> float:
    """NCSNv2 Technique 2: the geometric ratio ``gamma = sigma_{i-1}/sigma_i`` for data of dimension D.

    Song & Ermon (2020), Technique 2: choose gamma such that
    ``Phi(sqrt(2D)(gamma - 1) + 3 gamma) - Phi(sqrt(2D)(gamma - 1) - 3 gamma) ~= 0.5``,
    i.e. a sample's norm at level i-1 still falls, with probability 0.5, inside the high-density
    shell (+-3 std) of level i, so consecutive Gaussians overlap enough for Langevin to hand over.
    Solved here to ~1e-12 by bracketing (doubling gamma - 1) and bisection; the smallest root is taken.

    The criterion starts at Phi(3) - Phi(-3) = 0.9973 for gamma = 1 and only falls to 0.5 when
    sqrt(2D) > 3; for D <= 4 no gamma satisfies it and a ValueError is raised.
    For CIFAR-10 (D = 3072) this gives gamma ~= 1.0401.
    """
    dim = check_int("dim", dim)
    if not 0.0 < target < _overlap(1.0, dim):
        raise ValueError(f"target must be in (0, {_overlap(1.0, dim):.4f}), got {target}")
    if math.sqrt(2.0 * dim) <= 3.0:
        raise ValueError(
            f"the NCSNv2 gamma rule has no solution for D={dim}: the overlap never falls to {target} "
            "when sqrt(2D) <= 3 (D <= 4); choose the number of levels by hand"
        )
    lo, step = 1.0, 1e-4
    hi = lo + step
    while _overlap(hi, dim) > target:  # expand the bracket: [lo, hi] with f(lo) > target >= f(hi)
        lo, step = hi, step * 2.0
        hi = lo + step
        if step > 1e12:  # pragma: no cover - unreachable for sqrt(2D) > 3
            raise ValueError(f"no gamma found for D={dim}")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _overlap(mid, dim) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


def num_levels_from_dim(dim: int, sigma_min: float, sigma_max: float, *, target: float = 0.5) -> int:
    """NCSNv2 Technique 2: number of geometric levels L from the data dimension D.

    With gamma = :func:`gamma_from_dim` (D), the ladder from sigma_max to sigma_min needs
    ``L = ceil(log(sigma_max / sigma_min) / log(gamma)) + 1`` levels so that the ratio of
    consecutive levels is at most gamma. L grows like sqrt(D) log(sigma_max/sigma_min).
    Note: for CIFAR-10 (D = 3072, sigma 50 -> 0.01) this gives L = 220; the NCSNv2 config uses 232
    (a slightly finer ladder than the rule asks for).
    """
    _check_range(2, sigma_min, sigma_max)
    gamma = gamma_from_dim(dim, target=target)
    return math.ceil(math.log(sigma_max / sigma_min) / math.log(gamma) - 1e-9) + 1


def langevin_variance_ratio(eps: float, n_steps_each: int, gamma: float, sigma_min: float) -> float:
    """``s_T^2 / sigma_i^2`` after one level of annealed Langevin, NCSN step convention (see :func:`langevin_eps`).

    ``u = eps / sigma_L^2``, ``r = 1 - u/2``, ``v = u / (1 - r^2)``:
    ratio = ``r^(2T) (gamma^2 - v) + v``.
    """
    u = eps / sigma_min**2
    r = 1.0 - 0.5 * u
    v = u / (1.0 - r * r)
    return r ** (2 * n_steps_each) * (gamma**2 - v) + v


def langevin_eps(n_steps_each: int, gamma: float, sigma_min: float) -> float:
    """NCSNv2 Technique 4: the annealed-Langevin step size eps for T steps per level.

    Song & Ermon (2020), Technique 4: pick T as large as the budget allows, then choose eps that
    makes the variance ratio of their Proposition 3 as close to 1 as possible. Returned in
    **this package's convention** (NCSN 2019, Alg. 1, used by
    :func:`scoreaudio.sampling.annealed_langevin`):

        alpha_i = eps * sigma_i^2 / sigma_L^2,    x <- x + (alpha_i / 2) s(x, sigma_i) + sqrt(alpha_i) z.

    NCSNv2 (and the NCSN/NCSNv2 code, ``step_lr``) write the same update as
    ``x <- x + alpha' s + sqrt(2 alpha') z`` with ``alpha' = eps' sigma_i^2 / sigma_L^2``, so
    **eps (here) = 2 * eps' (NCSNv2 paper / code)**. Example: CIFAR-10 (T = 5, L = 232, sigma
    50 -> 0.01) gives eps = 1.24e-5 here, i.e. eps' = 6.2e-6 as in the NCSNv2 config.

    Derivation (Proposition 3 of NCSNv2, redone in our convention). Take one training point at 0,
    so ``p_{sigma_i} = N(0, sigma_i^2 I)`` and ``s(x, sigma_i) = -x / sigma_i^2``. One Langevin step
    at level i is the linear recursion

        x_t = (1 - alpha_i / (2 sigma_i^2)) x_{t-1} + sqrt(alpha_i) z_t = r x_{t-1} + sqrt(alpha_i) z_t,

    with ``r = 1 - u/2`` and ``u = alpha_i / sigma_i^2 = eps / sigma_L^2`` (the same for every i).
    Per coordinate the variance obeys ``v_t = r^2 v_{t-1} + alpha_i``; its fixed point is
    ``v* = alpha_i / (1 - r^2)``, and ``v_T = r^(2T) (v_0 - v*) + v*``. Starting from the previous
    level's distribution, ``v_0 = sigma_{i-1}^2 = gamma^2 sigma_i^2``; dividing by sigma_i^2,

        s_T^2 / sigma_i^2 = r^(2T) (gamma^2 - u/(1 - r^2)) + u/(1 - r^2).

    Substituting ``u = 2 eps'/sigma_L^2`` gives exactly the ratio of NCSNv2 Proposition 3:
    ``(1 - eps'/sigma_L^2)^(2T) (gamma^2 - 2 eps'/(sigma_L^2 - sigma_L^2 (1 - eps'/sigma_L^2)^2))
    + 2 eps'/(sigma_L^2 - sigma_L^2 (1 - eps'/sigma_L^2)^2)``.
    Both parts of the mixture exceed 1 (gamma > 1, and ``u/(1-r^2) = 1/(1 - u/4) > 1``), so the
    ratio can only approach 1 from above: we minimise it over ``u in (0, 2)`` (0 < r < 1) by a
    log-spaced grid search refined by golden-section search, and return ``eps = u * sigma_L^2``.
    """
    n_steps_each = check_int("n_steps_each", n_steps_each)
    if not gamma > 1.0:
        raise ValueError(f"gamma = sigma_(i-1)/sigma_i must be > 1, got {gamma}")
    if not sigma_min > 0.0:
        raise ValueError(f"sigma_min must be positive, got {sigma_min}")

    def ratio_u(u: float) -> float:
        return langevin_variance_ratio(u * sigma_min**2, n_steps_each, gamma, sigma_min)

    u_best = _minimise_log(ratio_u, 1e-10, 2.0)
    return u_best * sigma_min**2


def _minimise_log(f: Callable[[float], float], lo: float, hi: float, n_grid: int = 2001) -> float:
    """Minimise a unimodal-ish f on [lo, hi]: log-spaced grid, then golden section on log u."""
    la, lb = math.log(lo), math.log(hi)
    grid = [la + (lb - la) * k / (n_grid - 1) for k in range(n_grid)]
    vals = [f(math.exp(g)) for g in grid]
    k = min(range(n_grid), key=vals.__getitem__)
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, n_grid - 1)]
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - inv_phi * (b - a), a + inv_phi * (b - a)
    fc, fd = f(math.exp(c)), f(math.exp(d))
    for _ in range(100):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - inv_phi * (b - a)
            fc = f(math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + inv_phi * (b - a)
            fd = f(math.exp(d))
        if b - a < 1e-12:
            break
    return math.exp(0.5 * (a + b))
