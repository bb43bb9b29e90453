"""Training and evaluation examples: fixed-length segments, clean/noisy pairs, on-the-fly noise.

``SegmentDataset[key]`` returns ``{"clean": (1, T) float32, "noisy": (1, T) float32}`` (``noisy``
only for paired corpora or with a :class:`NoiseMixer`). The key decides where randomness comes from:

* ``ds[i]`` — deterministic (validation / test): the crop is the middle of the file, the mixer's
  noise and SNR come from a generator seeded by ``i``.
* ``ds[(i, draw_seed)]`` — training: the crop offset and the mixer's draws come from
  ``np.random.default_rng(draw_seed)``, so the trainer controls all randomness by step and a resumed
  run draws exactly the same examples.

Waveforms stay waveforms here; the representation runs on the device in the training step.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..audio.io import load
from ..errors import AudioError, ConfigError, DataError
from ..utils.silence import SILENT_INPUT_PEAK
from .manifest import AudioMeta
from .step_sampler import SKIPPED

log = logging.getLogger(__name__)

#: Power that stands in for an all-zero clean signal in mix_at_snr: speech at -25 dBFS RMS.
SILENT_REFERENCE_POWER = 10.0 ** (-25.0 / 10.0)


# ------------------------------------------------------------------------------------------
# Noise
# ------------------------------------------------------------------------------------------
def _unit_rms(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    return x / (np.sqrt(np.mean(x * x)) + 1e-20)


def _coloured(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f**exponent (FFT shaping), zero mean, unit RMS."""
    n = int(n)
    if n < 2:
        return np.zeros(n)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    spec *= f ** (-exponent / 2.0)  # amplitude ~ f^(-exponent/2) -> power ~ f^-exponent
    spec[0] = 0.0
    return _unit_rms(np.fft.irfft(spec, n))


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise (flat power spectrum), unit RMS, float64 (n,)."""
    return _unit_rms(rng.standard_normal(int(n))) if n >= 2 else np.zeros(int(n))


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink noise: power spectrum ~ 1/f (-3 dB/octave), unit RMS, float64 (n,)."""
    return _coloured(n, rng, 1.0)


def brown_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Brown (red) noise: power spectrum ~ 1/f^2 (-6 dB/octave), unit RMS, float64 (n,)."""
    return _coloured(n, rng, 2.0)


NOISE_KINDS = {"white": white_noise, "pink": pink_noise, "brown": brown_noise}


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``clean + g * noise`` with ``g`` such that 10 log10(P_clean / P_(g noise)) = snr_db exactly.

    Powers are means of squares over the whole segment. An all-zero ``clean`` (a silent crop) has
    no SNR; the noise is then scaled as if the clean signal were speech at -25 dBFS RMS, so silent
    crops still teach a denoiser to remove noise at a realistic level.

    Raises:
        DataError: ``noise`` is all zero (or not finite), or the shapes differ.
    """
    clean = np.asarray(clean)
    noise = np.asarray(noise)
    if clean.shape != noise.shape:
        raise DataError(f"mix_at_snr: clean {clean.shape} and noise {noise.shape} differ in shape")
    p_noise = float(np.mean(noise.astype(np.float64) ** 2)) if noise.size else 0.0
    if not math.isfinite(p_noise) or p_noise <= 0.0:
        raise DataError(
            "mix_at_snr: the noise is all zero or not finite; check the noise source (a silent noise file?)"
        )
    p_clean = float(np.mean(clean.astype(np.float64) ** 2))
    if p_clean <= 0.0:
        p_clean = SILENT_REFERENCE_POWER
    gain = math.sqrt(p_clean / (p_noise * 10.0 ** (float(snr_db) / 10.0)))
    out = clean.astype(np.float64) + gain * noise.astype(np.float64)
    return out.astype(clean.dtype if np.issubdtype(clean.dtype, np.floating) else np.float32)


