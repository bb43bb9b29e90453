"""Speech denoising with a score model: the :class:`SpeechDenoiser` API (its command line,
``scoreaudio denoise``, is :mod:`scoreaudio.denoise_cli`).

The methods (pure functions in :mod:`scoreaudio.denoise_methods`), all behind one call,
``den(wav, sample_rate)``:

``predictive`` (conditional checkpoints; their default)
    One network call: D(sigma_max z, sigma_max, y), the regression E[x | y] a conditional model
    learns at its top level (``noise.train_distribution=conditional`` trains it there). Any noise.
``refined`` (conditional checkpoints)
    StoRM-style: the predictive estimate plus sigma_s z, then a few conditional reverse-diffusion
    steps (``steps`` calls in all, default 6).
``conditional`` (conditional checkpoints)
    The earlier SGMSE-style sampler from ``y + 2 sigma_y z``; kept for comparison.
``tweedie`` (unconditional priors; their default)
    One call at the noisy input's level sigma_y: ``x_hat = y + sigma_y^2 s(y, sigma_y)``, the
    posterior mean under the prior of clean speech when the noise is white and Gaussian.
``posterior`` (unconditional priors)
    Reverse diffusion *from the noisy input* down to sigma_min: a draw from p(x | y).

:meth:`SpeechDenoiser.from_pretrained` with ``"default"`` (or no argument and no runs/) loads the
model shipped in the package (``scoreaudio/models/``, model card beside it): a conditional denoiser
trained on real speech and real noise, weights in safetensors (never unpickled).

Around every method:

* **Sample rate**: the input is resampled to the model's rate (soxr) and the result back to the
  input's rate; content above the model's Nyquist frequency is not restored.
* **Loudness**: each channel is normalised like training did (``data.normalize``: peak to
  ``data.peak_level``, or RMS to ``data.rms_db``) before encoding, and the output is scaled back
  by the same gain, so it has the input's scale.
* **Noise level**: given (``noise_std=`` waveform std, or ``snr_db=``) or estimated once per
  channel over the whole input (:func:`estimate_noise_std`), then mapped into the model space
  with ``representation.noise_std_in_model_space`` and clamped to [sigma_min, sigma_max].
  For the compressed STFT (alpha < 1) that map is exact only where the noise dominates the
  signal: the prior-based methods are approximate there (DESIGN.md section 6).
* **Any length**: overlapping chunks (``chunk_seconds`` with ``overlap_seconds`` of overlap,
  start points on the representation's hop grid) are batched (``batch_size``) and joined by
  overlap-add with sin^2 cross-fades (:mod:`scoreaudio.audio.chunking`), so memory does not grow
  with the input's length. Inputs shorter than :data:`MIN_SECONDS` are zero-padded.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Mapping, Optional, Union

import torch

from .audio.arrays import ArrayLike, as_channels, check_sample_rate
from .audio.chunking import chunk_starts, overlap_add
from .audio.noise_level import estimate_noise_std, noise_std_from_snr
from .config import NoiseConfig
from .denoise_methods import (
    CONDITIONAL_METHODS,
    DEFAULT_STEPS,
    METHOD_FUNCTIONS,
    METHODS,
    PRIOR_METHODS,
    check_method,
    check_steps,
    tweedie,
)
from .errors import ScoreAudioError
from .nn.build import is_length_independent
from .noise import NoiseLevels
from .ouve import OUVE
from .utils.files import file_id
from .utils.silence import SILENT_INPUT_PEAK
from .utils.tensor import fit_length, generator_on

__all__ = [
    "SpeechDenoiser",
    "tweedie",
    "estimate_noise_std",
    "noise_std_from_snr",
    "chunk_starts",
    "METHODS",
    "DEFAULT_STEPS",
    "DEFAULT_MODEL",
    "smallest_chunk_seconds",
]

#: Default method for conditional checkpoints: the one-call predictive estimate.
DEFAULT_CONDITIONAL_METHOD = "predictive"
#: What ``from_pretrained()`` and ``scoreaudio denoise`` load without a checkpoint: the built-in model.
DEFAULT_MODEL = "default"
#: Default method for unconditional checkpoints. Measured with the waveform-state folder prior
#: (the previous release's README benchmark, 900-step folder prior: real speech, white noise at 0 / 5 / 10 dB): tweedie gains +9.2 / +7.9 /
#: +6.8 dB SI-SDR, posterior (10 steps) +5.5 / +5.1 / +4.3 dB. Tweedie is also deterministic and
#: ``steps`` times cheaper. Posterior draws a *sample*: even with an exact score its squared error is
#: twice the posterior mean's (about -3 dB), and with a weak prior it is worse still.
DEFAULT_UNCONDITIONAL_METHOD = "tweedie"
#: Chunk length for networks whose output is local in time (their result does not depend on it).
LOCAL_CHUNK_SECONDS = 4.0
#: Inputs shorter than this are zero-padded before encoding (and cropped after).
MIN_SECONDS = 0.1


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------
class SpeechDenoiser:
    """Denoise speech with a score model; see the module docstring for the methods.

    Usually built with :meth:`from_pretrained`; the constructor takes the parts (any
    ``model(x, sigma[, cond])`` returning a score, any representation), which tests use to plug in
    analytic scores.

    Args:
        model: the score model, on ``device``, in eval mode.
        representation: ``encode``/``decode``/``noise_std_in_model_space`` (scoreaudio.audio.representation).
        levels: the training run's :class:`~scoreaudio.noise.NoiseLevels` (model space), or the
            dict of them a checkpoint stores; its ``noise_map_scale`` (None: 1) scales the
            estimated noise level of a prior.
        sample_rate: the model's rate, Hz.
        conditional: the model takes the noisy representation as ``cond``.
        normalize, peak_level, rms_db: loudness normalisation as in training (``data.*``).
        device: where to compute (default: the model's device).
        chunk_seconds, overlap_seconds: chunk length and overlap for long inputs.
        batch_size: chunks per network call (default 4 on CPU, 16 on CUDA).
        sampler_snr: corrector snr of the PC sampler used by ``conditional``.
        ouve: the :class:`~scoreaudio.ouve.OUVE` constants of a model trained with
            ``noise.train_distribution=ouve``; it makes ``ouve`` the default method.
    """

    def __init__(
        self,
        model,
        representation,
        levels: NoiseLevels | Mapping[str, float],
        sample_rate: int,
        *,
        conditional: bool = False,
        normalize: str = "peak",
        peak_level: float = 0.9,
        rms_db: float = -25.0,
        device: Union[str, torch.device, None] = None,
        chunk_seconds: float = 4.0,
        overlap_seconds: float = 0.5,
        batch_size: Optional[int] = None,
        sampler_snr: float = 0.16,
        ouve: Optional[OUVE] = None,
    ):
        if normalize not in ("peak", "rms", "none"):
            raise ScoreAudioError(f"normalize={normalize!r} is not one of: peak, rms, none")
        if not chunk_seconds > 0 or not 0 <= overlap_seconds < chunk_seconds:
            raise ScoreAudioError(
                f"need chunk_seconds > 0 and 0 <= overlap_seconds < chunk_seconds, got "
                f"{chunk_seconds} and {overlap_seconds}"
            )
        if batch_size is not None and int(batch_size) < 1:
            raise ScoreAudioError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.representation = representation
        levels = NoiseLevels.coerce(levels)
        self.sigma_min = levels.sigma_min
        self.sigma_max = levels.sigma_max
        self.sigma_data = levels.sigma_data
        # measured per checkpoint at the end of training (scoreaudio/calibration.py); 1 = the analytic map
        self.noise_map_scale = 1.0 if levels.noise_map_scale is None else levels.noise_map_scale
        self.sample_rate = int(sample_rate)
        self.conditional = bool(conditional)
        self.normalize = normalize
        self.peak_level = float(peak_level)
        self.rms_db = float(rms_db)
        if device is None:
            p = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
            device = p.device if p is not None else "cpu"
        self.device = torch.device(device)
        self.chunk_seconds = float(chunk_seconds)
        self.overlap_seconds = float(overlap_seconds)
        self.batch_size = int(batch_size) if batch_size else (16 if self.device.type == "cuda" else 4)
        least = smallest_chunk_seconds(self)
        if self.chunk_seconds < least - 1e-9:
            raise ScoreAudioError(
                f"chunk_seconds={chunk_seconds:g} is too short for this model; the smallest "
                f"usable value is {least:g} s"
            )
        self.sampler_snr = float(sampler_snr)
        self.ouve_process = ouve if ouve is not None else OUVE.from_config(NoiseConfig(), self.sigma_data)
        self.trained_for_ouve = ouve is not None
        self.checkpoint: Optional[Path] = None

    @classmethod
    def from_pretrained(
        cls,
        checkpoint_or_run_dir=None,
        *,
        device: Union[str, torch.device, None] = None,
        chunk_seconds: Optional[float] = None,
        overlap_seconds: float = 0.5,
        batch_size: Optional[int] = None,
        ema: bool = True,
    ) -> "SpeechDenoiser":
        """A denoiser from a checkpoint file, a run directory, a ``.safetensors`` weights file, or a
        built-in model by name; None loads the built-in :data:`DEFAULT_MODEL` (works offline).

        ``chunk_seconds`` None: :data:`LOCAL_CHUNK_SECONDS` for a network whose output is local in
        time, else the training crop (a network with statistics over the whole input answers
        differently to longer inputs: 4 s chunks of a 1 s-crop model measured 1.8 dB worse); the
        overlap is then at most a quarter of the chunk.
        """
        from .pretrained import load_pretrained

        p = load_pretrained(
            DEFAULT_MODEL if checkpoint_or_run_dir is None else checkpoint_or_run_dir, device=device, ema=ema
        )
        d = p.cfg.data
        if chunk_seconds is None:
            local = is_length_independent(p.cfg.model)
            chunk_seconds = LOCAL_CHUNK_SECONDS if local else float(d.segment_seconds)
            overlap_seconds = min(overlap_seconds, 0.25 * chunk_seconds)
        den = cls(
            p.model,
            p.representation,
            p.levels,
            p.sample_rate,
            conditional=p.conditional,
            normalize=str(d.normalize),
            peak_level=float(d.peak_level),
            rms_db=float(d.rms_db),
            device=p.device,
            chunk_seconds=chunk_seconds,
            overlap_seconds=overlap_seconds,
            batch_size=batch_size,
            sampler_snr=float(p.cfg.sampler.snr),
            ouve=OUVE.from_config(p.cfg.noise, p.levels.sigma_data)
            if p.cfg.noise.get("train_distribution") == "ouve"
            else None,
        )
        den.checkpoint = p.path
        return den

    # ----------------------------------------------------------------------------------------
    @property
    def default_method(self) -> str:
        if self.conditional:
            return "ouve" if self.trained_for_ouve else DEFAULT_CONDITIONAL_METHOD
        return DEFAULT_UNCONDITIONAL_METHOD

    @property
    def methods(self) -> tuple:
        """The methods this checkpoint can run."""
        return CONDITIONAL_METHODS if self.conditional else PRIOR_METHODS

    def __repr__(self) -> str:
        return (
            f"SpeechDenoiser({self.representation!r}, {self.sample_rate} Hz, "
            f"{'conditional' if self.conditional else 'unconditional'}, default method "
            f"{self.default_method!r}, device {self.device})"
        )

    # ----------------------------------------------------------------------------------------
    def __call__(
        self,
        wav: ArrayLike,
        sample_rate: int,
        *,
        method: Optional[str] = None,
        steps: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        noise_std: Optional[float] = None,
        snr_db: Optional[float] = None,
    ) -> ArrayLike:
        """Denoise ``wav``: (T,) or (channels, T), numpy or torch, at ``sample_rate``.

        Returns the same type, shape, dtype (and device, for tensors) at the same rate; channels
        are denoised independently. ``noise_std`` is the std of the additive noise in the input's
        units at the input's rate (assumed white when the rate is converted), ``snr_db`` its
        SNR; by default the noise level is estimated (:func:`estimate_noise_std`). ``steps``:
        network calls per chunk (:data:`DEFAULT_STEPS`). ``generator`` seeds posterior and
        conditional (a generator on another device seeds one on the compute device).

        Raises:
            AudioError: NaN/inf samples, an empty input, a bad shape or dtype.
            ScoreAudioError: a bad method, steps, sample rate or noise level.
        """
        method = check_method(method, self.methods, self.default_method, self.conditional)
        steps = check_steps(method, steps)
        sr = check_sample_rate(sample_rate)
        if noise_std is not None and snr_db is not None:
            raise ScoreAudioError("give noise_std or snr_db, not both")
        if noise_std is not None and not (math.isfinite(float(noise_std)) and float(noise_std) >= 0):
            raise ScoreAudioError(f"noise_std must be a finite number >= 0, got {noise_std}")
        x, restore = as_channels(wav)  # (C, T) float32 CPU tensor
        C, T = x.shape
        white_share = math.sqrt(min(1.0, self.sample_rate / sr))  # noise power kept by downsampling
        out = x.clone()
        silent = [c for c in range(C) if float(x[c].abs().max()) < SILENT_INPUT_PEAK]
        if silent:
            which = "the input is" if C == 1 else f"channel(s) {silent} are"
            warnings.warn(
                f"{which} silent (peak below {SILENT_INPUT_PEAK:g}); returned unchanged", stacklevel=2
            )
        active = [c for c in range(C) if c not in silent]
        if active:
            from .audio.io import resample

            gen = generator_on(self.device, generator)
            with torch.inference_mode():
                y_all = resample(x[active], sr, self.sample_rate)  # (C', T')
                results = []
                for k, c in enumerate(active):
                    y = y_all[k].to(self.device)
                    gain = self._gain(y)
                    y = y * gain
                    if method in ("predictive", "refined", "ouve"):
                        s_wave = 0.0  # these read the noise from the input itself: no level needed
                    elif noise_std is not None:
                        s_wave = float(noise_std) * white_share * gain
                    elif snr_db is not None:
                        s_wave = noise_std_from_snr(x[c], float(snr_db)) * white_share * gain
                    else:
                        s_wave = estimate_noise_std(y, self.sample_rate)
                    sigma = self.model_sigma(s_wave)
                    results.append(self._denoise_long(y, sigma, method, steps, gen) / gain)
                den = resample(torch.stack(results).cpu(), self.sample_rate, sr)  # (C', T'')
            out[active] = fit_length(den, T)
        return restore(out)

    def model_sigma(self, waveform_noise_std: float) -> float:
        """Waveform noise std (after normalisation) -> model-space sigma, clamped to the training range.

        The representation's analytic map times the checkpoint's calibrated ``noise_map_scale``."""
        s = self.noise_map_scale * float(
            self.representation.noise_std_in_model_space(float(waveform_noise_std))
        )
        if s > self.sigma_max * (1 + 1e-6):  # said, not silent: the estimate is then for a lower noise level
            warnings.warn(
                f"the noise level ({waveform_noise_std:.3g} after normalisation) is above what this model "
                f"was trained for (sigma {s:.3g} > {self.sigma_max:.3g}); denoising as if it were "
                f"{self.sigma_max:.3g}",
                stacklevel=3,
            )
        return min(max(s, self.sigma_min), self.sigma_max)

    def _gain(self, y: torch.Tensor) -> float:
        if self.normalize == "peak":
            return self.peak_level / float(y.abs().max())
        if self.normalize == "rms":
            return 10.0 ** (self.rms_db / 20.0) / max(float(y.double().square().mean().sqrt()), 1e-12)
        return 1.0

    # ----------------------------------------------------------------------------------------
    def _hop_unit(self) -> int:
        return int(getattr(self.representation, "hop_length", 1))

    def _denoise_long(
        self, y: torch.Tensor, sigma: float, method: str, steps: int, generator: Optional[torch.Generator]
    ) -> torch.Tensor:
        """(T,) normalised waveform on the device -> (T,) denoised, chunk by chunk (overlap-add)."""
        unit = self._hop_unit()
        n_fft = int(getattr(self.representation, "n_fft", 0))
        return overlap_add(
            y,
            lambda seg: self._denoise_batch(seg, sigma, method, steps, generator),
            chunk=int(round(self.chunk_seconds * self.sample_rate / unit)) * unit,
            overlap=int(round(self.overlap_seconds * self.sample_rate / unit)) * unit,
            unit=unit,
            min_length=max(int(math.ceil(MIN_SECONDS * self.sample_rate)), 2 * n_fft),
            batch_size=self.batch_size,
        )

    def _denoise_batch(
        self, wav: torch.Tensor, sigma: float, method: str, steps: int, generator: Optional[torch.Generator]
    ) -> torch.Tensor:
        """(B, 1, L) normalised noisy waveforms -> (B, 1, L) estimates; one sigma for the batch."""
        rep = self.representation
        y = rep.encode(wav)  # (B, C, *S)
        x = METHOD_FUNCTIONS[method](
            self.model,
            y,
            sigma=sigma,
            cond=y if self.conditional else None,
            sigma_min=self.sigma_min,
            sigma_max=self.sigma_max,
            sigma_data=self.sigma_data,
            steps=steps,
            snr=self.sampler_snr,
            process=self.ouve_process,
            generator=generator,
        )
        out = rep.decode(x, wav.shape[-1]).float()
        if not torch.isfinite(out).all():
            raise ScoreAudioError(
                f"method '{method}' produced non-finite values; try another method, "
                f"more steps, or a later checkpoint"
            )
        return out

    # ----------------------------------------------------------------------------------------
    def denoise_file(self, src, dst, *, overwrite: bool = False, **kwargs) -> Path:
        """Denoise an audio file into ``dst`` (any keyword of ``__call__``); returns ``dst``.

        Reads all channels at the file's own rate and writes the same rate and channels; the
        sample format (subtype, e.g. PCM_24 or FLOAT) is kept when ``dst``'s container supports
        it, else that container's default. The extension of ``dst`` picks the container.

        An existing ``dst`` is replaced only with ``overwrite=True``, and never when it is ``src``
        itself: a denoiser's output is no substitute for the original recording. Both are
        checked before any compute.
        """
        from .audio.io import audio_info, container_supports, read_file_samples, save
        from .generation import OutputExistsError

        src, dst = Path(src), Path(dst)
        audio_info(src)  # missing / empty / unreadable -> AudioError
        if dst.exists():
            if file_id(dst) == file_id(src):
                raise ScoreAudioError(
                    f"'{dst}' is the input file itself; write the result to another file "
                    f"so the original recording is kept"
                )
            if not overwrite:
                raise OutputExistsError(f"'{dst}' exists; pass overwrite=True (--overwrite) or another dst")
        wav, rate, subtype = read_file_samples(src, what="denoise")
        out = self(wav, rate, **kwargs)
        return save(dst, out, rate, subtype=subtype if container_supports(dst, subtype) else None)


def smallest_chunk_seconds(den: "SpeechDenoiser") -> float:
    """The shortest ``--chunk-seconds`` ``den`` can use, seconds: :data:`MIN_SECONDS`, two STFT
    windows of its representation, and one hop, rounded up to the hop grid. Shorter inputs are
    zero-padded to this length, but shorter chunks would reach the network as they are."""
    unit = den._hop_unit()
    n_fft = int(getattr(den.representation, "n_fft", 0))
    samples = max(math.ceil(MIN_SECONDS * den.sample_rate), 2 * n_fft, unit)
    return -(-samples // unit) * unit / den.sample_rate
