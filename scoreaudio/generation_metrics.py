"""Is generated audio speech? The measures behind ``scoreaudio evaluate --generated``.

A sampler can produce audio that scores well on a loss and still is not speech. These measures say
how speech-like a set of files is, without transcripts, and place it between two anchors: the
reference speech (the ceiling) and white noise of the same lengths and loudness (the floor).

Per file, on 20 ms frames (hop 20 ms; 320 samples at 16 kHz; frames centred on ``t * hop``):

* **energy**: a frame "has energy" when its RMS is above :data:`ENERGY_THRESHOLD_DB` (-40 dB)
  relative to the file's loudest frame. A digitally silent file has no frames with energy.
* **pause share**: the share of frames *without* energy. Speech has pauses (typically 10-40 % of
  the frames); noise and hum have none.
* **voiced share**: of the frames with energy, the share librosa's pYIN (Mauch & Dixon 2014;
  f0 search 60-400 Hz, 64 ms analysis frames) calls voiced. Speech is mostly voiced; noise is not.
* **spectral flatness**: geometric over arithmetic mean of the frame's power spectrum (20 ms
  Hann window), averaged over the frames with energy: 0 for a pure tone, about 0.56 for white
  noise (the mean of log of an exponential variable), ~0.01-0.1 for voiced speech.

Per set (files scored at 16 kHz, resampled with soxr when at another rate):

* the means over files of the three measures above (files where a measure is undefined, e.g. a
  silent file's voiced share, are left out of that mean);
* **DNSMOS** SIG/BAK/OVRL (P.835, :func:`scoreaudio.metrics.dnsmos`; NaN with a note when
  ``speechmos``/``onnxruntime`` are missing);
* **Fréchet log-mel distance** to the reference: every file's 64-band log-mel frames (librosa mel,
  Slaney scale and norm, 64 ms window, 16 ms hop; ``10 log10(mel power + 1e-6)`` (dB, so distances are in dB^2); the floor equals
  white noise at about -74 dBFS, so the digital silence of pauses does not dominate) are pooled, a
  Gaussian is fitted to each set and :func:`frechet_distance` compares the two. All frames are
  used, pauses included. The reference row compares the reference's even-numbered files (sorted
  by path, so each speaker folder is in both halves) with its odd-numbered ones: the value a set as
  good as the reference would get at half the size (the estimate is biased upwards for fewer
  files), i.e. the noise floor of the measure. With a few dozen files it varies by a factor of ~2
  with the split; compare sets of the same size.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import DataError

EVAL_RATE = 16000  #: measures are computed at this rate (Hz)
FRAME_SECONDS = 0.020  #: frame length and hop of the energy/voicing/flatness frames
ENERGY_THRESHOLD_DB = -40.0  #: a frame has energy above this RMS, in dB re the file's loudest frame
PYIN_FMIN, PYIN_FMAX = 60.0, 400.0  #: pYIN's f0 search range, Hz (covers adult and child voices)
PYIN_FRAME_SECONDS = 0.064  #: pYIN's analysis window: more than three periods of 60 Hz
MEL_BANDS = 64
MEL_WINDOW_SECONDS = 0.064  #: n_fft 1024 at 16 kHz
MEL_HOP_SECONDS = 0.016  #: hop 256 at 16 kHz
LOGMEL_FLOOR = 1e-6  #: added to the mel power before log10 (about white noise at -74 dBFS)
FLATNESS_FLOOR = 1e-10  #: power floor of the flatness' geometric mean (log of 0 is undefined)
DEFAULT_MAX_FILES = 100  #: per set; DNSMOS costs ~0.3 s per file on a CPU
SETS = ("generated", "reference", "white_noise")  #: the rows of a :func:`score_generated` result
#: Measured per file and averaged over a set's files.
FILE_MEASURES = (
    "voiced_share",
    "pause_share",
    "spectral_flatness",
    "dnsmos_sig",
    "dnsmos_bak",
    "dnsmos_ovrl",
)
SUMMARY_KEYS = ("n_files", "seconds", *FILE_MEASURES, "frechet_logmel")  #: keys of a set's summary

PathLike = Union[str, Path]


# --------------------------------------------------------------------------------------------
# Frame features (pure functions on one mono signal)
# --------------------------------------------------------------------------------------------
def to_eval_rate(x, sample_rate: int) -> np.ndarray:
    """One mono signal (T,) at ``sample_rate`` -> float64 (T',) at :data:`EVAL_RATE` (soxr HQ)."""
    from .metrics import _mono16k

    return _mono16k(x, int(sample_rate))


def frame_samples(sample_rate: int, seconds: float = FRAME_SECONDS) -> int:
    """Samples in ``seconds`` at ``sample_rate`` (at least 1): 320 for 20 ms at 16 kHz."""
    return max(1, int(round(seconds * sample_rate)))


def frame_rms(x: np.ndarray, hop: int) -> np.ndarray:
    """RMS of frames of ``hop`` samples centred on ``t * hop`` (zero padding at the ends).

    Args:
        x: (T,) signal.
        hop: frame length and hop, samples.

    Returns:
        (1 + T // hop,) linear RMS (the frame grid of :func:`voiced_flags` and :func:`power_spectrogram`).
    """
    x = np.asarray(x, dtype=np.float64)
    n_frames = 1 + len(x) // hop
    padded = np.pad(x, (hop // 2, n_frames * hop - len(x) - hop // 2 + hop))
    frames = padded[: n_frames * hop].reshape(n_frames, hop)
    return np.sqrt(np.mean(frames**2, axis=1))


def energy_mask(rms: np.ndarray, threshold_db: float = ENERGY_THRESHOLD_DB) -> np.ndarray:
    """(N,) frame RMS -> (N,) bool: above ``threshold_db`` dB re the loudest frame (all False if silent)."""
    rms = np.asarray(rms, dtype=np.float64)
    peak = float(rms.max()) if rms.size else 0.0
    if peak <= 0.0:
        return np.zeros(rms.shape, dtype=bool)
    return rms > peak * 10.0 ** (threshold_db / 20.0)


def power_spectrogram(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2 with a periodic Hann window of ``n_fft``: (T,) -> (n_fft // 2 + 1, 1 + T // hop).

    Frames are centred on ``t * hop`` (zero padding), the grid of :func:`frame_rms`.
    """
    import librosa

    spec = librosa.stft(
        np.asarray(x, dtype=np.float64),
        n_fft=n_fft,
        hop_length=hop,
        window="hann",
        center=True,
        pad_mode="constant",
    )
    return np.abs(spec) ** 2


def spectral_flatness(power: np.ndarray, floor: float = FLATNESS_FLOOR) -> np.ndarray:
    """Geometric over arithmetic mean of a power spectrum, per frame: (F, N) -> (N,), in [0, 1].

    Bins are floored at ``floor`` so silent bins do not make the geometric mean 0 outright.
    """
    p = np.maximum(np.asarray(power, dtype=np.float64), floor)
    return np.exp(np.mean(np.log(p), axis=0)) / np.mean(p, axis=0)


def voiced_flags(x: np.ndarray, sample_rate: int, hop: int) -> np.ndarray:
    """pYIN's voiced/unvoiced decision per frame: (T,) -> (1 + T // hop,) bool.

    f0 searched in [:data:`PYIN_FMIN`, :data:`PYIN_FMAX`] Hz over :data:`PYIN_FRAME_SECONDS`
    windows centred on ``t * hop`` (zero padding), the grid of :func:`frame_rms`.
    """
    import librosa

    frame_length = 1 << int(math.ceil(math.log2(PYIN_FRAME_SECONDS * sample_rate)))  # 1024 at 16 kHz
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pYIN warns on frames of digital silence; they are unvoiced
        _, voiced, _ = librosa.pyin(
            np.asarray(x, dtype=np.float64),
            fmin=PYIN_FMIN,
            fmax=PYIN_FMAX,
            sr=sample_rate,
            frame_length=frame_length,
            hop_length=hop,
            center=True,
            pad_mode="constant",
        )
    return np.asarray(voiced, dtype=bool)


@dataclass
class SpeechFrames:
    """Per-frame features of one signal on the 20 ms grid; all arrays (N,)."""

    rms: np.ndarray  # linear frame RMS
    energetic: np.ndarray  # bool: RMS above the energy threshold
    voiced: Optional[np.ndarray]  # bool: pYIN voiced (None when voicing was not computed)
    flatness: np.ndarray  # spectral flatness in [0, 1]


def speech_frames(x, sample_rate: int, *, voicing: bool = True) -> SpeechFrames:
    """The frame features of one mono signal (T,) at ``sample_rate`` (scored at :data:`EVAL_RATE`)."""
    x = to_eval_rate(x, sample_rate)
    hop = frame_samples(EVAL_RATE)
    rms = frame_rms(x, hop)
    energetic = energy_mask(rms)
    flatness = spectral_flatness(power_spectrogram(x, n_fft=hop, hop=hop))
    voiced = None
    if voicing:
        # pYIN is the costly part; a file without energy has nothing to classify.
        voiced = voiced_flags(x, EVAL_RATE, hop) if energetic.any() else np.zeros_like(energetic)
    n = min(len(rms), len(flatness), len(rms) if voiced is None else len(voiced))
    return SpeechFrames(rms[:n], energetic[:n], None if voiced is None else voiced[:n], flatness[:n])


def speech_measures(x, sample_rate: int, *, voicing: bool = True) -> Dict[str, float]:
    """``{"voiced_share", "pause_share", "spectral_flatness"}`` of one mono signal (T,).

    Shares are fractions in [0, 1]. ``voiced_share`` and ``spectral_flatness`` are NaN for a file
    without frames with energy (digital silence); ``voiced_share`` is NaN when ``voicing`` is False.
    """
    f = speech_frames(x, sample_rate, voicing=voicing)
    n_energetic = int(f.energetic.sum())
    pause = 1.0 - n_energetic / len(f.energetic) if len(f.energetic) else math.nan
    if n_energetic == 0:
        return {"voiced_share": math.nan, "pause_share": pause, "spectral_flatness": math.nan}
    voiced = math.nan if f.voiced is None else float(f.voiced[f.energetic].mean())
    return {
        "voiced_share": voiced,
        "pause_share": pause,
        "spectral_flatness": float(f.flatness[f.energetic].mean()),
    }


def logmel_frames(x, sample_rate: int) -> np.ndarray:
    """64-band log-mel frame vectors of one mono signal: (T,) -> (N, 64), dB of mel power.

    librosa mel filterbank (Slaney scale and area norm, 0 Hz to Nyquist) on the power of a
    64 ms Hann STFT with a 16 ms hop at :data:`EVAL_RATE`; ``10 log10(mel + LOGMEL_FLOOR)``.
    """
    import librosa

    x = to_eval_rate(x, sample_rate)
    n_fft, hop = frame_samples(EVAL_RATE, MEL_WINDOW_SECONDS), frame_samples(EVAL_RATE, MEL_HOP_SECONDS)
    mel = librosa.feature.melspectrogram(
        y=x,
        sr=EVAL_RATE,
        n_fft=n_fft,
        hop_length=hop,
        n_mels=MEL_BANDS,
        power=2.0,
        center=True,
        pad_mode="constant",
    )
    return 10.0 * np.log10(mel + LOGMEL_FLOOR).T


# --------------------------------------------------------------------------------------------
# Fréchet distance between Gaussians
# --------------------------------------------------------------------------------------------
def gaussian_fit(frames: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) (unbiased, ``N - 1``) of frame vectors (N, D), N >= 2."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[0] < 2:
        raise ValueError(f"need at least 2 frame vectors of shape (N, D), got {frames.shape}")
    return frames.mean(axis=0), np.cov(frames, rowvar=False)


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2).

    ``||mu1 - mu2||^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2))``, in the squared units of the
    vectors. ``Tr (cov1 cov2)^(1/2)`` is computed as the sum of the square roots of the
    eigenvalues of the symmetric ``cov1^(1/2) cov2 cov1^(1/2)`` (a matrix similar to ``cov1 cov2``),
    which stays real and stable for singular covariances, unlike a general matrix square root.

    Args:
        mu1, mu2: (D,) means.
        cov1, cov2: (D, D) symmetric positive semi-definite covariances.

    Returns:
        The distance (>= 0; round-off below 0 is returned as 0).
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    cov1, cov2 = np.asarray(cov1, dtype=np.float64), np.asarray(cov2, dtype=np.float64)
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum())
    diff = mu1 - mu2
    return max(0.0, float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt))


def frechet_of_frames(frames_a: Sequence[np.ndarray], frames_b: Sequence[np.ndarray]) -> float:
    """Fréchet distance between Gaussians fitted to two pools of (N_i, D) frame arrays (NaN: < 2 frames)."""
    if not frames_a or not frames_b:
        return math.nan
    a, b = np.concatenate(list(frames_a)), np.concatenate(list(frames_b))
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return frechet_distance(*gaussian_fit(a), *gaussian_fit(b))


# --------------------------------------------------------------------------------------------
# Sets of files
# --------------------------------------------------------------------------------------------
def even_picks(items: Sequence, k: Optional[int]) -> list:
    """At most ``k`` items, evenly spaced through the list (keeps speakers of a sorted corpus mixed)."""
    items = list(items)
    if k is None or k >= len(items):
        return items
    return [items[(i * len(items)) // k] for i in range(max(0, k))]


def audio_files(folder: PathLike, what: str) -> List[Path]:
    """Every audio file under ``folder`` (recursively, sorted; hidden files skipped).

    Raises:
        DataError: the folder does not exist or holds no audio (``what`` names it in the message).
    """
    from .audio.io import AUDIO_EXTS, find_audio_files

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{what}: folder not found: '{folder}'")
    files = find_audio_files(folder)
    if not files:
        raise DataError(f"{what}: no audio files ({', '.join(AUDIO_EXTS)}) under '{folder}'")
    return files


def _is_recipe(reference: PathLike) -> bool:
    from .config import find_recipe

    path = Path(reference)
    if path.is_file():
        return path.suffix.lower() in (".yaml", ".yml")
    return not path.suffix and find_recipe(path) is not None


def recipe_files(recipe: PathLike, split: str = "valid", overrides: Sequence[str] = ()) -> List[Path]:
    """The audio files of a recipe's ``split``, sorted by path (its dataset's manifest; the
    synthetic corpus is written to its cache first, once).

    Sorted by path, not by the manifest's utterance ids, so speaker folders stay together and the
    even/odd halves of the reference's Fréchet row both hold every speaker (the synthetic corpus'
    ids alternate speakers: by id, even and odd would split the speakers instead).

    Raises:
        ConfigError / DataError: a bad recipe, a dataset that cannot be read, an empty split.
    """
    from .config import compose
    from .data.corpora import build_manifest

    if split not in ("train", "valid", "test"):
        raise DataError(f"reference split must be train, valid or test, got {split!r}")
    cfg = compose(recipe, list(overrides))
    metas = [m for m in build_manifest(cfg)[split] if m.readable]
    if not metas:
        raise DataError(
            f"reference: the {split} split of {recipe} ({cfg.data.dataset}) has no readable files"
        )
    return sorted(Path(m.path) for m in metas)


def reference_files(
    reference: Union[PathLike, Sequence[PathLike]], *, split: str = "valid", overrides: Sequence[str] = ()
) -> List[Path]:
    """The reference files: a folder of audio, a recipe (name or YAML; its ``split``), or a list of files."""
    if isinstance(reference, (list, tuple)):
        return [Path(p) for p in reference]
    if Path(reference).is_dir():
        return audio_files(reference, "reference")
    if _is_recipe(reference):
        return recipe_files(reference, split, overrides)
    raise DataError(
        f"reference: '{reference}' is neither a folder nor a recipe "
        f"(pass a folder of audio or a recipe such as quickstart or recipes/quickstart.yaml)"
    )


def load_eval(path: PathLike) -> np.ndarray:
    """One audio file as mono float64 (T,) at :data:`EVAL_RATE` (AudioError when unreadable)."""
    from .audio.io import load

    wav, _ = load(path, EVAL_RATE)
    return wav[0].numpy().astype(np.float64)


def white_noise_like(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise with the length and RMS of ``x`` (T,) -> (T,)."""
    rms = float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2))) if len(x) else 0.0
    return rms * rng.standard_normal(len(x))