class NoiseMixer:
    """Adds noise at a random SNR from weighted sources (scoreaudio/data/noise_sources.py).

    Each call draws, from the caller's rng: a source by weight (generated colours, babble, noise
    corpora), a segment from it, an SNR uniformly in [snr_db_min, snr_db_max] and, with
    probability ``reverb_prob``, a simulated room that the speech is played in first (the
    target is then the speech with its early reflections, :mod:`scoreaudio.data.reverb`).

    ``kinds`` and ``folder`` are the short form: each kind, and the folder's recordings (all of
    them, no split), with equal weights. ``sources`` (a :class:`~scoreaudio.data.noise_sources.WeightedSources`)
    replaces them.
    """

    def __init__(
        self,
        kinds: Sequence[str] = ("white", "pink", "brown"),
        folder=None,
        snr_db_min: float = 0.0,
        snr_db_max: float = 20.0,
        sample_rate: int = 16000,
        sources=None,
        reverb_prob: float = 0.0,
        reverb_rt60: Sequence[float] = (0.2, 0.8),
    ):
        from .noise_sources import GeneratedNoise, RecordedNoise, WeightedSources, noise_files

        self.kinds = [] if sources is not None else list(kinds or [])
        if sources is None:
            kinds = list(kinds or [])
            bad = [k for k in kinds if k not in NOISE_KINDS]
            if bad:
                raise DataError(
                    f"unknown noise kind(s) {bad} in data.noise_mix.kinds; valid: {', '.join(NOISE_KINDS)}"
                )
            items: list = [GeneratedNoise(k) for k in kinds]
            if folder:
                items.append(RecordedNoise("folder", noise_files("folder", folder, split="all"), sample_rate))
            if not items:
                raise DataError(
                    "noise mixing has no source: give data.noise_mix.kinds or data.noise_mix.folder"
                )
            sources = WeightedSources(items, np.full(len(items), 1.0 / len(items)))
        self.sources = sources
        if float(snr_db_min) > float(snr_db_max):
            raise DataError(f"data.noise_mix.snr_db_min={snr_db_min} is above snr_db_max={snr_db_max}")
        if not 0.0 <= float(reverb_prob) <= 1.0:
            raise DataError(f"data.noise_mix.reverb_prob must be in [0, 1], got {reverb_prob}")
        lo, hi = (float(v) for v in reverb_rt60)
        if float(reverb_prob) > 0 and not 0.05 <= lo <= hi <= 3.0:  # checked now, not at the first room
            raise DataError(
                f"data.noise_mix.reverb_rt60 must be within [0.05, 3] s with min <= max, got "
                f"{list(reverb_rt60)}"
            )
        self.snr_db_min, self.snr_db_max = float(snr_db_min), float(snr_db_max)
        self.sample_rate = int(sample_rate)
        self.reverb_prob, self.reverb_rt60 = float(reverb_prob), tuple(reverb_rt60)

    @classmethod
    def from_config(
        cls, noise_cfg, sample_rate: int, *, train_metas: Sequence = (), split: Optional[str] = None
    ) -> "NoiseMixer":
        """From a NoiseMixConfig (``data.noise_mix``); ``train_metas`` feed babble, ``split``
        overrides every recording source's split (the benchmark's test noise)."""
        from .noise_sources import build_sources

        sources = None
        if noise_cfg.sources:
            roots = [str(src.get("root")) for src in noise_cfg.sources]
            if noise_cfg.folder and str(noise_cfg.folder) not in roots:
                # with sources set, `folder` is read only through a source's root: say so, never drop it
                raise ConfigError(
                    f"data.noise_mix.folder={noise_cfg.folder} is not used: data.noise_mix.sources "
                    f"is set and no entry has that root; add {{kind: folder, root: "
                    f"{noise_cfg.folder}}} to the sources, or drop the folder override"
                )
            sources = build_sources(noise_cfg.sources, sample_rate, train_metas=train_metas, split=split)
        return cls(
            kinds=list(noise_cfg.kinds),
            folder=noise_cfg.folder,
            snr_db_min=noise_cfg.snr_db_min,
            snr_db_max=noise_cfg.snr_db_max,
            sample_rate=sample_rate,
            sources=sources,
            reverb_prob=float(noise_cfg.reverb_prob),
            reverb_rt60=tuple(noise_cfg.reverb_rt60),
        )

    def noise(self, n: int, rng: np.random.Generator, speaker: Optional[str] = None) -> np.ndarray:
        """A noise segment of ``n`` samples (float64, unnormalised)."""
        return self.sources.segment(int(n), rng, speaker=speaker)

    def mix_pair(
        self, clean: np.ndarray, rng: np.random.Generator, speaker: Optional[str] = None
    ) -> Tuple[np.ndarray, np.ndarray, float]:
        """``(target, noisy, snr_db)``: the target is ``clean``, or its early-reverberant version
        when this example was put in a room (see the class doc)."""
        snr = float(rng.uniform(self.snr_db_min, self.snr_db_max))
        noise = self.noise(len(clean), rng, speaker=speaker)
        target, speech = clean, clean
        if self.reverb_prob > 0 and rng.random() < self.reverb_prob:
            from .reverb import random_rir, reverberate

            full, early = reverberate(
                clean.astype(np.float64),
                random_rir(rng, self.sample_rate, self.reverb_rt60),
                self.sample_rate,
            )
            speech, target = full.astype(clean.dtype), early.astype(clean.dtype)
        return target, mix_at_snr(speech, noise, snr), snr

    def mix(
        self, clean: np.ndarray, rng: np.random.Generator, speaker: Optional[str] = None
    ) -> Tuple[np.ndarray, float]:
        """``(noisy, snr_db)``: noise from a random source at a random SNR (no reverberation)."""
        snr = float(rng.uniform(self.snr_db_min, self.snr_db_max))
        noise = self.noise(len(clean), rng, speaker=speaker)
        return mix_at_snr(clean, noise, snr), snr


