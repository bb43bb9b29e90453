"""Noise for training and testing denoisers: the noise corpora users have, in their real layouts.

A *noise source* yields noise segments ``source.segment(n, rng, speaker=None) -> (n,) float64``
(unnormalised: :func:`scoreaudio.data.datasets.mix_at_snr` sets the level). Sources:

* generated colours: ``white``, ``pink``, ``brown`` (Gaussian, exact spectra);
* ``babble``: the sum of 3-7 utterances of the training corpus by distinct other speakers, each at
  equal RMS (the speech-shaped, non-stationary noise classical denoisers fail on);
* recordings, one reader per on-disk layout (:data:`LAYOUTS`):

  ``folder``  any folder of audio files (recursive);
  ``musan``   MUSAN (Snyder et al. 2015): ``ROOT/noise/{free-sound,sound-bible}/*.wav``,
              ``ROOT/music/<collection>/*.wav``, ``ROOT/speech/...``; ``subsets`` picks among
              noise / music / speech (default noise and music);
  ``demand``  DEMAND (Thiemann et al. 2013): ``ROOT/<ENV>/ch01.wav ... ch16.wav``, ENV like
              DKITCHEN or DKITCHEN_16k; the 16 microphones of an environment hear the same scene,
              so one channel (``channel``, default 1) is used per environment;
  ``wham``    WHAM! noise (Wichern et al. 2019): ``ROOT/{tr,cv,tt}/*.wav`` (binaural: the
              channels are averaged); its own split: train -> tr, valid -> cv, test -> tt;
  ``dns``     the DNS Challenge noise set: ``ROOT/*.wav``, or a challenge checkout holding
              ``datasets/noise/`` (DNS 1-3) or ``datasets_fullband/noise_fullband/`` (DNS 4-5).

Recordings at any rate or channel count are read as mono at the training rate (channels averaged,
then resampled). Corpora without an official split are split **by file hash** into train and test
(:func:`noise_split`), so a benchmark's test noise is never trained on; numbered pieces cut from
one recording (``track-003.wav``) hash together, so no recording straddles the split (except in
MUSAN, whose numbered files, ``noise-free-sound-0000.wav``, are distinct recordings).

Everything random comes from the ``rng`` the caller passes: with the trainer's (seed, step) rngs,
a resumed run draws the same noise.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..audio.io import find_audio_files
from ..errors import DataError

log = logging.getLogger(__name__)

#: Recording layouts -> what ``root`` must look like (used in error messages).
LAYOUTS = {
    "folder": "any folder of audio files",
    "musan": "ROOT/{noise,music,speech}/<collection>/*.wav",
    "demand": "ROOT/<ENV>/ch01.wav ... (e.g. DKITCHEN/ch01.wav)",
    "wham": "ROOT/{tr,cv,tt}/*.wav",
    "dns": "ROOT/*.wav, ROOT/datasets/noise/ or ROOT/datasets_fullband/noise_fullband/",
}
#: Generated kinds (no files).
GENERATED = ("white", "pink", "brown")
#: Every ``kind`` a noise source can have.
KINDS = (*GENERATED, "babble", *LAYOUTS)
#: Splits a recording source can be asked for.
SPLITS = ("train", "valid", "test", "all")
#: Share of a hash-split corpus that is test noise (the rest trains; valid uses test).
DEFAULT_TEST_SHARE = 0.3
_PIECE = re.compile(r"[-_]\d+$")  # "track-003" -> "track": pieces of one recording hash together


# ------------------------------------------------------------------------------------------
# Splits and layouts
# ------------------------------------------------------------------------------------------
def noise_group(rel_path: str, pieces: bool = True) -> str:
    """The key a file is split by: its relative path without extension and (``pieces``) without a
    trailing piece number."""
    stem = rel_path.rsplit(".", 1)[0]
    return _PIECE.sub("", stem) if pieces else stem


def noise_split(rel_path: str, test_share: float = DEFAULT_TEST_SHARE, pieces: bool = True) -> str:
    """``"test"`` or ``"train"`` for a noise file, from sha1 of :func:`noise_group` (stable)."""
    digest = hashlib.sha1(noise_group(rel_path, pieces).encode("utf-8")).digest()[:8]
    return "test" if int.from_bytes(digest, "big") / 2.0**64 < test_share else "train"


def _hash_split(
    files: List[Path], root: Path, split: str, test_share: float, pieces: bool = True
) -> List[Path]:
    if split == "all":
        return files
    want = "test" if split in ("test", "valid") else "train"
    return [f for f in files if noise_split(f.relative_to(root).as_posix(), test_share, pieces) == want]


def _files_folder(root: Path, split: str, test_share: float, **_) -> List[Path]:
    return _hash_split(find_audio_files(root), root, split, test_share)


def _files_musan(
    root: Path, split: str, test_share: float, subsets: Sequence[str] = ("noise", "music"), **_
) -> List[Path]:
    bad = [s for s in subsets if s not in ("noise", "music", "speech")]
    if bad:
        raise DataError(f"musan: unknown subset(s) {bad}; valid: noise, music, speech")
    present = [s for s in subsets if (root / s).is_dir()]
    if not present:
        raise DataError(f"musan: none of {list(subsets)} found under '{root}'; expected {LAYOUTS['musan']}")
    files = [f for s in present for f in find_audio_files(root / s)]
    # MUSAN numbers distinct recordings (noise-free-sound-0000 ...): split by file, not by "piece"
    return _hash_split(files, root, split, test_share, pieces=False)


def _files_demand(root: Path, split: str, test_share: float, channel: int = 1, **_) -> List[Path]:
    name = f"ch{int(channel):02d}.wav"
    envs: Dict[str, Path] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        f = d / name
        if not f.is_file():
            continue
        env = re.sub(r"_(16|48)k$", "", d.name)
        # both rates present: keep the 16 kHz folder (no resampling)
        if env not in envs or d.name.endswith("_16k"):
            envs[env] = f
    if not envs:
        raise DataError(f"demand: no '<ENV>/{name}' under '{root}'; expected {LAYOUTS['demand']}")
    files = sorted(envs.values())
    if split == "all":
        return files
    want = "test" if split in ("test", "valid") else "train"
    # split by environment (the recording), not by file
    return [f for f in files if noise_split(re.sub(r"_(16|48)k$", "", f.parent.name), test_share) == want]


def _files_wham(root: Path, split: str, **_) -> List[Path]:
    folders = {"train": ["tr"], "valid": ["cv"], "test": ["tt"], "all": ["tr", "cv", "tt"]}[split]
    present = [root / s for s in folders if (root / s).is_dir()]
    if not present:
        raise DataError(f"wham: no {'/'.join(folders)} folder under '{root}'; expected {LAYOUTS['wham']}")
    return [f for d in present for f in find_audio_files(d)]


def _files_dns(root: Path, split: str, test_share: float, **_) -> List[Path]:
    for sub in ("datasets_fullband/noise_fullband", "datasets/noise"):
        if (root / sub).is_dir():
            root = root / sub
            break
    return _hash_split(find_audio_files(root), root, split, test_share)


_READERS: Dict[str, Callable[..., List[Path]]] = {
    "folder": _files_folder,
    "musan": _files_musan,
    "demand": _files_demand,
    "wham": _files_wham,
    "dns": _files_dns,
}


def noise_files(
    kind: str, root, *, split: str = "train", test_share: float = DEFAULT_TEST_SHARE, **options
) -> List[Path]:
    """The audio files of a noise corpus laid out as ``kind`` (see :data:`LAYOUTS`), for ``split``.

    Raises:
        DataError: unknown layout or split, a missing root, or no audio files there.
    """
    if kind not in _READERS:
        raise DataError(f"unknown noise layout {kind!r}; valid: {', '.join(_READERS)}")
    if split not in SPLITS:
        raise DataError(f"unknown noise split {split!r}; valid: {', '.join(SPLITS)}")
    if not 0.0 <= float(test_share) <= 1.0:
        raise DataError(f"noise test_share must be a fraction in [0, 1], got {test_share}")
    if root is None or str(root) == "":
        raise DataError(
            f"noise source '{kind}' needs a root folder ({LAYOUTS[kind]}): set its root "
            f"(recipes/denoiser.yaml: data.noise_mix.folder=DIR)"
        )
    root = Path(str(root)).expanduser()
    if not root.is_dir():
        raise DataError(f"noise folder not found: '{root}' (source '{kind}'); fix its root")
    files = _READERS[kind](root, split=split, test_share=float(test_share), **options)
    if not files and split != "all":
        n = len(_READERS[kind](root, split="all", test_share=float(test_share), **options))
        if n:  # a small corpus whose few recordings all fall in the other part of the split
            raise DataError(
                f"the {kind} noise at '{root}' has {n} file(s), none in split '{split}'; "
                f"add recordings or set the source's split to all"
            )
    if not files:
        raise DataError(
            f"no audio files for split '{split}' of the {kind} noise at '{root}'; expected {LAYOUTS[kind]}"
        )
    return files


# ------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------
def _loop_crop(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of ``x`` from a random offset, looping when ``x`` is shorter."""
    if len(x) >= n:
        start = int(rng.integers(0, len(x) - n + 1))
        return x[start : start + n]
    start = int(rng.integers(0, len(x)))
    reps = -(-(start + n) // len(x))
    return np.tile(x, reps)[start : start + n]


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt(np.mean(x * x)) + 1e-12)


