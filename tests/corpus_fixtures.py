"""Tiny corpora in each real on-disk layout, for tests of readers, recipes and the CLI.

Every ``make_<corpus>(root)`` writes a few short (0.3-1 s) generated files under ``root`` with the
corpus' real names, side files (metadata.csv, txt/, split lists, trans.txt, ...) and rates, and
returns ``root`` as a Path. They are deterministic and cheap (well under a second each). Use them
with ``data.dataset=<name> data.root=<root>``; what each one holds (and so which split every file
lands in under the readers' documented splits) is listed in its docstring — keep these stable,
other tests rely on the counts.

The audio is a decaying harmonic tone (a different pitch per file) plus a little noise: enough for
headers, durations, loading and resampling, not meant to sound like speech.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf

__all__ = [
    "tone",
    "write",
    "make_ljspeech",
    "make_vctk",
    "make_voicebank_demand",
    "make_librispeech",
    "make_libritts",
    "make_sc09",
    "make_folder",
]


def tone(seconds: float, sample_rate: int, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A short harmonic signal (T,) or (T, channels), peak about 0.5, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    n = max(1, int(round(seconds * sample_rate)))
    t = np.arange(n) / sample_rate
    f0 = 100.0 + 13.0 * (seed % 17)
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02 + 1e-3)
    x = 0.3 * x * env + 0.003 * rng.standard_normal(n)
    x = 0.5 * x / (np.max(np.abs(x)) + 1e-9)
    if channels > 1:
        x = np.stack([x * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
    return x.astype(np.float32)


def write(
    path: Path, seconds: float, sample_rate: int, seed: int = 0, channels: int = 1, subtype: str = "PCM_16"
) -> Path:
    """Write ``tone(...)`` to ``path`` (format from the extension); creates parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, sample_rate, seed, channels), sample_rate, subtype=subtype)
    return path


def _text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def make_ljspeech(root) -> Path:
    """LJSpeech-1.1: ``metadata.csv`` + ``wavs/`` at 22050 Hz, 8 clips.

    Under the chapter split: test = LJ001-0001, LJ001-0002, LJ002-0001 (3); valid = LJ003-0001,
    LJ003-0002 (2); train = LJ004-0001, LJ010-0003, LJ050-0002 (3). One raw transcript holds a
    quote mark and digits whose normalised form differs ("1400" -> "fourteen hundred").
    """
    root = Path(root)
    rows = [
        ("LJ001-0001", "Printing, in the only sense", "Printing, in the only sense"),
        ("LJ001-0002", 'in being "comparatively" modern.', 'in being "comparatively" modern.'),
        ("LJ002-0001", "In 1400 the press", "In fourteen hundred the press"),
        ("LJ003-0001", "Second chapter", "Second chapter"),
        ("LJ003-0002", "of the prisons", "of the prisons"),
        ("LJ004-0001", "the report of", "the report of"),
        ("LJ010-0003", "Mr. Smith's case", "Mister Smith's case"),
        ("LJ050-0002", "the Commission", "the Commission"),
    ]
    for i, (uid, _, _) in enumerate(rows):
        write(root / "wavs" / f"{uid}.wav", 0.3 + 0.05 * i, 22050, seed=i)
    _text(root / "metadata.csv", "".join(f"{a}|{b}|{c}\n" for a, b, c in rows))
    _text(root / "README", "LJ Speech Dataset (test fixture)\n")
    return root


VCTK_SPEAKERS = ("p225", "p226", "p232", "p257", "p287", "p300")