# ------------------------------------------------------------------------------------------
# Segments
# ------------------------------------------------------------------------------------------
def _level(x: np.ndarray, mode: str) -> float:
    if x.size == 0:
        return 0.0
    if mode == "peak":
        return float(np.max(np.abs(x)))
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


class SegmentDataset(torch.utils.data.Dataset):
    """Fixed-length waveform segments of a list of files (see the module doc for the keys).

    Args:
        metas: the files; entries whose header could not be read (``sample_rate == 0``) or with
            zero duration are left out (counted in ``skipped_unreadable``).
        sample_rate: every file is resampled to this rate on load.
        segment_seconds: crop length; shorter files are zero-padded at the end. ``None`` returns
            whole files (batch them one at a time).
        normalize: ``peak`` (max |x| -> peak_level), ``rms`` (RMS -> rms_db dBFS) or ``none``.
            The gain is computed on the segment — from the *noisy* signal when there is one and
            applied to both clean and noisy, as SGMSE does, so the pair stays consistent — but a
            near-silent crop of a louder file is boosted at most ``max_boost_db`` above the gain
            the whole file would get (so silence does not become loud noise).
        noise_mixer: adds noise to make ``noisy`` for clean-only corpora (ignored for pairs).
        train: True: files that are silent (peak < 1e-4) or cannot be decoded (NaN or inf
            samples, a truncated body: :class:`~scoreaudio.errors.AudioError`) are skipped, moving
            to the next index deterministically (so a resumed run skips the same way), counted in
            ``skipped_silent`` / ``skipped_bad`` (per process: each DataLoader worker has its own
            count); the bad ones are listed in the item under ``"skipped"`` ({path: reason}) for
            the trainer to report. False (evaluation): item i is always file i, returned without
            normalisation when silent, and a bad file raises.
    """

    def __init__(
        self,
        metas: Sequence[AudioMeta],
        sample_rate: int,
        segment_seconds: Optional[float],
        *,
        normalize: str = "peak",
        peak_level: float = 0.9,
        rms_db: float = -25.0,
        noise_mixer: Optional[NoiseMixer] = None,
        train: bool = True,
        max_boost_db: float = 20.0,
    ):
        if normalize not in ("peak", "rms", "none"):
            raise DataError(f"data.normalize={normalize!r} is not one of: peak, rms, none")
        usable = [m for m in metas if m.sample_rate > 0 and m.duration > 0]
        self.skipped_unreadable = len(metas) - len(usable)
        if self.skipped_unreadable:
            log.warning(
                "skipping %d file(s) that could not be read or are empty (first: %s)",
                self.skipped_unreadable,
                next(m.path for m in metas if not (m.sample_rate > 0 and m.duration > 0)),
            )
        self.metas: List[AudioMeta] = usable
        self.sample_rate = int(sample_rate)
        self.segment = None if segment_seconds is None else max(1, int(round(segment_seconds * sample_rate)))
        self.normalize = normalize
        self.peak_level = float(peak_level)
        self.rms_db = float(rms_db)
        self.paired = any(m.noisy_path for m in usable)
        self.noise_mixer = None if self.paired else noise_mixer
        self.train = bool(train)
        self.max_boost = 10.0 ** (float(max_boost_db) / 20.0)
        self.skipped_silent = 0
        self.skipped_bad = 0

    def __len__(self) -> int:
        return len(self.metas)

    def _load(self, i: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        m = self.metas[i]
        clean = load(m.path, self.sample_rate)[0][0].numpy()
        if not m.noisy_path:
            return clean, None
        noisy = load(m.noisy_path, self.sample_rate)[0][0].numpy()
        n = min(len(clean), len(noisy))  # resampled partners may differ by a sample
        return clean[:n], noisy[:n]

    def _crop(self, x: np.ndarray, start: int) -> np.ndarray:
        if self.segment is None:
            return x
        seg = x[start : start + self.segment]
        if len(seg) < self.segment:
            seg = np.pad(seg, (0, self.segment - len(seg)))
        return seg

    def _gain(self, seg: np.ndarray, whole: np.ndarray) -> float:
        if self.normalize == "none":
            return 1.0
        target = self.peak_level if self.normalize == "peak" else 10.0 ** (self.rms_db / 20.0)
        file_level = _level(whole, self.normalize)
        if file_level <= 0.0:
            return 1.0
        cap = target / file_level * self.max_boost
        seg_level = _level(seg, self.normalize)
        return cap if seg_level <= 0.0 else min(target / seg_level, cap)

    def __getitem__(self, key) -> Dict[str, torch.Tensor]:
        if isinstance(key, tuple):
            index, draw_seed = int(key[0]), key[1]
            rng = np.random.default_rng(draw_seed)
            random_crop = True
        else:
            index = int(key)
            rng = np.random.default_rng([index & 0xFFFFFFFF, 0x5E6])
            random_crop = False
        n = len(self.metas)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} files")
        skipped: Dict[str, str] = {}
        for attempt in range(n):
            i = (index + attempt) % n
            try:
                clean, noisy = self._load(i)
            except AudioError as e:
                if not self.train:
                    raise
                # a file that passed the header scan but cannot be decoded (NaN samples, a cut-off
                # body): skip it like a silent one; the trainer names and counts it
                skipped[self.metas[i].path] = str(e)
                self.skipped_bad += 1
                continue
            silent = _level(clean, "peak") < SILENT_INPUT_PEAK
            if silent and self.train:
                self.skipped_silent += 1
                continue
            T = len(clean)
            if self.segment is None or T <= self.segment:
                start = 0
            else:
                start = int(rng.integers(0, T - self.segment + 1)) if random_crop else (T - self.segment) // 2
            c = self._crop(clean, start)
            y = None if noisy is None else self._crop(noisy, start)
            if self.noise_mixer is not None:
                # babble leaves out the target's speaker (its own file when the corpus has no labels)
                c, y, _ = self.noise_mixer.mix_pair(
                    c, rng, speaker=self.metas[i].speaker or self.metas[i].path
                )
            ref_seg, ref_whole = (y, noisy if noisy is not None else clean) if y is not None else (c, clean)
            g = 1.0 if silent else self._gain(ref_seg, ref_whole)
            out = {"clean": torch.from_numpy(np.ascontiguousarray(c * g, dtype=np.float32))[None]}
            if y is not None:
                out["noisy"] = torch.from_numpy(np.ascontiguousarray(y * g, dtype=np.float32))[None]
            if skipped:
                out[SKIPPED] = skipped
            return out
        if skipped:
            raise DataError(
                f"none of the {n} files of this split can be used ({len(skipped)} cannot be read, "
                f"the rest are silent); run `scoreaudio data check`"
            )
        raise DataError(
            f"all {n} files of this split are silent (peak below {SILENT_INPUT_PEAK}); "
            f"run `scoreaudio data check`"
        )


