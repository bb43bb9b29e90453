"""The built-in speech-like corpus: a source-filter voice made in code, deterministic by seed.

Not speech, but it has the structure a speech model must learn, so tests and the quickstart need no
download. One utterance is a sequence of words of one to three syllables separated by short gaps and
phrase pauses; a syllable is an optional onset consonant, a vowel and an optional coda.

* **Source** — a Rosenberg (1971) glottal flow pulse per period (rising ``0.5 (1 - cos)`` open
  phase, ``cos`` closing phase, closed phase), differentiated (glottal flow derivative, i.e. with
  lip radiation), so the source falls at about -6 dB/octave. Per-cycle jitter (period) and shimmer
  (amplitude), pitch-synchronous breath noise.
* **Pitch** — declination over the utterance, Gaussian pitch accents on stressed syllables, slow
  drift; each speaker has a mean f0 between ~95 and ~240 Hz, the contour stays in 82-295 Hz.
* **Filter** — a Klatt (1980) style cascade of 2nd-order resonators (F1-F4 plus a fixed F5, each
  with unity gain at DC) whose frequencies are interpolated between vowel and consonant targets
  (coarticulation) and updated every ~5 ms: the cascade runs as one 10th-order
  ``scipy.signal.lfilter`` per block with the filter state carried over. Vowel targets follow
  Peterson & Barney (1952) adult-male averages, scaled per speaker (vocal tract length).
* **Consonants** — voiceless/voiced plosives (closure, a short band-limited burst, aspiration
  through the cascade), fricatives s/sh/f (voiceless) and z/v (voiced: noise plus voicing) as
  band-pass noise, nasals and approximants as voiced segments with their own formant targets.
* **Envelopes** — smooth onsets/offsets (triangular smoothing of the segment levels), stressed
  syllables longer and louder, a noise floor at about -80 dB re the peak.

Public: :func:`speaker_params`, :func:`synthesize_utterance`, and :func:`materialize_corpus` which
writes the corpus of a ``SyntheticConfig`` as WAV files (once; atomically).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

#: Bump when the generator changes: it is part of the materialised corpus' folder name.
SYNTH_VERSION = 1

# F1-F4 targets in Hz (adult male; Peterson & Barney 1952 averages, F4 nominal).
VOWELS: Dict[str, Tuple[float, float, float, float]] = {
    "i": (270, 2290, 3010, 3700),
    "I": (390, 1990, 2550, 3600),
    "E": (530, 1840, 2480, 3600),
    "ae": (660, 1720, 2410, 3600),
    "a": (730, 1090, 2440, 3500),
    "O": (570, 840, 2410, 3400),
    "U": (440, 1020, 2240, 3400),
    "u": (300, 870, 2240, 3400),
    "A": (640, 1190, 2390, 3500),
    "3": (490, 1350, 1690, 3300),
}
VOWEL_BANDWIDTHS = (70.0, 100.0, 160.0, 250.0, 300.0)  # B1-B5, Hz
F5 = 4500.0  # fixed fifth formant (Klatt 1980), Hz

# Consonants: kind, formant targets (voiced ones), noise band (Hz), levels.
#   kind: stop (closure + burst [+ aspiration]), fric (band noise), nasal/approx (voiced).
CONSONANTS: Dict[str, dict] = {
    "p": dict(kind="stop", voiced=False, band=(400, 2000), burst=0.10),
    "t": dict(kind="stop", voiced=False, band=(2500, 7000), burst=0.14),
    "k": dict(kind="stop", voiced=False, band=(1200, 3500), burst=0.14),
    "b": dict(kind="stop", voiced=True, band=(300, 1800), burst=0.05),
    "d": dict(kind="stop", voiced=True, band=(2200, 6000), burst=0.06),
    "g": dict(kind="stop", voiced=True, band=(1100, 3200), burst=0.06),
    "s": dict(kind="fric", voiced=False, band=(4000, 7600), level=0.16),
    "S": dict(kind="fric", voiced=False, band=(2000, 5500), level=0.16),
    "f": dict(kind="fric", voiced=False, band=(1200, 7600), level=0.05),
    "z": dict(kind="fric", voiced=True, band=(4000, 7600), level=0.09),
    "v": dict(kind="fric", voiced=True, band=(1200, 7600), level=0.04),
    "m": dict(kind="nasal", formants=(280, 1000, 2200, 3300), amp=0.25),
    "n": dict(kind="nasal", formants=(280, 1600, 2500, 3300), amp=0.25),
    "l": dict(kind="approx", formants=(360, 1300, 2700, 3500), amp=0.55),
    "r": dict(kind="approx", formants=(310, 1060, 1380, 3200), amp=0.55),
    "w": dict(kind="approx", formants=(300, 610, 2200, 3300), amp=0.5),
    "j": dict(kind="approx", formants=(260, 2070, 3020, 3600), amp=0.5),
}
ONSETS = list("ptkbdgsSfzvmnlrwj")
CODAS = list("tksnmlp")

F0_LIMITS = (82.0, 295.0)
PEAK = 0.9


@dataclass(frozen=True)
class SpeakerParams:
    """One synthetic voice."""

    f0: float  # mean fundamental frequency, Hz
    declination: float  # pitch fall over an utterance, semitones
    formant_scale: float  # vocal-tract-length factor applied to all formants (1 = adult male)
    rate: float  # syllables per second
    jitter: float  # per-cycle relative period perturbation (std)
    shimmer: float  # per-cycle relative amplitude perturbation (std)
    open_phase: float  # Rosenberg opening phase, fraction of the period
    closing_phase: float  # Rosenberg closing phase, fraction of the period
    breathiness: float  # pitch-synchronous breath noise, relative to the voiced source


def speaker_params(speaker: int, seed: int = 0) -> SpeakerParams:
    """The voice of ``speaker`` (deterministic in ``speaker`` and ``seed``).

    Speakers spread over the pitch range by a golden-ratio sequence, so any few consecutive
    speakers differ: speaker ``k`` gets ``u = frac(u0 + 0.618 k)`` and mean f0 ``95 * (240/95)**u``
    Hz; higher voices get shorter vocal tracts (formant scale ~0.92-1.22) and more breathiness.
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(speaker) & 0xFFFFFFFF, 1])
    u0 = np.random.default_rng([int(seed) & 0xFFFFFFFF, 2]).random()
    u = (u0 + 0.6180339887498949 * int(speaker)) % 1.0
    return SpeakerParams(
        f0=float(95.0 * (240.0 / 95.0) ** u),
        declination=float(rng.uniform(2.0, 4.0)),
        formant_scale=float(np.clip(0.92 + 0.28 * u + rng.normal(0.0, 0.02), 0.88, 1.25)),
        rate=float(rng.uniform(3.6, 5.4)),
        jitter=float(rng.uniform(0.004, 0.012)),
        shimmer=float(rng.uniform(0.02, 0.06)),
        open_phase=float(rng.uniform(0.36, 0.46)),
        closing_phase=float(rng.uniform(0.12, 0.18)),
        breathiness=float(0.03 + 0.08 * u + rng.uniform(0.0, 0.03)),
    )