def _dnsmos_scores(signals: Sequence[np.ndarray], notes: List[str]) -> List[Dict[str, float]]:
    """DNSMOS SIG/BAK/OVRL per signal; all NaN with one note when the packages are missing."""
    from .metrics import MetricUnavailable, MetricWarning, dnsmos

    nan = {"dnsmos_sig": math.nan, "dnsmos_bak": math.nan, "dnsmos_ovrl": math.nan}
    out = []
    for x in signals:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MetricWarning)  # a silent file: NaN, said by the note below
                d = dnsmos(x, EVAL_RATE)
        except MetricUnavailable as e:
            notes.append(f"DNSMOS not computed: {e}")
            return [dict(nan) for _ in signals]
        out.append({"dnsmos_sig": d["sig"], "dnsmos_bak": d["bak"], "dnsmos_ovrl": d["ovrl"]})
    silent = sum(1 for d in out if math.isnan(d["dnsmos_ovrl"]))
    if silent:
        notes.append(f"DNSMOS: {silent} silent file(s) left out")
    return out


def _nanmean(values) -> float:
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def score_signals(
    signals: Sequence[np.ndarray], *, with_dnsmos: bool = True, notes: Optional[List[str]] = None
) -> Tuple[List[Dict[str, float]], Dict[str, float]]:
    """Per-signal rows and the set's summary (means over signals) of the per-file measures.

    Args:
        signals: mono float arrays (T_i,) at :data:`EVAL_RATE`.
        with_dnsmos: also run DNSMOS (the slow part); NaN columns otherwise.
        notes: a list that collects one-line notes (missing packages, silent files).

    Returns:
        ``(rows, summary)``: rows hold voiced_share, pause_share, spectral_flatness, dnsmos_*;
        the summary has the same keys plus ``n_files`` and ``seconds`` (total duration).
    """
    notes = [] if notes is None else notes
    rows = [speech_measures(x, EVAL_RATE) for x in signals]
    if with_dnsmos:
        for row, d in zip(rows, _dnsmos_scores(signals, notes), strict=True):
            row.update(d)
    else:
        for row in rows:
            row.update(dnsmos_sig=math.nan, dnsmos_bak=math.nan, dnsmos_ovrl=math.nan)
    summary: Dict[str, float] = {
        "n_files": len(signals),
        "seconds": float(sum(len(x) for x in signals)) / EVAL_RATE,
    }
    for key in FILE_MEASURES:
        summary[key] = _nanmean(r[key] for r in rows)
    return rows, summary


