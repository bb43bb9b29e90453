"""Speech quality metrics.

Own implementations: :func:`si_sdr` and :func:`log_spectral_distance` (torch, batched).
From the ``eval`` extra (``pip install 'scoreaudio[eval]'``), imported lazily: :func:`pesq_wb`
(``pesq``, ITU-T P.862.2 wide-band), :func:`estoi` (``pystoi``, extended STOI) and :func:`dnsmos`
(``speechmos``' bundled ONNX models, run with ``onnxruntime``; no download).

The package metrics work on one mono signal (1-D ndarray or tensor) and resample it to 16 kHz
with soxr (HQ) when given at another rate (:data:`EVAL_RATE`, :data:`RESAMPLER`). An input they
cannot score (silent, too short) gives NaN and a :class:`MetricWarning` that says why, never an
exception; a missing package is a :class:`MetricUnavailable` error naming the extra.
"""

from __future__ import annotations

import math
import warnings
from typing import Dict, Optional

import numpy as np
import torch

from .errors import ScoreAudioError
from .utils.silence import SILENT_METRIC_PEAK

#: PESQ wide-band, ESTOI and DNSMOS are computed at this rate.
EVAL_RATE = 16000
#: How signals at other rates are brought to EVAL_RATE (recorded by `scoreaudio evaluate`).
RESAMPLER = "soxr HQ"
EXTRA_HINT = "pip install 'scoreaudio[eval]'"


class MetricUnavailable(ScoreAudioError, ImportError):
    """A metric's package is not installed."""


class MetricWarning(UserWarning):
    """A metric could not score an input and returned NaN (the message says why)."""


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019), per signal.

    Both inputs (..., T); the reference is made zero-mean, the estimate is projected onto it:
    s = <x, r> r / ||r||^2, e = x - s, SI-SDR = 10 log10(||s||^2 / ||e||^2). Returns shape (...).

    A silent estimate (all zero, or constant: nothing left after removing the mean) scores -inf:
    it holds none of the reference, and the 0 dB the formula's eps would give ranks a broken,
    silent output above every estimate worse than 0 dB.
    """
    if estimate.shape != reference.shape:
        raise ValueError(
            f"shape mismatch: estimate {tuple(estimate.shape)} vs reference {tuple(reference.shape)}"
        )
    x = estimate.double() - estimate.double().mean(dim=-1, keepdim=True)
    r = reference.double() - reference.double().mean(dim=-1, keepdim=True)
    scale = (x * r).sum(-1, keepdim=True) / (r.square().sum(-1, keepdim=True) + eps)
    s = scale * r
    e = x - s
    out = 10 * torch.log10((s.square().sum(-1) + eps) / (e.square().sum(-1) + eps))
    # silent: the centred energy is zero up to rounding of the mean (relative to the raw energy)
    silent = x.square().sum(-1) <= 1e-20 * estimate.double().square().sum(-1)
    return out.masked_fill(silent, -math.inf).to(estimate.dtype)


def log_spectral_distance(
    estimate,
    reference,
    sample_rate: int,
    *,
    frame_seconds: float = 0.032,
    hop_seconds: float = 0.008,
    eps: float = 1e-10,
) -> torch.Tensor:
    """Log-spectral distance in dB, per signal (0 for identical signals; lower is better).

    With power spectra ``P(t, f) = |STFT(x)(t, f)|^2`` (Hann window of ``frame_seconds``, hop
    ``hop_seconds``, rounded to samples; n_fft = the window length; ``center=True``, zero padding)
    and ``L(t, f) = 10 log10(P(t, f) + eps)``::

        LSD = mean_t sqrt( mean_f ( L_ref(t, f) - L_est(t, f) )^2 )

    (the frame-wise RMS of the log-power difference, averaged over frames; e.g. Gray & Markel
    1976; the form used in bandwidth-extension papers). ``eps`` floors silent bins (-100 dB).

    Args:
        estimate, reference: (..., T) tensors or ndarrays of the same shape.

    Returns:
        (...) float64 tensor.
    """
    est = torch.as_tensor(estimate).double()
    ref = torch.as_tensor(reference).double()
    if est.shape != ref.shape:
        raise ValueError(f"shape mismatch: estimate {tuple(est.shape)} vs reference {tuple(ref.shape)}")
    n = max(4, int(round(frame_seconds * sample_rate)))
    hop = max(1, int(round(hop_seconds * sample_rate)))
    lead, T = est.shape[:-1], est.shape[-1]
    window = torch.hann_window(n, periodic=True, dtype=torch.float64, device=est.device)

    def logpow(x: torch.Tensor) -> torch.Tensor:
        X = torch.stft(
            x.reshape(-1, T),
            n,
            hop_length=hop,
            win_length=n,
            window=window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # (N, F, frames)
        return 10.0 * torch.log10(X.abs().square() + eps)

    d = logpow(ref) - logpow(est)
    lsd = d.square().mean(dim=1).sqrt().mean(dim=-1)  # mean over f, sqrt, mean over frames
    return lsd.reshape(lead)


# --------------------------------------------------------------------------------------------
# Metrics from other packages (the `eval` extra)
# --------------------------------------------------------------------------------------------
def _require(module: str, metric: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MetricUnavailable(f"{metric} needs the '{module}' package: {EXTRA_HINT}") from None


def _mono16k(x, sample_rate: int) -> np.ndarray:
    """1-D float64 ndarray at EVAL_RATE."""
    from .audio.io import resample

    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        if x.ndim != 2 or min(x.shape) != 1:
            raise ValueError(f"metrics take one mono signal (T,), got shape {x.shape}; downmix first")
        x = x.reshape(-1)
    if int(sample_rate) != EVAL_RATE:
        x = resample(x, int(sample_rate), EVAL_RATE)
    return x


def _nan(metric: str, reason: str) -> float:
    warnings.warn(f"{metric}: {reason}; reported as NaN", MetricWarning, stacklevel=3)
    return float("nan")


def _pair(metric: str, estimate, reference, sample_rate: int):
    est, ref = _mono16k(estimate, sample_rate), _mono16k(reference, sample_rate)
    n = min(len(est), len(ref))
    est, ref = est[:n], ref[:n]
    reason = None
    if not (np.isfinite(est).all() and np.isfinite(ref).all()):
        reason = "non-finite samples"
    elif n == 0 or np.max(np.abs(ref)) < SILENT_METRIC_PEAK:
        reason = "silent reference"
    elif np.max(np.abs(est)) < SILENT_METRIC_PEAK:
        reason = "silent estimate"
    return est, ref, reason


def pesq_wb(estimate, reference, sample_rate: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2, MOS-LQO, about 1.04 to 4.64) of a mono estimate vs its reference.

    Both are resampled to 16 kHz (soxr HQ) and cropped to the shorter. NaN with a warning for
    silent or non-finite input, or when the ``pesq`` library finds no utterance or a buffer
    shorter than 1/4 s.
    """
    lib = _require("pesq", "PESQ")
    est, ref, reason = _pair("pesq", estimate, reference, sample_rate)
    if reason:
        return _nan("pesq", reason)
    try:
        with np.errstate(all="ignore"):
            return float(lib.pesq(EVAL_RATE, ref, est, "wb"))
    except lib.PesqError as e:
        msg = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        return _nan("pesq", msg.lower())


