"""The score model: a backbone F inside a preconditioning wrapper.

``ScoreModel(backbone)(x, sigma, cond=None)`` returns s(x, sigma) ~ grad_x log p_sigma(x) for x of
shape (B, C, *S) and sigma of shape (B,). The backbone is any module ``F(x_in, c_noise)`` mapping
(B, C_in, *S) and (B,) to (B, C, *S); it never sees sigma itself, only c_noise = log(sigma) / 4.

Parameterisations (``parameterisation=``):

``"edm"`` (Karras et al. 2022, Table 1, "Ours"), with sigma_data the data std in model space::

    c_skip = sd^2 / (sigma^2 + sd^2)      c_out = sigma * sd / sqrt(sigma^2 + sd^2)
    c_in   = 1 / sqrt(sigma^2 + sd^2)     c_noise = log(sigma) / 4
    D(x)   = c_skip * x + c_out * F(c_in * x, c_noise)          # the denoiser
    score  = (D(x) - x) / sigma^2
           = c_out / sigma^2 * F - x / (sigma^2 + sd^2)         # computed this way: no D - x cancellation

``"ncsnv2"`` (Song & Ermon 2020, technique 3: s(x, sigma) = s(x) / sigma)::

    score = F(x, c_noise) / sigma                                # x enters unscaled, as in NCSNv2

``"score"``: the backbone is itself a score model ``backbone(x, sigma, cond) -> score`` (the toy MLP,
which divides by sigma itself); the wrapper only adds ``denoise`` and ``sigma_data``.

Conditioning: ``cond`` (B, cond_channels, *S), e.g. the noisy input's representation for
conditional denoising, is concatenated to the network input on the channel axis. It is passed
**unscaled** in both parameterisations: unlike x it carries no diffusion noise, so its scale does
not grow with sigma and it is already of the data's order.

``cond_skip=True`` (EDM, cond in x's space: the noisy observation y of the clean signal) adds y to
the skip path: ``D = c_skip x + (1 - c_skip) y + c_out F``. Both x = x0 + sigma z and y are noisy
versions of x0; the skip blends them by the diffusion's own weights, so F = 0 is already "return
the state" at small sigma and "return the noisy input" at sigma_max, and F only has to learn the
correction (the noise to remove). Without it, a network on a compressed spectrogram has to learn
even the identity (undoing its own compression) before it can denoise. Then
``score = (D - x) / sigma^2 = c_out / sigma^2 F + (y - x) / (sigma^2 + sd^2)``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from ..utils.tensor import append_dims, as_sigma_batch

PARAMETERISATIONS = ("edm", "ncsnv2", "score")


def noise_conditioning(sigma: torch.Tensor) -> torch.Tensor:
    """c_noise = log(sigma) / 4 (EDM Table 1): what the backbone sees of sigma (B,) -> (B,), in every
    parameterisation that has a backbone F."""
    return sigma.log() / 4


class EDMCoefficients(NamedTuple):
    """EDM's preconditioning at one batch of noise levels; c_skip, c_out, c_in and ``total`` have shape
    (B, 1, ..., 1) (broadcast to x), c_noise (B,)."""

    c_skip: torch.Tensor
    c_out: torch.Tensor
    c_in: torch.Tensor
    c_noise: torch.Tensor
    total: torch.Tensor  # sigma^2 + sd^2, the variance of the noisy data (the score's denominator)


def edm_coefficients(sigma: torch.Tensor, sigma_data: torch.Tensor, ndim: int) -> EDMCoefficients:
    """Karras et al. 2022, Table 1 ("Ours"), for sigma (B,) and sigma_data (0-d, model space), the
    coefficients shaped for an x of rank ``ndim``:

        c_skip = sd^2 / (sigma^2 + sd^2)      c_out   = sigma * sd / sqrt(sigma^2 + sd^2)
        c_in   = 1 / sqrt(sigma^2 + sd^2)     c_noise = log(sigma) / 4
    """
    sd2 = sigma_data**2
    s = append_dims(sigma, ndim)  # (B, 1, ..., 1)
    total = s**2 + sd2
    c_in = total.rsqrt()
    c_skip = sd2 / total
    c_out = s * sd2.sqrt() * c_in  # sigma * sd / sqrt(total), through the c_in already computed
    return EDMCoefficients(c_skip, c_out, c_in, noise_conditioning(sigma), total)


class ScoreModel(nn.Module):
    """s(x, sigma) ~ grad_x log p_sigma(x); x: (B, C, *S), sigma: (B,).

    Args:
        backbone: ``F(x_in, c_noise) -> (B, C, *S)`` (``"score"``: ``backbone(x, sigma, cond)``).
        parameterisation: ``"edm"``, ``"ncsnv2"`` or ``"score"`` (see the module docstring).
        sigma_data: the data std in model space (EDM). Stored as a buffer, so it is saved in the
            state_dict; set a measured value with ``model.sigma_data.fill_(value)``.
        cond_channels: channels of ``cond``; 0 means the model takes no conditioning.
        cond_skip: add the conditioning (the noisy input, in x's space) to EDM's skip path (module
            docstring); needs ``cond_channels`` equal to x's channels.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        parameterisation: str = "edm",
        sigma_data: float = 0.5,
        cond_channels: int = 0,
        cond_skip: bool = False,
    ):
        super().__init__()
        if cond_skip and parameterisation != "edm":
            raise ValueError("cond_skip needs the edm parameterisation (it extends its skip path)")
        if parameterisation not in PARAMETERISATIONS:
            raise ValueError(
                f"unknown parameterisation '{parameterisation}'; valid: {', '.join(PARAMETERISATIONS)}"
            )
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be positive, got {sigma_data}")
        self.backbone = backbone
        self.parameterisation = parameterisation
        self.cond_channels = int(cond_channels)
        self.cond_skip = bool(cond_skip)
        self.register_buffer("sigma_data", torch.tensor(float(sigma_data)))

    @property
    def receptive_field(self):
        """The backbone's receptive field: samples (waveform) or (freq bins, frames) (spectrogram);
        None for backbones without one (the toy MLP)."""
        return getattr(self.backbone, "receptive_field", None)

    def extra_repr(self) -> str:
        return f"parameterisation={self.parameterisation!r}, cond_channels={self.cond_channels}"

    # ----------------------------------------------------------------------------------------
    def _inputs(self, x: torch.Tensor, sigma, cond: Optional[torch.Tensor]):
        """Check shapes; return sigma as (B,) in x's dtype."""
        sigma = as_sigma_batch(sigma, x.shape[0], device=x.device, dtype=x.dtype)
        if self.cond_channels and cond is None:
            raise ValueError(f"this model is conditional: pass cond with {self.cond_channels} channels")
        if self.cond_skip and cond is not None and cond.shape[1] != x.shape[1]:
            raise ValueError(
                f"cond_skip needs cond in x's space ({x.shape[1]} channels), got {cond.shape[1]}"
            )
        if cond is not None:
            if not self.cond_channels:
                raise ValueError("this model is unconditional (cond_channels=0) but cond was given")
            expected = (x.shape[0], self.cond_channels, *x.shape[2:])
            if tuple(cond.shape) != expected:
                raise ValueError(f"cond must have shape {expected}, got {tuple(cond.shape)}")
        return sigma

    def _backbone(self, x_in: torch.Tensor, c_noise: torch.Tensor, cond: Optional[torch.Tensor]):
        """F(x_in, c_noise), with ``cond`` appended to x_in's channels."""
        if cond is not None:
            x_in = torch.cat([x_in, cond.to(x_in.dtype)], dim=1)  # (B, C + C_cond, *S)
        return self.backbone(x_in, c_noise)

    def _edm(self, x: torch.Tensor, sigma: torch.Tensor, cond: Optional[torch.Tensor]):
        """(F output (B, C, *S), the EDM coefficients for sigma)."""
        k = edm_coefficients(sigma, self.sigma_data.to(x.dtype), x.ndim)
        return self._backbone(k.c_in * x, k.c_noise, cond), k

    # ----------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, sigma, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The score: x (B, C, *S), sigma (B,) (or a float), cond (B, C_cond, *S) -> (B, C, *S)."""
        sigma = self._inputs(x, sigma, cond)
        if self.parameterisation == "edm":
            f, k = self._edm(x, sigma, cond)
            if self.cond_skip:
                return k.c_out / append_dims(sigma, x.ndim) ** 2 * f + (cond.to(x.dtype) - x) / k.total
            return k.c_out / append_dims(sigma, x.ndim) ** 2 * f - x / k.total
        if self.parameterisation == "ncsnv2":
            return self._backbone(x, noise_conditioning(sigma), cond) / append_dims(sigma, x.ndim)
        return self.backbone(x, sigma, cond)

    def denoise(self, x: torch.Tensor, sigma, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Tweedie's estimate E[x0 | x] = x + sigma^2 * score; EDM computes D(x) directly."""
        sigma = self._inputs(x, sigma, cond)
        if self.parameterisation == "edm":
            f, k = self._edm(x, sigma, cond)
            if self.cond_skip:
                return k.c_skip * x + (1.0 - k.c_skip) * cond.to(x.dtype) + k.c_out * f
            return k.c_skip * x + k.c_out * f
        s = append_dims(sigma, x.ndim)
        if self.parameterisation == "ncsnv2":
            return x + s * self._backbone(x, noise_conditioning(sigma), cond)  # sigma^2 * F / sigma
        return x + s**2 * self.backbone(x, sigma, cond)