def _is_file_list(x) -> bool:
    return isinstance(x, (list, tuple))


def generated_files(generated: Union[PathLike, Sequence[PathLike]]) -> List[Path]:
    """The generated files: every audio file under a folder, or the given list (DataError when none)."""
    if not _is_file_list(generated):
        return audio_files(generated, "generated")
    if not generated:
        raise DataError("generated: no files given")
    return [Path(p) for p in generated]


def frechet_rows(mels: Dict[str, List[np.ndarray]]) -> Dict[str, float]:
    """Fréchet log-mel distance of each set to the reference, from per-file (N_i, 64) frame arrays.

    The reference's own value compares its even-numbered files with its odd-numbered ones.
    """
    ref = mels["reference"]
    return {
        "generated": frechet_of_frames(mels["generated"], ref),
        "reference": frechet_of_frames(ref[0::2], ref[1::2]),
        "white_noise": frechet_of_frames(mels["white_noise"], ref),
    }


def _settings(generated, reference, n_generated: int, n_reference: int, **given) -> Dict[str, object]:
    """What a :func:`score_generated` result was computed from and how (recorded in its JSON)."""
    recipe = not _is_file_list(reference) and not Path(reference).is_dir() and _is_recipe(reference)
    return {
        "generated": f"{n_generated} files" if _is_file_list(generated) else str(generated),
        "reference": f"{n_reference} files" if _is_file_list(reference) else str(reference),
        **given,
        "reference_split": given.get("reference_split") if recipe else None,
        "sample_rate": EVAL_RATE,
        "frames": f"{FRAME_SECONDS * 1000:g} ms, hop {FRAME_SECONDS * 1000:g} ms, centred",
        "energy": f"frame RMS above {ENERGY_THRESHOLD_DB:g} dB re the file's loudest frame",
        "voicing": f"librosa.pyin fmin {PYIN_FMIN:g} Hz, fmax {PYIN_FMAX:g} Hz",
        "logmel": f"{MEL_BANDS} Slaney mel bands, {MEL_WINDOW_SECONDS * 1000:g} ms window, "
        f"{MEL_HOP_SECONDS * 1000:g} ms hop, 10 log10(power + {LOGMEL_FLOOR:g}) dB",
        "frechet_reference": "reference even-numbered files vs odd-numbered files (sorted by path)",
        "white_noise": "Gaussian, one clip per reference clip with its length and RMS",
    }


