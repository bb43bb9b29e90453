"""Spectrogram U-Net on waveforms: the diffusion state is the waveform, the STFT is inside F.

    F(x, c_noise) = iSTFT(s * out(UNet2d(compress(STFT(x) / s), c_noise)))     x: (B, C_in, T)

with ``s = sqrt(sum(w^2))`` and ``out`` the identity (``output="linear"``) or the inverse of
``compress`` (``output="compressed"``).

With ``representation.kind=waveform`` the state is (B, 1, T) samples, so white waveform noise is
exactly the Gaussian that DSM trains on (Tweedie's formula and posterior sampling are exact for
it), while the network still works on a time-frequency picture. In EDM terms
``D(x) = c_skip x + c_out F(c_in x, c_noise)`` with F mapping waveform to waveform.

Scale (EDM wants F's input and its training target of about unit variance, in waveform units):

* **Normalised STFT.** ``X = STFT(x) / sqrt(sum(w^2))``. By Parseval the mean of ``|X|^2`` over
  frames and (two-sided) bins is then the waveform's variance: unit-variance white noise has
  ``E|X|^2 = 1`` in every bin, and so has any unit-variance signal on average. The scale is a
  property of the window alone, not of the data, so it is fixed at build time.
* **Input compression** ``z = beta |X|^alpha e^{i angle X}`` (default ``beta = 1``): unit-power
  coefficients stay unit-power in expectation for white noise (``E|z|^2 = Gamma(1 + alpha)``,
  0.89 at alpha 0.5) and less for sparse speech spectra (Jensen), so the U-Net sees O(1) inputs.
  (The spectrogram *representation*'s ``beta = 0.15`` is not comparable: it acts on the raw,
  unnormalised STFT of the audio itself, whose coefficients are ``sqrt(sum(w^2))`` = 13.8x
  larger at n_fft 510, and of a signal not scaled by c_in.)
* **Output** ``output="linear"`` (default): the U-Net emits a normalised complex spectrogram
  ``Y`` and ``F = iSTFT(sqrt(sum(w^2)) Y)``. iSTFT is a left inverse of the STFT, so the U-Net's
  target is the normalised STFT of F's unit-variance target: O(1) again. (A Y that is the STFT
  of no signal loses power: white unit-power Y comes out with variance ~hop / n_fft, 0.25 at
  510 / 128, because the iSTFT projects onto consistent spectrograms.) This map is linear, so
  F's scale follows the U-Net's output scale directly and there is no dead gradient at ``Y = 0``
  (the U-Net's last convolution is zero-initialised: F starts at 0, D at ``c_skip x``).
  ``output="compressed"`` treats ``Y`` as compressed and undoes ``beta |.|^alpha`` first; its
  gradient at ``Y = 0`` is only ``eps^((1/alpha - 1)/2)`` (1e-4 at the defaults), which Adam's
  per-parameter normalisation overcomes but plain SGD would not; it starts slower (after 40
  quickstart steps its validation DSM loss was 3-9 % above linear's at sigma <= 0.2).

Frames: ``center=True`` STFT with reflect padding, periodic Hann window, ``1 + T // hop`` frames
of ``n_fft // 2 + 1`` bins; the U-Net pads frames (and bins) to its multiple and crops back, and
``iSTFT(length=T)`` returns exactly T samples, so any T works (inputs shorter than ``n_fft / 2``
samples, too short for reflect padding, are zero-padded and the output cropped).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .unet2d import UNet2d

#: How the U-Net output becomes a spectrogram before the iSTFT.
OUTPUTS = ("linear", "compressed")


class STFTUNet(nn.Module):
    """Waveform-to-waveform F(x, c_noise) around a :class:`UNet2d` on compressed STFTs.

    Args:
        in_channels: waveform channels in (the state's plus any conditioning channels).
        out_channels: waveform channels out (the state's).
        n_fft: STFT size in samples; ``n_fft // 2 + 1`` frequency bins.
        hop_length: STFT hop in samples, at most ``n_fft // 2`` (the Hann windows must overlap for
            the iSTFT to exist everywhere).
        alpha: magnitude compression exponent, in (0, 1]; 1 = no compression.
        beta: compression scale applied to the normalised STFT (see the module docstring).
        output: ``"linear"`` or ``"compressed"``: how the U-Net output is read (module docstring).
        eps: added to ``|X|^2`` (normalised units) inside ``|X|^(alpha - 1)``, so the input
            compression has a finite gradient at ``X = 0`` (at most ``beta eps^((alpha-1)/2)``,
            100 at the defaults) as sliced score matching and guidance need; it changes
            coefficients of ``|X| >> sqrt(eps)`` (1e-4, i.e. -80 dB re unit variance) negligibly.
        **unet_kwargs: the inner :class:`UNet2d`'s settings (channels, channel_mult, ...).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        n_fft: int = 510,
        hop_length: int = 128,
        alpha: float = 0.5,
        beta: float = 1.0,
        output: str = "linear",
        eps: float = 1e-8,
        **unet_kwargs,
    ):
        super().__init__()
        if n_fft < 4 or not 1 <= hop_length <= n_fft // 2:
            raise ValueError(
                f"need n_fft >= 4 and 1 <= hop_length <= n_fft // 2, got n_fft={n_fft}, "
                f"hop_length={hop_length}"
            )
        if not (0.0 < alpha <= 1.0) or beta <= 0.0 or eps <= 0.0:
            raise ValueError(
                f"need 0 < alpha <= 1, beta > 0 and eps > 0, got alpha={alpha}, beta={beta}, eps={eps}"
            )
        if output not in OUTPUTS:
            raise ValueError(f"unknown output mapping {output!r}; valid: {', '.join(OUTPUTS)}")
        self.n_fft, self.hop_length = int(n_fft), int(hop_length)
        self.alpha, self.beta, self.eps, self.output = float(alpha), float(beta), float(eps), output
        self.out_channels = int(out_channels)
        window = torch.hann_window(self.n_fft, periodic=True)
        # Not persistent: derived from n_fft, so checkpoints hold only the U-Net's weights.
        self.register_buffer("window", window, persistent=False)
        self.stft_scale = float(window.pow(2).sum().sqrt())  # sqrt(sum w^2): raw -> normalised STFT
        self.unet = UNet2d(2 * in_channels, 2 * out_channels, **unet_kwargs)

    # ------------------------------------------------------------------------------------------
    @property
    def multiple(self) -> int:
        """T needs no padding by the caller (1): any length works; frames are padded inside."""
        return 1

    @property
    def attention(self) -> bool:
        """True when the inner U-Net has self-attention (per frame, or over all positions when
        ``norm="global"``; see :attr:`UNet2d.global_context`)."""
        return bool(self.unet.attention)

    @property
    def receptive_field(self) -> int:
        """Input samples that one output sample can depend on through the convolutions.

        An output sample lies in the ~n_fft/hop output frames whose windows cover it (n_fft / 2
        either side), each of those sees the U-Net's receptive field in frames, and every input
        frame reads n_fft samples: ``(frames - 1) * hop + 2 * n_fft``. With the U-Net's default
        per-frame normalisation and attention that is all an output sample depends on (tests/nn/test_locality.py);
        with ``norm="global"`` every sample also sees all others through GroupNorm and attention.
        """
        frames = int(self.unet.receptive_field[1])
        return (frames - 1) * self.hop_length + 2 * self.n_fft

    # ------------------------------------------------------------------------------------------
    def _compress(self, z: torch.Tensor) -> torch.Tensor:
        """(..., 2, F, N) normalised (re, im) -> ``beta |X|^alpha e^{i angle X}``, same shape.

        Written as ``beta X (|X|^2 + eps)^((alpha - 1) / 2)`` on real pairs: no ``angle`` (whose
        gradient is undefined at 0) and a bounded gradient where ``|X|`` is 0.
        """
        if self.alpha == 1.0:
            return self.beta * z
        power = z.pow(2).sum(dim=-3, keepdim=True)  # |X|^2, (..., 1, F, N)
        return z * (self.beta * (power + self.eps).pow((self.alpha - 1.0) / 2.0))

    def _decompress(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_compress` (to within ``eps``): ``|Y / beta|^(1/alpha) e^{i angle Y}``."""
        y = y / self.beta
        if self.alpha == 1.0:
            return y
        power = y.pow(2).sum(dim=-3, keepdim=True)
        return y * (power + self.eps).pow((1.0 / self.alpha - 1.0) / 2.0)

    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) waveform -> (B, 2C, F, N) compressed normalised STFT, (re, im) per channel."""
        b, c, t = x.shape
        spec = torch.stft(
            x.reshape(b * c, t),
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.n_fft,
            window=self.window.to(x.dtype),
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )  # (B C, F, N) complex
        z = torch.view_as_real(spec).permute(0, 3, 1, 2) / self.stft_scale  # (B C, 2, F, N)
        z = self._compress(z.reshape(b, c, 2, *z.shape[-2:]))
        return z.reshape(b, 2 * c, *z.shape[-2:])

    def synthesise(self, y: torch.Tensor, length: int) -> torch.Tensor:
        """(B, 2C, F, N) U-Net output -> (B, C, length) waveform (decompressed first if so set)."""
        b, n_freq, n_frames = y.shape[0], y.shape[-2], y.shape[-1]
        y = y.reshape(b, -1, 2, n_freq, n_frames)
        if self.output == "compressed":
            y = self._decompress(y)
        spec = torch.view_as_complex((y * self.stft_scale).permute(0, 1, 3, 4, 2).contiguous())
        wav = torch.istft(
            spec.reshape(-1, n_freq, n_frames),
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.n_fft,
            window=self.window.to(spec.real.dtype),
            center=True,
            normalized=False,
            onesided=True,
            length=int(length),
        )  # (B C, length)
        return wav.reshape(b, -1, int(length))

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, T) waveform, c_noise: (B,) -> (B, C_out, T) waveform."""
        if x.ndim != 3:
            raise ValueError(f"STFTUNet expects (B, C, T) waveforms, got shape {tuple(x.shape)}")
        length = x.shape[-1]
        # torch.stft / istft need float32 or float64; bf16 autocast still applies inside the U-Net.
        wav = x.float() if x.dtype not in (torch.float32, torch.float64) else x
        short = self.n_fft // 2 + 1 - length  # reflect padding needs more than n_fft / 2 samples
        if short > 0:
            wav = F.pad(wav, (0, short))
        y = self.unet(self.analyse(wav), c_noise)
        out = self.synthesise(y.to(wav.dtype), wav.shape[-1])
        return out[..., :length].to(x.dtype)