def build_datasets(cfg, cache_dir: Optional[Path] = None) -> Dict[str, SegmentDataset]:
    """Train / valid / test :class:`SegmentDataset` of ``cfg.data`` (via build_manifest).

    Train draws random crops (keys ``(i, seed)``); valid/test are evaluation datasets (``train=False``)
    cut to the same segment length. A clean-only corpus gets a :class:`NoiseMixer` when
    ``data.noise_mix.enabled``; paired corpora keep their own noisy files.

    Raises:
        DataError: no usable training files (before any compute), or a manifest/root error.
    """
    from .corpora import build_manifest

    d = cfg.data
    manifest = build_manifest(cfg, cache_dir)
    paired = any(m.noisy_path for m in manifest["train"])
    mixer = None
    if d.noise_mix.enabled:
        if paired:
            log.warning("%s has its own noisy files; data.noise_mix is ignored", d.dataset)
        else:
            mixer = NoiseMixer.from_config(d.noise_mix, int(d.sample_rate), train_metas=manifest["train"])
    out = {
        split: SegmentDataset(
            metas,
            int(d.sample_rate),
            float(d.segment_seconds),
            normalize=str(d.normalize),
            peak_level=float(d.peak_level),
            rms_db=float(d.rms_db),
            noise_mixer=mixer,
            train=(split == "train"),
        )
        for split, metas in manifest.items()
    }
    if len(out["train"]) == 0:
        listed = len(manifest["train"])
        why = (
            f"no usable training files ({listed} listed, all unreadable or empty)"
            if listed
            else "the train split is empty; check data.root and the split settings"
        )
        raise DataError(f"{d.dataset}: {why}; run `scoreaudio data check` for details")
    if len(out["valid"]) == 0:
        log.warning("%s: the valid split is empty; validation will have nothing to score", d.dataset)
    return out