# ------------------------------------------------------------------------------------------
# Utterance plan: phones on a time line
# ------------------------------------------------------------------------------------------
@dataclass
class _Phone:
    sym: str
    start: float  # seconds
    dur: float
    stress: bool = False


def _plan(
    rng: np.random.Generator, spk: SpeakerParams, seconds: float
) -> Tuple[List[_Phone], List[Tuple[float, float]]]:
    """Phones placed on the time line, and the pitch accents (time, semitones)."""
    scale = 4.5 / spk.rate  # duration scale: slower speakers have longer phones
    lead, trail = rng.uniform(0.08, 0.2), rng.uniform(0.08, 0.2)
    end = seconds - trail
    t = lead
    phones: List[_Phone] = []
    accents: List[Tuple[float, float]] = []
    vowels = list(VOWELS)
    while True:
        n_syl = int(rng.choice([1, 2, 2, 3]))
        stressed = int(rng.integers(n_syl))
        word: List[_Phone] = []
        for s in range(n_syl):
            st = s == stressed
            if rng.random() < 0.75:
                c = str(rng.choice(ONSETS))
                info = CONSONANTS[c]
                d = {"stop": 0.09, "fric": 0.11, "nasal": 0.06, "approx": 0.055}[info["kind"]]
                word.append(_Phone(c, 0.0, d * scale * rng.uniform(0.8, 1.2)))
            v = str(rng.choice(vowels))
            word.append(_Phone(v, 0.0, rng.uniform(0.07, 0.15) * scale * (1.4 if st else 1.0), stress=st))
            if rng.random() < 0.35:
                c = str(rng.choice(CODAS))
                info = CONSONANTS[c]
                d = {"stop": 0.08, "fric": 0.10, "nasal": 0.06, "approx": 0.05}[info["kind"]]
                word.append(_Phone(c, 0.0, d * scale * rng.uniform(0.8, 1.2)))
        wdur = sum(p.dur for p in word)
        if t + wdur > end:
            if phones:
                break
            shrink = max(end - t, 0.05) / wdur  # a very short utterance: one squeezed word
            for p in word:
                p.dur *= shrink
        for p in word:
            p.start = t
            t += p.dur
            if p.stress and rng.random() < 0.7:
                accents.append((p.start + 0.5 * p.dur, rng.uniform(1.5, 4.0)))
        phones.extend(word)
        if t >= end:
            break
        t += rng.uniform(0.15, 0.35) if rng.random() < 0.35 else rng.uniform(0.02, 0.07)  # pause / gap
    return phones, accents


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Triangular smoothing over ~``width`` samples (two centred moving averages, unit DC gain):
    soft onsets and offsets."""
    h = max(1, width // 2)
    if h < 2:
        return x
    n = len(x)
    for _ in range(2):
        c = np.concatenate([[0.0], np.cumsum(np.concatenate([np.zeros(h), x, np.zeros(h)]))])
        x = (c[2 * h : 2 * h + n] - c[:n]) / (2 * h)
    return x


def _polymul_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise polynomial product of coefficient arrays (N, a) x (N, b) -> (N, a + b - 1)."""
    out = np.zeros((p.shape[0], p.shape[1] + q.shape[1] - 1))
    for j in range(q.shape[1]):
        out[:, j : j + p.shape[1]] += p * q[:, j : j + 1]
    return out