class _FileCache:
    """Mono float64 waveforms at ``sample_rate``, loaded on first use, at most ``size`` kept."""

    def __init__(self, sample_rate: int, size: int = 64):
        self.sample_rate, self.size = int(sample_rate), int(size)
        self._items: Dict[str, np.ndarray] = {}

    def get(self, path) -> np.ndarray:
        key = str(path)
        x = self._items.get(key)
        if x is None:
            from ..audio.io import load

            x = load(path, self.sample_rate)[0].numpy().astype(np.float64).mean(axis=0)  # channels averaged
            if len(self._items) >= self.size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = x
        return x


class GeneratedNoise:
    """White, pink or brown Gaussian noise (unit RMS)."""

    def __init__(self, kind: str):
        from .datasets import NOISE_KINDS

        self.kind, self._fn = kind, NOISE_KINDS[kind]

    def segment(self, n: int, rng: np.random.Generator, speaker: Optional[str] = None) -> np.ndarray:
        return self._fn(n, rng)

    def __repr__(self) -> str:
        return f"GeneratedNoise({self.kind!r})"


class RecordedNoise:
    """Segments of noise recordings (a random file, a random offset; short files loop)."""

    def __init__(self, kind: str, files: Sequence[Path], sample_rate: int):
        self.kind, self.files = kind, list(files)
        self._cache = _FileCache(sample_rate)

    def segment(self, n: int, rng: np.random.Generator, speaker: Optional[str] = None) -> np.ndarray:
        # a few tries: a file that is silent at this offset would make mixing impossible
        for _ in range(8):
            path = self.files[int(rng.integers(len(self.files)))]
            x = self._cache.get(path)
            if x.size and np.max(np.abs(x)) >= 1e-8:
                seg = _loop_crop(x, n, rng)
                if np.any(seg != 0.0):
                    return seg
        raise DataError(
            f"{self.kind} noise: drew 8 silent files or crops in a row (last '{path}'); "
            f"remove silent files from the noise folder"
        )

    def __repr__(self) -> str:
        return f"RecordedNoise({self.kind!r}, {len(self.files)} files)"