def make_vctk(root, layout: str = "0.92") -> Path:
    """VCTK with speakers p225, p226, p232, p257, p287, p300, two utterances each (001, 002).

    ``layout="0.92"``: ``wav48_silence_trimmed/<spk>/<spk>_00N_mic1.flac`` and ``_mic2.flac``
    (48 kHz FLAC; mic2 must be ignored), ``speaker-info.txt``; p300's 002 has no transcript.
    ``layout="legacy"``: VCTK-Corpus ``wav48/<spk>/<spk>_00N.wav`` (48 kHz WAV).
    Both: ``txt/<spk>/<spk>_00N.txt``. Split: valid = p226, p287 (4); test = p232, p257 (4);
    train = p225, p300 (4).
    """
    root = Path(root)
    if layout not in ("0.92", "legacy"):
        raise ValueError("layout must be '0.92' or 'legacy'")
    seed = 0
    for spk in VCTK_SPEAKERS:
        for n in (1, 2):
            uid = f"{spk}_{n:03d}"
            if layout == "0.92":
                write(root / "wav48_silence_trimmed" / spk / f"{uid}_mic1.flac", 0.3, 48000, seed=seed)
                write(root / "wav48_silence_trimmed" / spk / f"{uid}_mic2.flac", 0.3, 48000, seed=seed + 50)
            else:
                write(root / "wav48" / spk / f"{uid}.wav", 0.3, 48000, seed=seed)
            if not (spk == "p300" and n == 2):
                _text(root / "txt" / spk / f"{uid}.txt", f"Please call Stella {spk} {n}.\n")
            seed += 1
    if layout == "0.92":
        _text(
            root / "speaker-info.txt",
            "ID  AGE  GENDER  ACCENTS  REGION COMMENTS\n"
            + "".join(f"{s[1:]}  23  F  English  Southern  England\n" for s in VCTK_SPEAKERS),
        )
    return root


def make_voicebank_demand(root, drop_partner: bool = False) -> Path:
    """VoiceBank-DEMAND at 48 kHz: clean/noisy pairs with the real folder names.

    Trainset (28spk): p226_001, p226_002, p230_001, p230_002, p239_001, p287_001; testset:
    p232_001, p257_001. Split: valid = p226/p287 (3), train = p230/p239 (3), test (2). Transcripts
    in ``trainset_28spk_txt/`` and ``testset_txt/``. ``drop_partner=True`` deletes the noisy
    partner of p230_002 (the reader must report it).
    """
    root = Path(root)
    train = ("p226_001", "p226_002", "p230_001", "p230_002", "p239_001", "p287_001")
    test = ("p232_001", "p257_001")
    rng = np.random.default_rng(0)
    for names, clean_dir, noisy_dir, txt_dir in (
        (train, "clean_trainset_28spk_wav", "noisy_trainset_28spk_wav", "trainset_28spk_txt"),
        (test, "clean_testset_wav", "noisy_testset_wav", "testset_txt"),
    ):
        for i, uid in enumerate(names):
            clean = tone(0.3 + 0.05 * i, 48000, seed=i + 10 * len(names))
            noisy = clean + 0.05 * rng.standard_normal(len(clean)).astype(np.float32)
            for d, x in ((clean_dir, clean), (noisy_dir, noisy)):
                (root / d).mkdir(parents=True, exist_ok=True)
                sf.write(str(root / d / f"{uid}.wav"), x, 48000, subtype="PCM_16")
            _text(root / txt_dir / f"{uid}.txt", f"Sentence {uid}.\n")
    if drop_partner:
        (root / "noisy_trainset_28spk_wav" / "p230_002.wav").unlink()
    return root


def _libri(root: Path, layout: Iterable, ext: str, sample_rate: int, tts: bool) -> None:
    seed = 0
    for subset, speaker, chapter, n in layout:
        chap = root / subset / speaker / chapter
        lines = []
        for k in range(n):
            if tts:
                uid = f"{speaker}_{chapter}_{k:06d}_000000"
                _text(chap / f"{uid}.normalized.txt", f"Normalized text {k} of {speaker}.")
                _text(chap / f"{uid}.original.txt", f"Original text {k} of {speaker}!")
            else:
                uid = f"{speaker}-{chapter}-{k:04d}"
                lines.append(f"{uid} TEXT NUMBER {k} OF {speaker}")
            write(chap / f"{uid}{ext}", 0.3 + 0.05 * k, sample_rate, seed=seed)
            seed += 1
        if lines:
            _text(chap / f"{speaker}-{chapter}.trans.txt", "\n".join(lines) + "\n")


