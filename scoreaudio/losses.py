"""Score-matching objectives: per-example losses of shape (B,) for data of shape (B, C, *S).

All three objectives estimate the same quantity for the noise-perturbed density
``p_sigma = p_data * N(0, sigma^2 I)`` and share one normalisation, so their values can be compared
directly and across signal lengths:

* weight ``lambda(sigma) = sigma^2`` (NCSN, Song & Ermon 2019, Sec. 4.2), which makes the loss
  O(1) at every noise level, and
* a **mean** over the D = C * prod(S) non-batch entries instead of a sum, so a 1 s and a 4 s clip
  give losses of the same size.

With this normalisation, for any model ``s`` (Vincent 2011; Stein's lemma):

    E[dsm_loss] = E[exact_sm_loss] + 1/2 = E[ssm_loss] + 1/2,

i.e. DSM is implicit score matching plus the constant ``E||z||^2 / (2D) = 1/2``.

``model`` is any callable ``model(x, sigma)`` or ``model(x, sigma, cond)`` returning a tensor of the
shape of ``x``; it is called with ``cond`` only when ``cond`` is not None. ``sigma`` is a (B,)
tensor (a Python float is broadcast), and must be positive. The model must treat examples
independently (no batch statistics in train mode) for SSM / exact SM, whose Jacobian terms are
computed with one backward pass over the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from scoreaudio.utils.checks import check_int
from scoreaudio.utils.tensor import append_dims, as_sigma_batch

__all__ = ["compressed_spectral_loss", "dsm_loss", "exact_sm_loss", "ssm_loss"]

ScoreModel = Callable[..., torch.Tensor]
_TARGETS = ("score", "noise", "x0")
_PROJECTIONS = ("rademacher", "gaussian")


def _call(model: ScoreModel, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    out = model(x, sigma) if cond is None else model(x, sigma, cond)
    if out.shape != x.shape:
        raise ValueError(
            f"model returned shape {tuple(out.shape)}, expected the input shape {tuple(x.shape)}"
        )
    return out


def _per_example_mean(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).mean(dim=1)  # (B, C, *S) -> (B,)


def _noise(x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)


def dsm_loss(
    model: ScoreModel,
    x0: torch.Tensor,
    sigma: torch.Tensor | float,
    cond: torch.Tensor | None = None,
    *,
    noise: torch.Tensor | None = None,
    target: Literal["score", "noise", "x0"] = "score",
    generator: torch.Generator | None = None,
    return_output: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Denoising score matching with weight sigma^2 (NCSN), per example: shape (B,).

    Vincent (2011); NCSN (Song & Ermon 2019) Eq. (5)-(6) with ``lambda(sigma) = sigma^2``:
    with ``x = x0 + sigma z``, ``z ~ N(0, I)``, the target score is ``-z / sigma`` and

        loss = 1/2 * mean_D (sigma * s(x, sigma) + z)^2          # target="score"

    where ``mean_D`` averages over the D non-batch entries of ``(B, C, *S)`` (not a sum: see the
    module docstring). Three parameterisations of the same objective, selected by what the model
    outputs:

    * ``"score"``: ``s = model(x, sigma)``, the score; loss as above.
    * ``"noise"``: ``eps_hat = model(x, sigma)`` predicts z (DDPM's "simple" loss):
      ``1/2 mean_D (eps_hat - z)^2``. Identical to the score form with ``s = -eps_hat / sigma``
      (weight 1 relative to it).
    * ``"x0"``: ``D = model(x, sigma)`` predicts x0 (a denoiser): ``1/2 mean_D (D - x0)^2 / sigma^2``.
      Identical to the score form with ``s = (D - x) / sigma^2`` (Tweedie). Note the 1/sigma^2: the
      plain denoiser MSE ``1/2 mean_D (D - x0)^2`` equals sigma^2 times this loss.

    ``noise`` (shape of x0) fixes z; otherwise it is drawn with ``generator``. ``sigma``: (B,), > 0.
    ``return_output=True`` also returns the model's output (for further losses on the same call).
    """
    if target not in _TARGETS:
        raise ValueError(f"unknown target {target!r}; valid: {', '.join(_TARGETS)}")
    sigma = as_sigma_batch(sigma, x0.shape[0], device=x0.device, dtype=x0.dtype)
    z = _noise(x0, generator) if noise is None else noise
    if z.shape != x0.shape:
        raise ValueError(f"noise has shape {tuple(z.shape)}, expected {tuple(x0.shape)}")
    s_ = append_dims(sigma, x0.ndim)  # (B, 1, ..., 1)
    x = x0 + s_ * z
    out = _call(model, x, sigma, cond)
    if target == "score":
        err = s_ * out + z  # NCSN Eq. (5) times sigma
    elif target == "noise":
        err = out - z
    else:
        err = (out - x0) / s_
    loss = 0.5 * _per_example_mean(err.square())
    return (loss, out) if return_output else loss