class BabbleNoise:
    """The sum of ``talkers`` (drawn in [min, max]) utterances by distinct speakers other than
    ``speaker`` (fewer when the corpus has fewer other speakers).

    Each utterance is cropped (or looped) to the segment and scaled to unit RMS before summing, so
    no talker dominates. Speaker labels come from the corpus; files without one count as their
    own speaker.
    """

    def __init__(self, metas: Sequence, sample_rate: int, talkers: Sequence[int] = (3, 7)):
        lo, hi = int(talkers[0]), int(talkers[1])
        if not 1 <= lo <= hi:
            raise DataError(f"babble talkers must be 1 <= min <= max, got {list(talkers)}")
        self.talkers = (lo, hi)
        self.paths = [m.path for m in metas if m.duration > 0]
        self.speakers = [m.speaker or m.path for m in metas if m.duration > 0]
        if len(set(self.speakers)) < 2:
            raise DataError("babble noise needs utterances by at least 2 speakers in the training split")
        self._cache = _FileCache(sample_rate)

    def segment(self, n: int, rng: np.random.Generator, speaker: Optional[str] = None) -> np.ndarray:
        k = int(rng.integers(self.talkers[0], self.talkers[1] + 1))
        out = np.zeros(n)
        used: set = set()  # speakers already talking: k distinct voices, not one voice twice
        for _ in range(8 * k):  # rejection: skip the target speaker, used speakers and silent crops
            i = int(rng.integers(len(self.paths)))
            if self.speakers[i] in used or (speaker is not None and self.speakers[i] == speaker):
                continue
            seg = _loop_crop(self._cache.get(self.paths[i]), n, rng)
            if np.max(np.abs(seg)) < 1e-6:
                continue
            out += _unit_rms(seg - seg.mean())
            used.add(self.speakers[i])
            if len(used) == k:
                break
        if not used:
            raise DataError("babble noise: no usable utterance by another speaker was found")
        return out

    def __repr__(self) -> str:
        return f"BabbleNoise({len(self.paths)} utterances, talkers {self.talkers[0]}-{self.talkers[1]})"