@functools.lru_cache(maxsize=64)
def _band_sos(lo: float, hi: float, sr: int):
    from scipy.signal import butter

    nyq = 0.5 * sr
    hi = min(hi, 0.92 * nyq)
    lo = min(lo, 0.7 * hi)
    return butter(2, [lo, hi], btype="bandpass", fs=sr, output="sos")


def synthesize_utterance(
    speaker: int, index: int, seconds: float, sample_rate: int = 16000, seed: int = 0
) -> np.ndarray:
    """One speech-like utterance, float32 (T,), ``T = round(seconds * sample_rate)``, peak <= 0.9.

    Deterministic in ``(speaker, index, seconds, sample_rate, seed)``.
    """
    from scipy.signal import lfilter, sosfilt

    sr = int(sample_rate)
    T = max(1, int(round(float(seconds) * sr)))
    spk = speaker_params(speaker, seed)
    rng = np.random.default_rng(
        [int(seed) & 0xFFFFFFFF, int(speaker) & 0xFFFFFFFF, int(index) & 0xFFFFFFFFFFFF, 7]
    )
    phones, accents = _plan(rng, spk, T / sr)
    tt = np.arange(T) / sr

    # Segment levels on the sample grid.
    voice = np.zeros(T)  # voicing amplitude
    asp = np.zeros(T)  # aspiration noise into the cascade
    fric_env: Dict[Tuple[float, float], np.ndarray] = {}
    burst_bands: Dict[Tuple[float, float], np.ndarray] = {}
    anchor_t: List[float] = []
    anchor_f: List[Tuple[float, ...]] = []
    n_phones = len(phones)
    for i, p in enumerate(phones):
        s0, s1 = int(p.start * sr), min(T, int((p.start + p.dur) * sr))
        if s1 <= s0:
            continue
        decl = 1.0 - 0.25 * p.start / (T / sr)  # loudness falls a little over the utterance
        if p.sym in VOWELS:
            voice[s0:s1] = (1.0 if p.stress else 0.72) * decl
            f = VOWELS[p.sym]
            anchor_t += [p.start + 0.3 * p.dur, p.start + 0.7 * p.dur]
            anchor_f += [f, f]
            continue
        info = CONSONANTS[p.sym]
        kind = info["kind"]
        if kind in ("nasal", "approx"):
            voice[s0:s1] = info["amp"] * decl
            anchor_t.append(p.start + 0.5 * p.dur)
            anchor_f.append(info["formants"])
        elif kind == "fric":
            env = fric_env.setdefault(info["band"], np.zeros(T))
            env[s0:s1] = info["level"] * decl
            if info["voiced"]:
                voice[s0:s1] = 0.35 * decl
        else:  # stop: closure, burst, then aspiration (voiceless) into the next phone
            closure = int(0.65 * (s1 - s0))
            if info["voiced"]:
                voice[s0 : s0 + closure] = 0.06 * decl  # voice bar
                anchor_t.append(p.start + 0.3 * p.dur)
                anchor_f.append((200, 900, 2300, 3300))
            b0 = s0 + closure
            blen = max(1, int(0.012 * sr))
            b1 = min(T, b0 + blen)
            benv = burst_bands.setdefault(info["band"], np.zeros(T))
            tb = np.arange(b1 - b0) / sr
            benv[b0:b1] = info["burst"] * decl * (1.0 - np.exp(-tb / 0.0008)) * np.exp(-tb / 0.004)
            if not info["voiced"]:
                nxt = phones[i + 1] if i + 1 < n_phones else None
                a1 = min(T, s1 + int(0.035 * sr)) if nxt is not None and nxt.sym in VOWELS else s1
                asp[b1:a1] = 0.3 * decl
    voice = _smooth(voice, int(0.012 * sr))
    asp = _smooth(asp, int(0.008 * sr))

    # Pitch contour (semitones around the speaker's mean f0).
    semis = spk.declination * (0.5 - tt / max(tt[-1], 1e-9))
    for c, h in accents:
        lo, hi = max(0, int((c - 0.25) * sr)), min(T, int((c + 0.25) * sr))
        semis[lo:hi] += h * np.exp(-0.5 * ((tt[lo:hi] - c) / 0.07) ** 2)
    drift = np.interp(tt, np.linspace(0, tt[-1], 8), rng.normal(0.0, 0.4, 8))
    f0 = np.clip(spk.f0 * 2.0 ** ((semis + drift) / 12.0), *F0_LIMITS)

    # Glottal source: Rosenberg pulses on a jittered phase, differentiated (lip radiation).
    phase0 = np.cumsum(f0 / sr)
    cycles = int(phase0[-1]) + 2
    jit = 1.0 + spk.jitter * rng.standard_normal(cycles)
    phase = np.cumsum(f0 * jit[phase0.astype(np.int64)] / sr)
    k = phase.astype(np.int64)
    ph = phase - k
    tp, tn = spk.open_phase, spk.closing_phase
    flow = np.where(
        ph < tp,
        0.5 * (1.0 - np.cos(np.pi * ph / tp)),
        np.where(ph < tp + tn, np.cos(0.5 * np.pi * (ph - tp) / tn), 0.0),
    )
    shim = 1.0 + spk.shimmer * rng.standard_normal(cycles)
    src = np.diff(flow, prepend=0.0) * shim[np.minimum(k, cycles - 1)]
    src /= np.std(src) + 1e-12
    noise = rng.standard_normal(T)
    excitation = voice * (src + spk.breathiness * 4.0 * flow * noise) + asp * rng.standard_normal(T)

    # Formant tracks: targets interpolated between anchors, scaled per speaker.
    if anchor_t:
        at = np.asarray(anchor_t)
        af = np.asarray(anchor_f, dtype=float) * spk.formant_scale  # (A, 4)
    else:
        at, af = np.array([0.0]), np.asarray([VOWELS["A"]], dtype=float) * spk.formant_scale
    block = max(16, int(round(0.005 * sr)))
    n_blocks = -(-T // block)
    centers = (np.arange(n_blocks) * block + block / 2) / sr
    F = np.stack(
        [np.interp(centers, at, af[:, j]) for j in range(4)] + [np.full(n_blocks, F5 * spk.formant_scale)],
        axis=1,
    )  # (n_blocks, 5)
    Bw = np.asarray(VOWEL_BANDWIDTHS) * (0.8 + 0.2 * spk.formant_scale) * np.ones_like(F)
    r = np.exp(-np.pi * Bw / sr)
    theta = 2.0 * np.pi * F / sr
    a1, a2 = -2.0 * r * np.cos(theta), r * r
    above = F >= 0.45 * sr  # resonators above the band (low sample rates): bypassed
    a1[above], a2[above] = 0.0, 0.0
    # The cascade as one 10th-order all-pole filter per block: den = prod_j (1 + a1_j z^-1 + a2_j z^-2),
    # numerator = prod_j (1 + a1_j + a2_j) (each resonator has unity gain at DC, Klatt 1980).
    den = np.ones((n_blocks, 1))
    for j in range(5):
        sec = np.stack([np.ones(n_blocks), a1[:, j], a2[:, j]], axis=1)
        den = _polymul_rows(den, sec)
    gain = np.prod(1.0 + a1 + a2, axis=1)
    y = np.empty(T)
    zi = np.zeros(10)
    for b in range(n_blocks):
        sl = slice(b * block, min(T, (b + 1) * block))
        y[sl], zi = lfilter(gain[b : b + 1], den[b], excitation[sl], zi=zi)
    y /= np.percentile(np.abs(y), 99.9) + 1e-12

    # Fricatives and bursts: band-passed noise with their envelopes.
    for band, env in fric_env.items():
        n = sosfilt(_band_sos(*band, sr), rng.standard_normal(T))
        y += _smooth(env, int(0.01 * sr)) * n / (np.std(n) + 1e-12)
    for band, env in burst_bands.items():
        n = sosfilt(_band_sos(*band, sr), rng.standard_normal(T))
        y += env * n / (np.std(n) + 1e-12)

    y = y / (np.max(np.abs(y)) + 1e-12) * PEAK * rng.uniform(0.6, 1.0)
    y += 1e-4 * rng.standard_normal(T)  # recording noise floor, about -80 dB re the peak
    peak = np.max(np.abs(y))
    if peak > PEAK:
        y *= PEAK / peak
    return y.astype(np.float32)


# ------------------------------------------------------------------------------------------
# The corpus on disk
# ------------------------------------------------------------------------------------------
SPLIT_OFFSETS = {"train": 0, "valid": 1_000_000, "test": 2_000_000}


def corpus_key(syn_cfg, sample_rate: int) -> str:
    """A short hash of everything that determines the corpus' content."""
    settings = {
        "version": SYNTH_VERSION,
        "sample_rate": int(sample_rate),
        "num_speakers": int(syn_cfg.num_speakers),
        "train": int(syn_cfg.train_utterances),
        "valid": int(syn_cfg.valid_utterances),
        "test": int(syn_cfg.test_utterances),
        "seconds": float(syn_cfg.utterance_seconds),
        "seed": int(syn_cfg.seed),
    }
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def default_cache_root() -> Path:
    """``$SCOREAUDIO_CACHE`` or ``~/.cache/scoreaudio``."""
    env = os.environ.get("SCOREAUDIO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scoreaudio"


def utterance_plan(syn_cfg) -> List[Tuple[str, int, int, float]]:
    """``(split, speaker, index, seconds)`` for every utterance of the corpus.

    Utterance ``i`` of a split is spoken by speaker ``i % num_speakers``; its index is
    ``SPLIT_OFFSETS[split] + i`` (splits never share an utterance) and its duration is drawn
    uniformly in [0.8, 1.2] x ``utterance_seconds`` from the seed.
    """
    out = []
    n_spk = max(1, int(syn_cfg.num_speakers))
    for split, n in (
        ("train", syn_cfg.train_utterances),
        ("valid", syn_cfg.valid_utterances),
        ("test", syn_cfg.test_utterances),
    ):
        for i in range(int(n)):
            index = SPLIT_OFFSETS[split] + i
            u = np.random.default_rng([int(syn_cfg.seed) & 0xFFFFFFFF, index, 11]).random()
            secs = round(float(syn_cfg.utterance_seconds) * (0.8 + 0.4 * u), 3)
            out.append((split, i % n_spk, index, secs))
    return out


def materialize_corpus(base: Path, syn_cfg, sample_rate: int) -> Path:
    """Write the corpus as ``<base>/synthetic-<key>/<split>/spkNN/<split>_NNNNN.wav`` once.

    The folder name hashes the settings (``corpus_key``), so different settings never collide
    and a finished folder is reused as is. The corpus is written into a temporary sibling folder
    and renamed into place only when complete, so an interrupted write is never reused.
    Returns the corpus folder.
    """
    from ..audio.io import save

    base = Path(base).expanduser()
    dest = base / f"synthetic-{corpus_key(syn_cfg, sample_rate)}"
    if (dest / "corpus.json").is_file():
        return dest
    try:
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=str(base)))
    except OSError as e:
        from ..errors import DataError

        raise DataError(
            f"synthetic: cannot write the corpus under '{base}' ({e.strerror or e}); "
            f"set data.root to a writable folder (or SCOREAUDIO_CACHE)"
        ) from None
    try:
        plan = utterance_plan(syn_cfg)
        for split, spk, index, secs in plan:
            wav = synthesize_utterance(spk, index, secs, sample_rate, seed=int(syn_cfg.seed))
            i = index - SPLIT_OFFSETS[split]
            save(tmp / split / f"spk{spk:02d}" / f"{split}_{i:05d}.wav", wav, sample_rate)
        meta = {
            "version": SYNTH_VERSION,
            "sample_rate": int(sample_rate),
            "utterances": len(plan),
            "settings": {
                k: getattr(syn_cfg, k)
                for k in (
                    "num_speakers",
                    "train_utterances",
                    "valid_utterances",
                    "test_utterances",
                    "utterance_seconds",
                    "seed",
                )
            },
        }
        (tmp / "corpus.json").write_text(json.dumps(meta, indent=1))
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / "corpus.json").is_file():  # not a concurrent writer that finished first
                if dest.exists():
                    shutil.rmtree(dest, ignore_errors=True)  # a stale incomplete folder
                os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


__all__ = [
    "SpeakerParams",
    "speaker_params",
    "synthesize_utterance",
    "materialize_corpus",
    "corpus_key",
    "default_cache_root",
    "utterance_plan",
]
