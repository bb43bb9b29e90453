"""Reading, writing and resampling audio.

Everything in the package reads audio through :func:`load` (float32 mono ``(1, T)`` tensors) and
writes it through :func:`save` (atomic: temp file, then rename). Problems a user can cause — a
missing, empty, corrupt or non-finite file — are an :class:`~scoreaudio.errors.AudioError` whose
one-line message names the file and what to do; the error carries a short ``reason`` attribute
(``missing``, ``empty``, ``unreadable``, ``nonfinite``) that ``scoreaudio data check`` tabulates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

import numpy as np
import soundfile as sf
import torch

from ..errors import AudioError, one_line
from ..utils.files import atomic_write

PathLike = Union[str, os.PathLike]

#: File extensions we write, and the libsndfile container each one maps to.
_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}
#: Extensions that count as audio when a folder is searched (soundfile/libsndfile must read them).
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")
#: Subtypes that store plain samples (integer PCM or float), which an output may keep from its input.
PLAIN_SUBTYPES = ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")


def _fail(reason: str, message: str) -> AudioError:
    err = AudioError(message)
    err.reason = reason  # type: ignore[attr-defined]
    return err


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise _fail("missing", f"audio file not found: '{path}'; check the path (or rebuild the manifest)")
    if path.is_dir():
        raise _fail("unreadable", f"'{path}' is a folder, not an audio file; pass a file path")
    if path.stat().st_size == 0:
        raise _fail("empty", f"audio file '{path}' is empty (0 bytes); re-download or delete it")


def find_audio_files(root: PathLike, exts: Iterable[str] = AUDIO_EXTS) -> List[Path]:
    """Every file below ``root`` (recursively) whose extension is one of ``exts`` (any case), sorted.

    Hidden files and folders (a name starting with ".") are skipped, and symlinked folders are not
    followed. The paths start with ``root``; they are sorted part by part, so a folder's files come
    together. Nothing is opened: a file that is not really audio fails later, in :func:`load`.
    """
    exts = tuple(e.lower() for e in exts)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in exts:
                out.append(Path(dirpath) / f)
    return sorted(out)


def audio_info(path: PathLike) -> Tuple[int, int, int]:
    """``(frames, sample_rate, channels)`` of an audio file, read from its header only.

    Raises:
        AudioError: the file is missing, empty or not an audio file soundfile can read.
    """
    path = Path(path)
    _check_readable(path)
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile raises RuntimeError/LibsndfileError/TypeError on junk
        raise _fail(
            "unreadable",
            f"cannot read audio file '{path}' ({one_line(e)}); "
            f"it is corrupt or not audio: re-download or delete it",
        ) from None
    return int(info.frames), int(info.samplerate), int(info.channels)


def load(path: PathLike, sample_rate: Optional[int] = None) -> Tuple[torch.Tensor, int]:
    """Read an audio file as a float32 mono tensor of shape ``(1, T)``.

    Multi-channel files are downmixed by the mean over channels. When ``sample_rate`` is given
    and differs from the file's rate the signal is resampled with soxr (high quality).

    Returns:
        ``(wav, rate)``: ``wav`` (1, T) float32 on the CPU and the rate it is at (``sample_rate``
        when given, else the file's own rate).

    Raises:
        AudioError: missing, empty (no bytes or no samples), unreadable, or NaN/inf samples.
    """
    path = Path(path)
    _check_readable(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    except Exception as e:
        raise _fail(
            "unreadable",
            f"cannot read audio file '{path}' ({one_line(e)}); "
            f"it is corrupt or not audio: re-download or delete it",
        ) from None
    if data.shape[0] == 0:
        raise _fail("empty", f"audio file '{path}' has no samples (zero length); delete it or re-export it")
    if not np.isfinite(data).all():
        raise _fail(
            "nonfinite", f"audio file '{path}' contains NaN or inf samples; re-export it (or delete it)"
        )
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sample_rate is not None and int(sample_rate) != rate:
        mono = _soxr(mono[None, :], rate, int(sample_rate))[0]
        rate = int(sample_rate)
    return torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))[None, :], int(rate)


def _as_channels_first(wav) -> np.ndarray:
    """A tensor/ndarray of shape (T,), (1, T) or (C, T) as a float ndarray (C, T)."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().to("cpu")
        if wav.dtype in (torch.float16, torch.bfloat16):
            wav = wav.float()
        wav = wav.numpy()
    wav = np.asarray(wav)
    if wav.ndim == 1:
        wav = wav[None, :]
    if wav.ndim != 2:
        raise AudioError(f"cannot save audio of shape {wav.shape}; pass (T,), (1, T) or (channels, T)")
    if not np.issubdtype(wav.dtype, np.floating):
        raise AudioError(f"cannot save audio of dtype {wav.dtype}; pass floating-point samples in [-1, 1]")
    return wav


def output_subtype(container: str, subtype: Optional[str]) -> str:
    """The subtype to write into ``container`` ("WAV", "FLAC", "OGG") for an input of ``subtype``.

    The input's subtype is kept only when it stores plain samples (:data:`PLAIN_SUBTYPES`: PCM or
    float) and the container holds it (PCM_24 WAV -> PCM_24 FLAC, FLOAT WAV -> FLOAT WAV); else the
    container's default (``soundfile.default_subtype``: PCM_16 for WAV and FLAC, VORBIS for OGG).
    A codec is never carried over: libsndfile says WAV holds MPEG_LAYER_III (it reads such files)
    but cannot write it, and re-encoding a result in u-law or ADPCM would only lose more of it.
    """
    subtype = (subtype or "").upper()
    if subtype in PLAIN_SUBTYPES and sf.check_format(container, subtype):
        return subtype
    return sf.default_subtype(container)


def save(path: PathLike, wav, sample_rate: int, *, subtype: Optional[str] = None) -> Path:
    """Write audio atomically (temp file in the same folder, then rename); creates parent folders.

    Args:
        path: destination; the extension picks the container (``.wav``, ``.flac``, ``.ogg``).
        wav: tensor or ndarray of shape (T,), (1, T) or (C, T), floating point, nominally in [-1, 1].
        sample_rate: rate in Hz.
        subtype: libsndfile subtype. Default ``PCM_16`` (16-bit) for WAV/FLAC and ``VORBIS`` for
            OGG; ``"FLOAT"`` writes 32-bit float WAV. Integer subtypes clip to [-1, 1] (no wrap-around).
            A codec the container accepts (an MP3 input's ``MPEG_LAYER_III``, ``ULAW``, ``OPUS``,
            ...) gives the container's default instead (:func:`output_subtype`).

    Returns:
        The written path.

    Raises:
        AudioError: NaN/inf samples, a bad shape, or an extension/subtype soundfile cannot write.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"cannot write '{path}': unknown extension; use one of {', '.join(_FORMATS)}")
    data = _as_channels_first(wav)  # (C, T)
    if not np.isfinite(data).all():
        raise AudioError(
            f"refusing to write '{path}': the audio contains NaN or inf samples "
            f"(a diverged model or a bad input upstream)"
        )
    if subtype is None:
        subtype = "VORBIS" if fmt == "OGG" else "PCM_16"
    subtype = subtype.upper()
    if not sf.check_format(fmt, subtype):
        raise AudioError(f"cannot write '{path}': {fmt} does not support subtype {subtype}")
    # Callers pass an input's subtype to keep its sample format (scoreaudio denoise); only a plain
    # one is kept, so an MP3 input can be written as WAV at all.
    subtype = output_subtype(fmt, subtype)
    if subtype.startswith("PCM") or subtype in ("VORBIS",):
        data = np.clip(data, -1.0, 1.0)
    dtype = np.float64 if data.dtype == np.float64 else np.float32
    frames = np.ascontiguousarray(data.T, dtype=dtype)  # (T, C)
    try:
        atomic_write(path, lambda tmp: sf.write(tmp, frames, int(sample_rate), subtype=subtype, format=fmt))
    except Exception as e:
        if isinstance(e, AudioError):
            raise
        raise AudioError(f"cannot write '{path}': {one_line(e)}") from None
    return path


def _soxr(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample the rows of a 2-D float array (N, T) with soxr; returns (N, T')."""
    import soxr

    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    out = soxr.resample(np.ascontiguousarray(x.T), orig_sr, target_sr, quality="HQ")  # (T', N)
    out = np.asarray(out)
    if out.ndim == 1:
        out = out[:, None]
    return np.ascontiguousarray(out.T)


def resample(wav, orig_sr: int, target_sr: int):
    """Resample along the last axis with soxr: (..., T) -> (..., T * target_sr / orig_sr).

    Accepts a tensor (any leading dims, any device; computed on the CPU, returned on the input's
    device and dtype) or an ndarray (returned as an ndarray of the same dtype). Same rate: the
    input is returned unchanged.
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr <= 0 or target_sr <= 0:
        raise AudioError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    if orig_sr == target_sr:
        return wav
    if isinstance(wav, torch.Tensor):
        lead, T = wav.shape[:-1], wav.shape[-1]
        x = wav.detach().to("cpu", torch.float64 if wav.dtype == torch.float64 else torch.float32)
        y = _soxr(x.reshape(-1, T).numpy(), orig_sr, target_sr)
        return torch.from_numpy(y).reshape(*lead, y.shape[-1]).to(device=wav.device, dtype=wav.dtype)
    arr = np.asarray(wav)
    lead, T = arr.shape[:-1], arr.shape[-1]
    y = _soxr(arr.reshape(-1, T), orig_sr, target_sr)
    out_dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float32
    return y.reshape(*lead, y.shape[-1]).astype(out_dtype)


def read_file_samples(path: PathLike, *, what: str = "process") -> Tuple[np.ndarray, int, Optional[str]]:
    """Every channel of an audio file at its own rate, for processing and writing back alike.

    Returns ``(wav, sample_rate, subtype)``: ``wav`` float32, (T,) for mono or (C, T); ``subtype``
    the file's sample format (e.g. ``PCM_24``), to keep in the output. AudioError (one line) for
    an unreadable, empty or non-finite file; ``what`` names the job in the message.
    """
    path = Path(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
        subtype = sf.info(str(path)).subtype
    except Exception as e:  # noqa: BLE001 - libsndfile raises RuntimeError/LibsndfileError/TypeError on junk
        raise AudioError(
            f"cannot read audio file '{path}' ({' '.join(str(e).split())}); it is corrupt or not audio"
        ) from None
    if data.shape[0] == 0:
        raise AudioError(f"audio file '{path}' has no samples; nothing to {what}")
    if not np.isfinite(data).all():
        raise AudioError(f"audio file '{path}' contains NaN or inf samples; re-export it")
    wav = data[:, 0] if data.shape[1] == 1 else np.ascontiguousarray(data.T)
    return wav, int(rate), subtype


def container_supports(path: PathLike, subtype: Optional[str]) -> bool:
    """Whether the container ``path``'s extension picks (WAV, FLAC, OGG) can hold ``subtype``."""
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(Path(path).suffix.lower())
    return bool(fmt is not None and subtype and sf.check_format(fmt, subtype))