def estoi(estimate, reference, sample_rate: int) -> float:
    """Extended STOI (Jensen & Taal 2016; ``pystoi``, ``extended=True``), about 0 to 1.

    Resampled to 16 kHz first (pystoi then works at 10 kHz). NaN with a warning for silent or
    non-finite input, or too little speech (pystoi's "not enough STFT frames").
    """
    lib = _require("pystoi", "ESTOI")
    est, ref, reason = _pair("estoi", estimate, reference, sample_rate)
    if reason:
        return _nan("estoi", reason)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(lib.stoi(ref, est, EVAL_RATE, extended=True))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return _nan("estoi", "too little speech (fewer than 30 non-silent frames)")
    return value


def dnsmos(wav, sample_rate: int, *, personalized: bool = False) -> Dict[str, float]:
    """DNSMOS P.835 (Reddy et al. 2022): ``{"ovrl", "sig", "bak", "p808"}`` MOS of one signal.

    No reference needed. Uses the ONNX models bundled in ``speechmos`` (run by ``onnxruntime``,
    offline). The signal is resampled to 16 kHz and clipped to [-1, 1]; signals shorter than the
    models' 9.01 s input are repeated by speechmos. NaN values with a warning for a silent input.
    """
    _require("onnxruntime", "DNSMOS")
    lib = _require("speechmos.dnsmos", "DNSMOS")
    x = _mono16k(wav, sample_rate)
    keys = ("ovrl", "sig", "bak", "p808")
    if x.size == 0 or not np.isfinite(x).all() or np.max(np.abs(x)) < SILENT_METRIC_PEAK:
        _nan("dnsmos", "silent or non-finite input")
        return {k: float("nan") for k in keys}
    x = np.clip(x, -1.0, 1.0).astype(np.float32)
    with np.errstate(all="ignore"):
        r = lib.run(x, EVAL_RATE, model_type="dnsmos_personalized" if personalized else "dnsmos")
    return {k: float(r[f"{k}_mos"]) for k in keys}


def metric_versions() -> Dict[str, Optional[str]]:
    """Installed versions of the packages behind the metrics (None when missing)."""
    import importlib.metadata as md

    out: Dict[str, Optional[str]] = {}
    for name in ("scoreaudio", "pesq", "pystoi", "speechmos", "onnxruntime", "soxr", "numpy", "torch"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def mean_ci95(values) -> Dict[str, float]:
    """Mean and t-based 95% interval of the finite values: mean +- t_{0.975, n-1} sd / sqrt(n).

    Returns ``{"n", "n_nan", "n_inf", "mean", "ci_low", "ci_high"}``: ``n`` finite values were
    averaged; ``n_nan`` (not scorable) and ``n_inf`` (e.g. the -inf SI-SDR of a silent estimate)
    count what was left out, so a summary can say so instead of looking better than the files
    (NaN where undefined: n = 0, or n = 1 for the interval).
    """
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    counts = {"n_nan": int(np.isnan(v).sum()), "n_inf": int(np.isinf(v).sum())}
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return {"n": 0, **counts, "mean": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    mean = float(v.mean())
    if n == 1:
        return {"n": 1, **counts, "mean": mean, "ci_low": math.nan, "ci_high": math.nan}
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1)) * float(v.std(ddof=1)) / math.sqrt(n)
    return {"n": n, **counts, "mean": mean, "ci_low": mean - half, "ci_high": mean + half}