def score_generated(
    generated: Union[PathLike, Sequence[PathLike]],
    reference: Union[PathLike, Sequence[PathLike]],
    *,
    sample_rate: int = EVAL_RATE,
    max_files: Optional[int] = DEFAULT_MAX_FILES,
    split: str = "valid",
    overrides: Sequence[str] = (),
    with_dnsmos: bool = True,
    seed: int = 0,
) -> Dict[str, object]:
    """Score generated audio as speech, beside the reference speech and white noise.

    Args:
        generated: a folder of audio (recursively) or a list of files.
        reference: a folder of audio, a recipe (``quickstart``, ``recipes/quickstart.yaml``: the
            files of its ``split``, with ``overrides``), or a list of files.
        sample_rate: the rate the measures are computed at; only :data:`EVAL_RATE` (16 kHz) is
            supported (DNSMOS and the frame sizes are defined there); files are resampled to it.
        max_files: at most this many files per set, evenly spaced in sorted order (None: all).
        split, overrides: for a recipe reference.
        with_dnsmos: run DNSMOS (NaN columns otherwise).
        seed: of the white noise.

    Returns:
        ``{"generated": summary, "reference": summary, "white_noise": summary, "per_file": {set:
        [row with "file"]}, "notes": [...], "settings": {...}}``; a summary has :data:`SUMMARY_KEYS`.
        The white noise has one clip per reference clip, of its length and RMS.

    Raises:
        DataError: a missing or empty folder, a reference that is neither folder nor recipe, an
            unreadable file (AudioError), or a ``sample_rate`` other than 16 kHz.
    """
    if int(sample_rate) != EVAL_RATE:
        raise DataError(
            f"generation measures are defined at {EVAL_RATE} Hz (DNSMOS, 20 ms frames); "
            f"got sample_rate={sample_rate}; files at other rates are resampled"
        )
    if max_files is not None and int(max_files) < 1:
        raise DataError(f"--max-files must be at least 1, got {max_files}")
    files = {
        "generated": even_picks(generated_files(generated), max_files),
        "reference": even_picks(reference_files(reference, split=split, overrides=overrides), max_files),
    }
    signals = {name: [load_eval(p) for p in paths] for name, paths in files.items()}
    rng = np.random.default_rng(seed)
    signals["white_noise"] = [white_noise_like(x, rng) for x in signals["reference"]]
    names = {
        "generated": [str(p) for p in files["generated"]],
        "reference": [str(p) for p in files["reference"]],
        "white_noise": [f"noise_like:{p.name}" for p in files["reference"]],
    }

    notes: List[str] = []
    result: Dict[str, object] = {}
    per_file: Dict[str, list] = {}
    for name in SETS:
        rows, result[name] = score_signals(signals[name], with_dnsmos=with_dnsmos, notes=notes)
        per_file[name] = [dict(file=f, **r) for f, r in zip(names[name], rows, strict=True)]
    frechet = frechet_rows({name: [logmel_frames(x, EVAL_RATE) for x in signals[name]] for name in SETS})
    for name in SETS:
        result[name]["frechet_logmel"] = frechet[name]
    if len(files["reference"]) < 2:
        notes.append("Fréchet log-mel of the reference needs at least 2 reference files (even vs odd halves)")

    result["per_file"] = per_file
    result["notes"] = list(dict.fromkeys(notes))
    result["settings"] = _settings(
        generated,
        reference,
        len(files["generated"]),
        len(files["reference"]),
        reference_split=split,
        overrides=list(overrides),
        max_files=max_files,
        seed=seed,
        dnsmos=with_dnsmos,
    )
    return result