def _projections(like: torch.Tensor, kind: str, generator: torch.Generator | None) -> torch.Tensor:
    v = torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    if kind == "rademacher":
        v = torch.where(v >= 0, 1.0, -1.0).to(like.dtype)  # sign of a Gaussian: +-1 with p = 1/2
    return v


def ssm_loss(
    model: ScoreModel,
    x0: torch.Tensor,
    sigma: torch.Tensor | float,
    cond: torch.Tensor | None = None,
    *,
    n_projections: int = 1,
    variance_reduction: bool = True,
    projection: Literal["rademacher", "gaussian"] = "rademacher",
    generator: torch.Generator | None = None,
    create_graph: bool = True,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sliced score matching on noise-perturbed data, weight sigma^2, per example: shape (B,).

    Song, Garg, Shi & Ermon (2019), "Sliced Score Matching" (the SSM objective and its
    variance-reduced form SSM-VR), applied as in NCSN (Song & Ermon 2019, Sec. 4.2) to
    ``x = x0 + sigma z``. With ``s = s(x, sigma)`` and random projections v over the flattened D
    non-batch entries (``E[v v^T] = I``):

        SSM:     J = 1/2 (v^T s)^2 + v^T (d/dx (v^T s))
        SSM-VR:  J = 1/2 ||s||^2   + v^T (d/dx (v^T s))        (variance_reduction=True)

    ``v^T (d/dx)(v^T s) = v^T (grad_x s) v`` is a Jacobian-vector product computed with one
    ``torch.autograd.grad`` per projection; its expectation is ``tr(grad_x s)``, so both forms are
    unbiased estimates of Hyvarinen's ``1/2 ||s||^2 + tr(grad_x s)`` (SSM-VR replaces the
    random ``E_v[(v^T s)^2]/2`` by its value ``||s||^2/2``, removing part of the variance).
    Projections are Rademacher (+-1) or Gaussian; the estimate is averaged over ``n_projections``.

    Returned: ``sigma^2 / D * J``, the same weight and per-entry normalisation as :func:`dsm_loss`
    (``E[dsm_loss] = E[ssm_loss] + 1/2``), so it is usable across noise levels.

    ``create_graph=True`` keeps the graph of the Jacobian term so the loss can be backpropagated
    (training); with False only the ``||s||^2`` / ``(v^T s)^2`` term carries gradients (evaluation).
    Gradients are enabled locally, so the loss also works under ``torch.no_grad()``.
    ``noise`` fixes z (shape of x0); otherwise z and v come from ``generator``.
    """
    if projection not in _PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}; valid: {', '.join(_PROJECTIONS)}")
    n_projections = check_int("n_projections", n_projections)
    sigma = as_sigma_batch(sigma, x0.shape[0], device=x0.device, dtype=x0.dtype)
    z = _noise(x0, generator) if noise is None else noise
    if z.shape != x0.shape:
        raise ValueError(f"noise has shape {tuple(z.shape)}, expected {tuple(x0.shape)}")
    s_ = append_dims(sigma, x0.ndim)
    # The Jacobian term is differentiated again (create_graph); the fused attention kernels have no
    # double backward on the CPU, the plain (math) one has, and gives the same values.
    with torch.enable_grad(), sdpa_kernel([SDPBackend.MATH]):
        x = (x0 + s_ * z).detach().requires_grad_(True)
        score = _call(model, x, sigma, cond)
        total = x.new_zeros(x.shape[0])
        for _ in range(n_projections):
            v = _projections(x, projection, generator)
            vs = (v * score).flatten(1).sum(dim=1)  # (B,) v^T s
            (grad_vs,) = torch.autograd.grad(vs.sum(), x, create_graph=create_graph, retain_graph=True)
            jvp = (v * grad_vs).flatten(1).sum(dim=1)  # (B,) v^T (grad_x s) v
            first = 0.5 * vs.square() if not variance_reduction else 0.0
            total = total + jvp + first
        total = total / n_projections
        if variance_reduction:
            total = total + 0.5 * score.flatten(1).square().sum(dim=1)
    d = x0[0].numel()
    return sigma.square() * total / d


def exact_sm_loss(
    model: ScoreModel,
    x: torch.Tensor,
    sigma: torch.Tensor | float,
    cond: torch.Tensor | None = None,
    *,
    create_graph: bool = True,
) -> torch.Tensor:
    """Exact (implicit) score matching at the points x, weight sigma^2, per example: shape (B,).

    Hyvarinen (2005), Theorem 1: ``J = 1/2 ||s(x)||^2 + tr(grad_x s(x))``, with the full Jacobian
    trace computed by one backward pass per data dimension (D passes: for low-dimensional data
    only). ``x`` (B, C, *S) is used as given (it is *not* perturbed here; pass ``x0 + sigma z`` to
    score-match ``p_sigma``); ``sigma`` (B,) is passed to the model and sets the weight.

    Returned: ``sigma^2 / D * J``, the normalisation of :func:`dsm_loss` and :func:`ssm_loss`.
    ``create_graph`` as in :func:`ssm_loss`.
    """
    sigma = as_sigma_batch(sigma, x.shape[0], device=x.device, dtype=x.dtype)
    d = x[0].numel()
    with torch.enable_grad(), sdpa_kernel([SDPBackend.MATH]):  # double backward: see ssm_loss
        x = x.detach().requires_grad_(True)
        score = _call(model, x, sigma, cond)
        flat = score.flatten(1)  # (B, D)
        trace = x.new_zeros(x.shape[0])
        for i in range(d):
            (g,) = torch.autograd.grad(flat[:, i].sum(), x, create_graph=create_graph, retain_graph=True)
            trace = trace + g.flatten(1)[:, i]
        total = 0.5 * flat.square().sum(dim=1) + trace
    return sigma.square() * total / d


def compressed_spectral_loss(
    estimate: torch.Tensor,
    target: torch.Tensor,
    *,
    n_ffts=(256, 512, 1024),
    compression: float = 0.3,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Multi-resolution power-law-compressed spectral distance, per example: shape (B,).

    For waveforms (B, C, T). At each STFT size N (Hann window, hop N / 4) with ``S = STFT(.)`` and
    ``c = compression``, the compressed spectrum is ``P = |S|^c e^{i angle S}``, and

        d_N = (mean |(|S_est|^c - |S_ref|^c)|^2 + mean |P_est - P_ref|^2) / (2 mean |S_ref|^{2c})

    (means over channels, bins and frames); the loss is the mean of d_N over the sizes. The
    magnitude term is what MSE on the waveform lacks: where the phase of a component is uncertain
    (consonants, high harmonics at low SNR), the waveform MMSE estimate averages it away and its
    magnitude shrinks, which ESTOI and PESQ punish; a compressed magnitude loss keeps it (the
    power-law loss of Wilson et al. 2018 and of the predictive models that StoRM builds on). The
    complex term keeps the phase, and the normalisation by the reference's compressed power makes
    the value a relative error of O(1), comparable across levels, lengths and SNRs.

    ``eps`` (in |S|^2 units) keeps the gradient of ``|S|^c`` finite at ``S = 0``.
    """
    if estimate.shape != target.shape or estimate.ndim != 3:
        raise ValueError(
            f"need two waveforms (B, C, T) of one shape, got {tuple(estimate.shape)} and "
            f"{tuple(target.shape)}"
        )
    if not 0.0 < compression <= 1.0:
        raise ValueError(f"compression must be in (0, 1], got {compression}")
    b, c, t = target.shape
    total = target.new_zeros(b)
    for n_fft in n_ffts:
        n = int(n_fft)
        if n < 4 or t <= n // 2:
            raise ValueError(
                f"spectral loss: n_fft {n} needs waveforms longer than {n // 2} samples, got {t}"
            )
        window = torch.hann_window(n, device=target.device, dtype=target.dtype)

        def compressed(x: torch.Tensor):
            spec = torch.stft(x.reshape(b * c, t), n, hop_length=n // 4, window=window, return_complex=True)
            power = spec.real.square() + spec.imag.square() + eps
            mag = power ** (compression / 2)  # |S|^c
            return mag, spec * (mag / power.sqrt())  # |S|^c e^{i angle S}

        mag_e, comp_e = compressed(estimate)
        mag_r, comp_r = compressed(target)
        per = lambda v: v.reshape(b, -1).mean(dim=1)  # noqa: E731 - (B*C, F, N) -> (B,)
        err = per((mag_e - mag_r).square()) + per((comp_e - comp_r).abs().square())
        total = total + err / (2.0 * per(mag_r.square()))
    return total / len(n_ffts)