def build_training_sets(cfg, d, *, cache_dir: Optional[Path] = None):
    """``(train, valid)`` for a training run on every rank of ``d`` (a
    :class:`~scoreaudio.utils.distributed.Dist`); ``valid`` is None when the split is missing or
    empty. Rank 0 scans (and, for the synthetic corpus, writes) first; the others then read its
    result. DataError / ConfigError (one line) when the train split cannot train this config."""
    import torch.distributed as dist

    from ..config import is_conditional

    if d.main:
        datasets = build_datasets(cfg, cache_dir=cache_dir)
    if d.world > 1:
        dist.barrier()
    if not d.main:
        datasets = build_datasets(cfg, cache_dir=cache_dir)
    train_set, valid_set = datasets["train"], datasets.get("valid")
    if valid_set is not None and len(valid_set) == 0:
        valid_set = None  # build_datasets has warned; nothing to validate on
    if len(train_set) == 0:
        raise DataError(f"{cfg.data.dataset}: the train split has no usable files")
    if is_conditional(cfg) and "noisy" not in train_set[0]:
        raise ConfigError(
            "a conditional model (model.conditional=true or loss=cdsm) needs clean/noisy pairs: "
            "a paired corpus (voicebank_demand) or data.noise_mix.enabled=true"
        )
    return train_set, valid_set
