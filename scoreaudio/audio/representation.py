"""The seam between audio and the diffusion space: ``encode(wav)`` / ``decode(x, length)``.

A representation maps waveforms ``(B, 1, T)`` to the model's space ``(B, C, *S)`` and back:

* :class:`Waveform` — the identity, ``C = 1``.
* :class:`CompressedSTFT` — the complex STFT with amplitude compression
  ``beta * |X|**alpha * exp(i * angle(X))`` stored as two real channels (re, im),
  ``(B, 2, F, N)`` with ``F = n_fft // 2 + 1`` (SGMSE, Welker et al. 2022, Sec. 2;
  Richter et al. 2023, Eq. (1)). Defaults n_fft=510, hop=128, alpha=0.5, beta=0.15 at 16 kHz.

Both round-trip to float error for any length. They are plain objects (no parameters); the STFT
window is built on the input's device and dtype and cached there.

Features and pictures (:func:`log_mel`, :func:`spectrogram_png`) are in :mod:`scoreaudio.audio.features`.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Protocol, Tuple

import torch

from ..errors import ConfigError
from ..utils.tensor import fit_length

_HALF = (torch.float16, torch.bfloat16)


class Representation(Protocol):
    """What the trainer, samplers and denoiser rely on (DESIGN.md section 3)."""

    channels: int

    def encode(self, wav: torch.Tensor) -> torch.Tensor: ...  # (B, 1, T) -> (B, C, *S)

    def decode(self, x: torch.Tensor, length: int) -> torch.Tensor: ...  # (B, C, *S) -> (B, 1, length)

    def encoded_shape(self, length: int) -> Tuple[int, ...]: ...

    def noise_std_in_model_space(self, waveform_noise_std: float) -> float: ...

    def to_dict(self) -> Dict[str, object]: ...


def _check_wave(wav: torch.Tensor) -> None:
    if wav.ndim != 3 or wav.shape[1] != 1:
        raise ValueError(f"expected a waveform batch of shape (B, 1, T), got {tuple(wav.shape)}")


class Waveform:
    """The identity representation: the model sees the waveform itself, (B, 1, T)."""

    kind = "waveform"
    channels = 1

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) -> (B, 1, T)."""
        _check_wave(wav)
        return wav

    def decode(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """(B, 1, T') -> (B, 1, length), cropped or zero-padded at the end."""
        _check_wave(x)
        return fit_length(x, int(length))

    def encoded_shape(self, length: int) -> Tuple[int, ...]:
        """Shape of ``encode`` for a waveform of ``length`` samples, without the batch axis."""
        return (1, int(length))

    def noise_std_in_model_space(self, waveform_noise_std: float) -> float:
        """White waveform noise of std s is white noise of std s here (identity map)."""
        return float(waveform_noise_std)

    def to_dict(self) -> Dict[str, object]:
        return {"kind": self.kind}

    def __repr__(self) -> str:
        return "Waveform()"


class CompressedSTFT:
    """Amplitude-compressed complex STFT as (re, im) channels: (B, 1, T) <-> (B, 2, F, N).

    ``encode``: ``X = STFT(x)`` (torch.stft, ``center=True`` with reflect padding, periodic Hann
    window of length ``n_fft``), then ``beta * |X|**alpha * exp(i angle X)``; ``F = n_fft//2 + 1``
    bins, ``N = 1 + T // hop_length`` frames. ``decode`` inverts the compression
    (``|X| = (|z| / beta)**(1/alpha)``, phase kept) and runs torch.istft with the given length.

    Half-precision inputs are computed in float32 and cast back (torch.stft needs float32/64).
    """

    kind = "stft"
    channels = 2

    def __init__(
        self,
        n_fft: int = 510,
        hop_length: int = 128,
        alpha: float = 0.5,
        beta: float = 0.15,
        window: str = "hann",
    ):
        if window != "hann":
            raise ConfigError(f"representation.window={window!r} is not supported; valid: hann")
        if n_fft < 4 or hop_length < 1 or hop_length > n_fft:
            raise ConfigError(
                f"need n_fft >= 4 and 1 <= hop_length <= n_fft, got n_fft={n_fft}, hop_length={hop_length}"
            )
        if not (0.0 < alpha <= 1.0) or beta <= 0.0:
            raise ConfigError(f"need 0 < alpha <= 1 and beta > 0, got alpha={alpha}, beta={beta}")
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.window = window
        self.n_freqs = self.n_fft // 2 + 1
        self._windows: Dict[Tuple[torch.device, torch.dtype], torch.Tensor] = {}

    # --------------------------------------------------------------------------------------
    def _window(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = (torch.device(device), dtype)
        w = self._windows.get(key)
        if w is None:
            w = torch.hann_window(self.n_fft, periodic=True, device=device, dtype=dtype)
            self._windows[key] = w
        return w

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) waveform -> (B, 2, F, N) compressed spectrogram (re, im)."""
        _check_wave(wav)
        dtype = wav.dtype
        x = wav.float() if dtype in _HALF else wav
        B, _, T = x.shape
        X = torch.stft(
            x.reshape(B, T),
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.n_fft,
            window=self._window(x.device, x.dtype),
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )  # (B, F, N) complex
        mag = self.beta * X.abs() ** self.alpha
        z = torch.polar(mag, X.angle())  # beta |X|^alpha e^{i angle X}
        out = torch.view_as_real(z).permute(0, 3, 1, 2)  # (B, 2, F, N)
        return out.contiguous().to(dtype)

    def decode(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """(B, 2, F, N) compressed spectrogram -> (B, 1, length) waveform."""
        if x.ndim != 4 or x.shape[1] != 2 or x.shape[2] != self.n_freqs:
            raise ValueError(
                f"expected a spectrogram batch of shape (B, 2, {self.n_freqs}, N), got {tuple(x.shape)}"
            )
        dtype = x.dtype
        y = x.float() if dtype in _HALF else x
        z = torch.complex(y[:, 0], y[:, 1])  # (B, F, N)
        mag = (z.abs() / self.beta) ** (1.0 / self.alpha)  # undo beta |X|^alpha
        X = torch.polar(mag, z.angle())
        wav = torch.istft(
            X,
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.n_fft,
            window=self._window(y.device, y.dtype),
            center=True,
            normalized=False,
            onesided=True,
            length=int(length),
        )  # (B, length)
        return wav[:, None, :].to(dtype)

    def encoded_shape(self, length: int) -> Tuple[int, ...]:
        """(2, F, N) for a waveform of ``length`` samples (center=True: N = 1 + length // hop)."""
        return (2, self.n_freqs, 1 + int(length) // self.hop_length)

    def noise_std_in_model_space(self, waveform_noise_std: float) -> float:
        """RMS per element of ``encode(n)`` for white Gaussian waveform noise ``n`` of this std.

        Derivation (frames away from the first/last ``n_fft/2`` samples, where reflect padding
        correlates samples). With ``S = sum(window**2)`` each STFT coefficient of white noise of
        std ``s`` has ``E|X|^2 = v = s^2 S``. For ``0 < k < n_fft/2`` it is (very nearly)
        circular complex Gaussian, so ``|X|^2`` is exponential with mean ``v`` and the compressed
        value ``z = beta |X|^alpha e^{i angle X}`` has ``E|z|^2 = beta^2 v^alpha Gamma(1+alpha)``,
        half in each of re and im. The DC bin (and the Nyquist bin for even ``n_fft``) is real
        Gaussian with variance ``v``: ``E z_re^2 = beta^2 v^alpha 2^alpha Gamma(alpha+1/2)/sqrt(pi)``,
        ``z_im = 0``. The value returned is the square root of the mean over all ``2F`` elements.

        * ``alpha = 1`` (linear map): exactly ``beta * s * sqrt(S / 2)`` — every element of every
          bin then has variance ``beta^2 s^2 S / 2`` on average (for even ``n_fft``), which is
          what white noise of that std in model space would have. (The noise is Gaussian but
          correlated across overlapping frames: it lives on the range of the STFT.)
        * ``alpha < 1``: the map is not linear, so there is no single scale factor. The figure
          returned is exact for the compressed *noise alone*, i.e. for time-frequency bins where
          the signal is far below the noise (silences and weak bins, most bins of noisy speech).
          Where the signal magnitude ``m`` dominates, the compressed deviation is smaller,
          about ``beta m^(alpha-1) s sqrt(S/2)`` (tangential) and ``alpha`` times that (radial).
          For a signal-aware figure measure it with :func:`estimate_model_noise_std`.
        """
        s = float(waveform_noise_std)
        if s == 0.0:
            return 0.0
        w = torch.hann_window(self.n_fft, periodic=True, dtype=torch.float64)
        v = s * s * float((w * w).sum())  # E|X|^2 of one coefficient
        a, b = self.alpha, self.beta
        complex_bins = self.n_freqs - (2 if self.n_fft % 2 == 0 else 1)
        real_bins = self.n_freqs - complex_bins
        var_complex = b * b * v**a * math.gamma(1.0 + a)  # re^2 + im^2, per complex bin
        var_real = b * b * v**a * 2.0**a * math.gamma(a + 0.5) / math.sqrt(math.pi)  # re^2 only
        mean_var = (complex_bins * var_complex + real_bins * var_real) / (2 * self.n_freqs)
        return math.sqrt(mean_var)

    def to_dict(self) -> Dict[str, object]:
        return {
            "kind": self.kind,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "alpha": self.alpha,
            "beta": self.beta,
            "window": self.window,
        }

    def __repr__(self) -> str:
        return (
            f"CompressedSTFT(n_fft={self.n_fft}, hop_length={self.hop_length}, alpha={self.alpha}, "
            f"beta={self.beta}, window={self.window!r})"
        )


REPRESENTATIONS = {"waveform": Waveform, "stft": CompressedSTFT}


def representation_from_dict(d: Dict[str, object]) -> Representation:
    """Rebuild a representation from its ``to_dict()`` (as stored in checkpoints)."""
    d = dict(d)
    kind = d.pop("kind", None)
    cls = REPRESENTATIONS.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ConfigError(f"unknown representation kind {kind!r}; valid: {', '.join(REPRESENTATIONS)}")
    try:
        return cls(**d)
    except TypeError:
        raise ConfigError(f"representation {kind!r} got unexpected settings {sorted(d)}") from None


def build_representation(rep_cfg) -> Representation:
    """The representation named by a RepresentationConfig (``representation.kind``)."""
    kind = rep_cfg.kind
    if kind == "waveform":
        return Waveform()
    if kind == "stft":
        return CompressedSTFT(
            n_fft=int(rep_cfg.n_fft),
            hop_length=int(rep_cfg.hop_length),
            alpha=float(rep_cfg.alpha),
            beta=float(rep_cfg.beta),
            window=str(rep_cfg.window),
        )
    raise ConfigError(f"representation.kind={kind!r} is not one of: {', '.join(REPRESENTATIONS)}")


@torch.no_grad()
def estimate_model_noise_std(
    rep: Representation,
    clean: torch.Tensor,
    waveform_noise_std: float,
    *,
    generator: Optional[torch.Generator] = None,
    draws: int = 4,
) -> float:
    """Measure the model-space std of white waveform noise on a given signal.

    Returns ``sqrt(mean((encode(clean + s n) - encode(clean))**2))`` over all elements and
    ``draws`` noise draws, with ``n`` standard normal. For linear representations this equals
    ``rep.noise_std_in_model_space(s)`` up to sampling error; for the compressed STFT
    (alpha < 1) it depends on the signal, and this is the figure to use for it.

    Args:
        clean: (T,), (1, T) or (B, 1, T) waveform.
    """
    if clean.ndim == 1:
        clean = clean[None, None]
    elif clean.ndim == 2:
        clean = clean[None]
    _check_wave(clean)
    x0 = rep.encode(clean)
    acc = 0.0
    for _ in range(int(draws)):
        n = torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device)
        d = rep.encode(clean + float(waveform_noise_std) * n) - x0
        acc += float(d.double().pow(2).mean())
    return math.sqrt(acc / max(1, int(draws)))