# --------------------------------------------------------------------------------------------
# Presentation
# --------------------------------------------------------------------------------------------
_COLUMNS = (
    ("n_files", "files", "{:d}"),
    ("voiced_share", "voiced share", "{:.3f}"),
    ("pause_share", "pause share", "{:.3f}"),
    ("spectral_flatness", "flatness", "{:.3f}"),
    ("dnsmos_sig", "DNSMOS SIG", "{:.2f}"),
    ("dnsmos_bak", "DNSMOS BAK", "{:.2f}"),
    ("dnsmos_ovrl", "DNSMOS OVRL", "{:.2f}"),
    ("frechet_logmel", "Fréchet log-mel (dB²)", "{:.0f}"),
)


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return fmt.format(int(value) if fmt == "{:d}" else value)


def markdown_table(result: Dict[str, object]) -> str:
    """The three rows (generated, reference, white noise) of a :func:`score_generated` result as Markdown."""
    header = "| set | " + " | ".join(label for _, label, _ in _COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(_COLUMNS)
    rows = [
        f"| {name.replace('_', ' ')} | "
        + " | ".join(_cell(result[name].get(key), fmt) for key, _, fmt in _COLUMNS)
        + " |"
        for name in SETS
    ]
    return "\n".join([header, rule, *rows])


def comparison_table(labelled: Sequence[Tuple[str, Dict[str, object]]]) -> str:
    """Several :func:`score_generated` results as one Markdown table: a "generated" row per
    (label, result), then the first result's reference and white-noise rows, so every model is
    read against the same two anchors."""
    if not labelled:
        raise ValueError("no results to tabulate")
    header = "| samples | " + " | ".join(label for _, label, _ in _COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(_COLUMNS)

    def row(name: str, values: Dict[str, object]) -> str:
        return f"| {name} | " + " | ".join(_cell(values.get(key), fmt) for key, _, fmt in _COLUMNS) + " |"

    rows = [row(label, result["generated"]) for label, result in labelled]
    first = labelled[0][1]
    rows += [
        row("reference (the corpus itself)", first["reference"]),
        row("white noise", first["white_noise"]),
    ]
    return "\n".join([header, rule, *rows])


__all__ = [
    "SpeechFrames",
    "comparison_table",
    "audio_files",
    "energy_mask",
    "even_picks",
    "frame_rms",
    "frechet_distance",
    "frechet_of_frames",
    "frechet_rows",
    "gaussian_fit",
    "generated_files",
    "logmel_frames",
    "markdown_table",
    "power_spectrogram",
    "recipe_files",
    "reference_files",
    "score_generated",
    "score_signals",
    "spectral_flatness",
    "speech_frames",
    "speech_measures",
    "voiced_flags",
    "white_noise_like",
]