@dataclass
class WeightedSources:
    """Noise sources with draw probabilities: ``segment`` picks one, then draws from it."""

    sources: List[object]
    weights: np.ndarray  # (S,) probabilities, sum 1

    def segment(self, n: int, rng: np.random.Generator, speaker: Optional[str] = None) -> np.ndarray:
        i = int(rng.choice(len(self.sources), p=self.weights)) if len(self.sources) > 1 else 0
        return self.sources[i].segment(n, rng, speaker=speaker)


def build_source(spec, sample_rate: int, *, train_metas: Sequence = (), split: Optional[str] = None):
    """One noise source from a config entry (``data.noise_mix.sources[i]``: kind, root, ...).

    ``split`` overrides the entry's own split (the benchmark asks for test noise).
    """
    kind = str(spec.kind)
    if kind not in KINDS:
        raise DataError(f"unknown noise source kind {kind!r}; valid: {', '.join(KINDS)}")
    if kind in GENERATED:
        return GeneratedNoise(kind)
    if kind == "babble":
        return BabbleNoise(train_metas, sample_rate, talkers=tuple(spec.talkers))
    options = {"subsets": tuple(spec.subsets)} if kind == "musan" else {}
    if kind == "demand":
        options = {"channel": int(spec.channel)}
    files = noise_files(
        kind, spec.root, split=split or str(spec.split), test_share=float(spec.test_share), **options
    )
    return RecordedNoise(kind, files, sample_rate)


def build_sources(
    specs: Sequence, sample_rate: int, *, train_metas: Sequence = (), split: Optional[str] = None
) -> WeightedSources:
    """All sources of ``data.noise_mix.sources`` with their normalised weights.

    Raises:
        DataError: no sources, a negative weight, weights summing to 0, or any source's error.
    """
    if not specs:
        raise DataError("noise mixing has no source: list data.noise_mix.sources (or kinds / folder)")
    weights = np.array([float(s.weight) for s in specs], dtype=np.float64)
    if (weights < 0).any() or not np.isfinite(weights).all() or weights.sum() <= 0:
        raise DataError(f"noise source weights must be >= 0 with a positive sum, got {weights.tolist()}")
    kept = [(s, w) for s, w in zip(specs, weights) if w > 0]
    sources = [build_source(s, sample_rate, train_metas=train_metas, split=split) for s, _ in kept]
    w = np.array([w for _, w in kept])
    for src in sources:
        log.info("noise source %r, weight %.3g", src, w[sources.index(src)] / w.sum())
    return WeightedSources(sources, w / w.sum())