def make_librispeech(root) -> Path:
    """LibriSpeech (16 kHz FLAC): train-clean-100 with speakers 19 (chapter 198, 2 files) and 26
    (chapter 495, 2 files); dev-clean 84/121123 (2); test-clean 121/121726 (2); plus an unused
    train-other-500 5/100 (1). Transcripts in ``<spk>-<chapter>.trans.txt``."""
    root = Path(root)
    _libri(
        root,
        [
            ("train-clean-100", "19", "198", 2),
            ("train-clean-100", "26", "495", 2),
            ("dev-clean", "84", "121123", 2),
            ("test-clean", "121", "121726", 2),
            ("train-other-500", "5", "100", 1),
        ],
        ".flac",
        16000,
        tts=False,
    )
    return root


def make_libritts(root) -> Path:
    """LibriTTS (24 kHz WAV): train-clean-100 19/198 (2) and 26/495 (1), dev-clean 84/121123 (2),
    test-clean 121/121726 (1); ``<id>.normalized.txt`` and ``<id>.original.txt`` beside each."""
    root = Path(root)
    _libri(
        root,
        [
            ("train-clean-100", "19", "198", 2),
            ("train-clean-100", "26", "495", 1),
            ("dev-clean", "84", "121123", 2),
            ("test-clean", "121", "121726", 1),
        ],
        ".wav",
        24000,
        tts=True,
    )
    return root


SC09_SPEAKERS = ("0a2b400e", "1b4c9b89", "c1d39ce8")


def make_sc09(root) -> Path:
    """Speech Commands v0.02 (16 kHz, 1 s WAV): digits zero..nine, speakers 0a2b400e (valid),
    1b4c9b89 (test), c1d39ce8 (train), one file each per digit (``<spk>_nohash_0.wav``) — so 10
    valid, 10 test, 10 train — plus non-digit ``yes/`` and ``_background_noise_/`` folders that must
    be ignored, and ``validation_list.txt`` / ``testing_list.txt`` (also naming ``yes`` files)."""
    root = Path(root)
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    val, test = [], []
    seed = 0
    for w in words + ("yes",):
        for spk in SC09_SPEAKERS:
            name = f"{spk}_nohash_0.wav"
            write(root / w / name, 1.0, 16000, seed=seed)
            seed += 1
            if spk == SC09_SPEAKERS[0]:
                val.append(f"{w}/{name}")
            elif spk == SC09_SPEAKERS[1]:
                test.append(f"{w}/{name}")
    write(root / "_background_noise_" / "white_noise.wav", 1.0, 16000, seed=99)
    _text(root / "validation_list.txt", "\n".join(val) + "\n")
    _text(root / "testing_list.txt", "\n".join(test) + "\n")
    return root


def make_folder(root) -> Path:
    """A folder of recordings: 12 files of mixed formats and rates in speaker sub-folders.

    ``alice/`` (a01-a04.wav 16 kHz, ``sub/a05.flac``), ``bob/`` (b01-b04.flac 22.05 kHz,
    ``b05.wav`` stereo 44.1 kHz), ``carol/c01.ogg`` (Vorbis 16 kHz) and ``top.wav`` in the root
    (speaker None); ignored: ``.hidden.wav``, ``notes.txt``, ``.cache/x.wav``.
    """
    root = Path(root)
    for i in range(1, 5):
        write(root / "alice" / f"a{i:02d}.wav", 0.3 + 0.05 * i, 16000, seed=i)
        write(root / "bob" / f"b{i:02d}.flac", 0.3 + 0.05 * i, 22050, seed=10 + i)
    write(root / "alice" / "sub" / "a05.flac", 0.4, 16000, seed=5)
    write(root / "bob" / "b05.wav", 0.5, 44100, seed=15, channels=2)
    write(root / "carol" / "c01.ogg", 0.5, 16000, seed=20, subtype="VORBIS")
    write(root / "top.wav", 0.3, 16000, seed=21)
    write(root / ".hidden.wav", 0.3, 16000, seed=22)
    write(root / ".cache" / "x.wav", 0.3, 16000, seed=23)
    _text(root / "notes.txt", "not audio\n")
    return root
