"""One reader per on-disk corpus layout, each with the corpus' standard (or a fixed, documented) split.

``read_<corpus>(root, data_cfg) -> list[AudioMeta]``; :data:`READERS` maps the names of
``data.dataset`` to them and :func:`build_manifest` runs the right one (with caching). Durations
come from the file headers only. A file whose header cannot be read is kept in the manifest with
``sample_rate = 0`` (and a warning), so ``scoreaudio data check`` can list it; datasets skip it.

Splits (train / valid / test):

* **ljspeech** (LJSpeech-1.1) — by chapter, the number after ``LJ``: test = LJ001-LJ002 (~370
  clips), valid = LJ003 (~230 clips), train = LJ004-LJ050. Whole chapters, so no passage is
  split across sets. Speaker ``LJ``; text = the normalised transcript (3rd column, else the 2nd).
* **vctk** (0.92 ``wav48_silence_trimmed/pNNN/pNNN_NNN_mic1.flac``; or the older VCTK-Corpus
  ``wav48/pNNN/pNNN_NNN.wav``) — held-out speakers: valid = p226, p287; test = p232, p257 (the
  VoiceBank-DEMAND valid and test speakers, so a VCTK model can be scored on VoiceBank-DEMAND without
  speaker overlap); the rest train. 0.92: microphone 1 only (mic2 is a second recording of the
  same utterance).
* **voicebank_demand** — pairs by file name (path = clean, noisy_path = noisy); test = the
  testset (p232, p257); valid = training speakers p226 and p287 (as common SGMSE setups); train =
  the other training speakers. Both the 28spk and 56spk trainsets are used when present. Transcripts
  from ``trainset_*_txt/`` / ``testset_txt/`` when present.
* **librispeech** / **libritts** — the subsets in ``data.train_subsets`` / ``valid_subsets`` /
  ``test_subsets``; defaults train-clean-100 / dev-clean / test-clean.
* **sc09** (Speech Commands v0.02, the ten digits) — ``validation_list.txt`` / ``testing_list.txt``
  define valid / test, the rest is train; speaker = the hash before ``_nohash_``.
* **folder** — every audio file below the root (recursive); a file is test when
  ``u < data.test_fraction``, valid when ``u < test_fraction + valid_fraction``, else train, where
  ``u`` is the first 8 bytes of sha1(relative POSIX path) as a fraction of 2**64 — stable across
  machines and under adding files. Speaker = the first sub-folder, or None.
* **synthetic** — the built-in corpus (:mod:`.synthetic`): its own fixed train/valid/test by the
  ``data.synthetic`` counts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ..audio.io import AUDIO_EXTS, audio_info, find_audio_files
from ..errors import AudioError, DataError
from .manifest import SPLITS, AudioMeta, read_manifest, write_manifest
from .synthetic import corpus_key, default_cache_root, materialize_corpus

log = logging.getLogger(__name__)

#: Bump when a reader's output changes: cached manifests of older versions are ignored.
MANIFEST_VERSION = 1

LJSPEECH_TEST_CHAPTERS = (1, 2)
LJSPEECH_VALID_CHAPTERS = (3,)
VCTK_VALID_SPEAKERS = ("p226", "p287")
VCTK_TEST_SPEAKERS = ("p232", "p257")
VOICEBANK_VALID_SPEAKERS = ("p226", "p287")
LIBRI_DEFAULT_SUBSETS = {"train": ["train-clean-100"], "valid": ["dev-clean"], "test": ["test-clean"]}
SC09_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

#: What each reader expects below its root (used in error messages).
EXPECTED = {
    "ljspeech": "{root}/metadata.csv and {root}/wavs/",
    "vctk": "{root}/wav48_silence_trimmed/ (VCTK 0.92) or {root}/wav48/ (VCTK-Corpus), with {root}/txt/",
    "voicebank_demand": "{root}/clean_trainset_28spk_wav/, noisy_trainset_28spk_wav/, clean_testset_wav/ "
    "and noisy_testset_wav/",
    "librispeech": "subset folders like {root}/train-clean-100/<speaker>/<chapter>/*.flac",
    "libritts": "subset folders like {root}/train-clean-100/<speaker>/<chapter>/*.wav",
    "sc09": "{root}/zero/ ... {root}/nine/ with validation_list.txt and testing_list.txt",
    "folder": "audio files (.wav .flac .ogg .mp3) below {root}",
    "synthetic": "a writable folder",
}


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------
def _hint(data_cfg) -> str:
    env = getattr(data_cfg, "root_env", None)
    return f"set data.root=PATH or the environment variable {env}" if env else "set data.root=PATH"


def root_error(name: str, root, data_cfg) -> DataError:
    """The one-line 'dataset root not found' error of a reader."""
    expected = EXPECTED.get(name, "the corpus files").format(root=root)
    return DataError(f"{name}: dataset root not found at '{root}' (expected {expected}); {_hint(data_cfg)}")


def _first(names: Sequence[str], k: int = 3) -> str:
    shown = ", ".join(str(n) for n in list(names)[:k])
    return shown + (", ..." if len(names) > k else "")


class _Scanner:
    """Makes AudioMeta from files (header only); remembers the files whose header failed."""

    def __init__(self, name: str):
        self.name = name
        self.unreadable: List[str] = []

    def meta(self, path: Path, id: str, split: str, speaker=None, text=None, noisy_path=None) -> AudioMeta:
        try:
            frames, rate, _ = audio_info(path)
            duration = frames / rate if rate > 0 else 0.0
        except AudioError:
            self.unreadable.append(str(path))
            frames, rate, duration = 0, 0, 0.0
        return AudioMeta(
            id=id,
            path=str(path),
            duration=round(float(duration), 6),
            sample_rate=int(rate),
            speaker=speaker,
            text=text,
            split=split,
            noisy_path=None if noisy_path is None else str(noisy_path),
        )

    def report(self) -> None:
        if self.unreadable:
            log.warning(
                "%s: %d file(s) could not be read and will be skipped (first: %s); "
                "run `scoreaudio data check` for the list",
                self.name,
                len(self.unreadable),
                _first(self.unreadable),
            )


def _audio_files(folder: Path, exts: Iterable[str]) -> List[Path]:
    """Audio files directly in ``folder`` with one of ``exts`` (case-insensitive), sorted."""
    exts = tuple(e.lower() for e in exts)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts
    )


def _subdirs(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_text(path: Path) -> Optional[str]:
    try:
        return " ".join(path.read_text(encoding="utf-8", errors="replace").split()) or None
    except OSError:
        return None


# ------------------------------------------------------------------------------------------
# Readers
# ------------------------------------------------------------------------------------------
_LJ_ID = re.compile(r"^LJ(\d{3})-\d{4}$")


def read_ljspeech(root: Path, data_cfg) -> List[AudioMeta]:
    """LJSpeech-1.1: ``metadata.csv`` (``id|text|normalized text``, no header) and ``wavs/<id>.wav``.

    Split by chapter: test = LJ001-LJ002, valid = LJ003, train = the rest (ids that do not look
    like ``LJnnn-nnnn`` go to train).
    """
    root = Path(root)
    csv, wavs = root / "metadata.csv", root / "wavs"
    if not csv.is_file() or not wavs.is_dir():
        raise root_error("ljspeech", root, data_cfg)
    scan = _Scanner("ljspeech")
    metas, missing = [], []
    with csv.open(encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n\r")
            if not line.strip():
                continue
            parts = line.split("|")  # quotes are not special in LJSpeech
            if len(parts) < 2 or not parts[0]:
                raise DataError(
                    f"ljspeech: {csv} line {lineno} is not 'id|text|normalized text'; "
                    f"re-download metadata.csv"
                )
            uid = parts[0].strip()
            text = (parts[2] if len(parts) > 2 and parts[2].strip() else parts[1]).strip() or None
            wav = wavs / f"{uid}.wav"
            if not wav.is_file():
                missing.append(wav.name)
                continue
            m = _LJ_ID.match(uid)
            chapter = int(m.group(1)) if m else -1
            split = (
                "test"
                if chapter in LJSPEECH_TEST_CHAPTERS
                else "valid"
                if chapter in LJSPEECH_VALID_CHAPTERS
                else "train"
            )
            metas.append(scan.meta(wav, uid, split, speaker="LJ", text=text))
    if missing:
        raise DataError(
            f"ljspeech: {len(missing)} clip(s) listed in metadata.csv are missing from "
            f"{wavs} ({_first(missing)}); re-extract LJSpeech-1.1"
        )
    scan.report()
    return metas


def read_vctk(root: Path, data_cfg) -> List[AudioMeta]:
    """VCTK 0.92 (``wav48_silence_trimmed/<spk>/<spk>_<n>_mic1.flac``, mic1 only) or the older
    VCTK-Corpus (``wav48/<spk>/<spk>_<n>.wav``), transcripts from ``txt/<spk>/<spk>_<n>.txt``.

    Speaker-held-out split: valid = p226, p287; test = p232, p257; train = every other speaker.
    """
    root = Path(root)
    if (root / "wav48_silence_trimmed").is_dir():
        audio_root, pattern = root / "wav48_silence_trimmed", re.compile(r"^(.+)_mic1$")
        exts = (".flac", ".wav")
    elif (root / "wav48").is_dir():
        audio_root, pattern = root / "wav48", re.compile(r"^(.+)$")
        exts = (".wav", ".flac")
    else:
        raise root_error("vctk", root, data_cfg)
    scan = _Scanner("vctk")
    metas = []
    for spk_dir in _subdirs(audio_root):
        spk = spk_dir.name
        split = "valid" if spk in VCTK_VALID_SPEAKERS else "test" if spk in VCTK_TEST_SPEAKERS else "train"
        for p in _audio_files(spk_dir, exts):
            m = pattern.match(p.stem)
            if not m:  # 0.92: mic2 recordings (and anything else) are not used
                continue
            uid = m.group(1)
            text = _read_text(root / "txt" / spk / f"{uid}.txt")
            metas.append(scan.meta(p, uid, split, speaker=spk, text=text))
    if not metas:
        raise DataError(
            f"vctk: no audio found under '{audio_root}' (expected <speaker>/<speaker>_NNN"
            f"{'_mic1.flac' if audio_root.name.endswith('trimmed') else '.wav'}); "
            f"re-extract VCTK or {_hint(data_cfg)}"
        )
    scan.report()
    return metas


def _pair_folder(clean: Path, noisy: Path) -> Tuple[List[Tuple[Path, Path]], List[str], List[str]]:
    cf = {p.name: p for p in _audio_files(clean, (".wav", ".flac"))}
    nf = {p.name: p for p in _audio_files(noisy, (".wav", ".flac"))}
    pairs = [(cf[n], nf[n]) for n in sorted(cf.keys() & nf.keys())]
    return pairs, sorted(cf.keys() - nf.keys()), sorted(nf.keys() - cf.keys())


def read_voicebank_demand(root: Path, data_cfg) -> List[AudioMeta]:
    """VoiceBank-DEMAND: clean/noisy folders paired by file name (path = clean, noisy_path = noisy).

    Train = ``clean_trainset_{28,56}spk_wav`` except speakers p226 and p287 (valid);
    test = ``clean_testset_wav``. A file missing its partner is a DataError (not dropped silently).
    """
    root = Path(root)
    groups = []  # (clean folder, noisy folder, text folder, is_test)
    for tag in ("28spk", "56spk"):
        groups.append(
            (
                root / f"clean_trainset_{tag}_wav",
                root / f"noisy_trainset_{tag}_wav",
                root / f"trainset_{tag}_txt",
                False,
            )
        )
    groups.append((root / "clean_testset_wav", root / "noisy_testset_wav", root / "testset_txt", True))
    present = [g for g in groups if g[0].is_dir() or g[1].is_dir()]
    if not any(not g[3] for g in present):
        raise root_error("voicebank_demand", root, data_cfg)
    scan = _Scanner("voicebank_demand")
    metas, seen = [], set()
    lonely_clean: List[str] = []
    lonely_noisy: List[str] = []
    for clean, noisy, txt, is_test in present:
        for have, lack in ((clean, noisy), (noisy, clean)):
            if have.is_dir() and not lack.is_dir():
                raise DataError(
                    f"voicebank_demand: found '{have}' but not its partner folder '{lack}'; "
                    f"extract both archives into {root}"
                )
        pairs, only_clean, only_noisy = _pair_folder(clean, noisy)
        lonely_clean += [f"{clean.name}/{n}" for n in only_clean]
        lonely_noisy += [f"{noisy.name}/{n}" for n in only_noisy]
        for c, n in pairs:
            uid = c.stem
            if uid in seen:
                continue
            seen.add(uid)
            spk = uid.split("_")[0]
            split = "test" if is_test else "valid" if spk in VOICEBANK_VALID_SPEAKERS else "train"
            text = _read_text(txt / f"{uid}.txt") if txt.is_dir() else None
            metas.append(scan.meta(c, uid, split, speaker=spk, text=text, noisy_path=n))
    lonely = lonely_clean + lonely_noisy
    if lonely:
        raise DataError(
            f"voicebank_demand: {len(lonely)} file(s) have no clean/noisy partner "
            f"({_first(lonely)}); re-extract the archives or remove the unpaired files"
        )
    if not metas:
        raise DataError(f"voicebank_demand: no .wav pairs found under '{root}'; re-extract the archives")
    scan.report()
    return metas


def _libri_subsets(name: str, data_cfg) -> Dict[str, Tuple[List[str], bool]]:
    out = {}
    for split in SPLITS:
        given = list(getattr(data_cfg, f"{split}_subsets", None) or [])
        out[split] = (given, True) if given else (list(LIBRI_DEFAULT_SUBSETS[split]), False)
    return out


def _read_libri(
    name: str,
    root: Path,
    data_cfg,
    exts: Tuple[str, ...],
    text_of: Callable[[Path, Dict[Path, Dict[str, str]]], Optional[str]],
) -> List[AudioMeta]:
    root = Path(root)
    available = [d.name for d in _subdirs(root)] if root.is_dir() else []
    subsets = _libri_subsets(name, data_cfg)
    if not any((root / s).is_dir() for names, _ in subsets.values() for s in names):
        if not any(re.match(r"^(train|dev|test)-", a) for a in available):
            raise root_error(name, root, data_cfg)
    scan = _Scanner(name)
    cache: Dict[Path, Dict[str, str]] = {}
    metas = []
    for split, (names, explicit) in subsets.items():
        for sub in names:
            d = root / sub
            if not d.is_dir():
                if explicit or split == "train":
                    key = f"data.{split}_subsets"
                    raise DataError(
                        f"{name}: subset '{sub}' not found under '{root}' (available: "
                        f"{', '.join(available) or 'none'}); set {key}=[...] or add the subset"
                    )
                log.warning(
                    "%s: default %s subset '%s' not found under %s; the %s split is empty "
                    "(set data.%s_subsets)",
                    name,
                    split,
                    sub,
                    root,
                    split,
                    split,
                )
                continue
            for spk_dir in _subdirs(d):
                for chap_dir in _subdirs(spk_dir):
                    for p in _audio_files(chap_dir, exts):
                        metas.append(
                            scan.meta(p, p.stem, split, speaker=spk_dir.name, text=text_of(p, cache))
                        )
    if not metas:
        raise DataError(
            f"{name}: no audio files in the selected subsets under '{root}' "
            f"(expected <subset>/<speaker>/<chapter>/*{exts[0]})"
        )
    scan.report()
    return metas


def _librispeech_text(p: Path, cache: Dict[Path, Dict[str, str]]) -> Optional[str]:
    chap = p.parent
    table = cache.get(chap)
    if table is None:
        table = {}
        for trans in chap.glob("*.trans.txt"):
            for line in trans.read_text(encoding="utf-8", errors="replace").splitlines():
                uid, _, text = line.strip().partition(" ")
                if uid:
                    table[uid] = text.strip()
        cache[chap] = table
    return table.get(p.stem) or None


def _libritts_text(p: Path, cache) -> Optional[str]:
    for kind in ("normalized", "original"):
        t = p.with_name(f"{p.stem}.{kind}.txt")
        if t.is_file():
            return _read_text(t)
    return None


def read_librispeech(root: Path, data_cfg) -> List[AudioMeta]:
    """LibriSpeech: ``<subset>/<speaker>/<chapter>/*.flac`` with ``<speaker>-<chapter>.trans.txt``.

    Splits are subsets: data.train_subsets / valid_subsets / test_subsets (defaults
    train-clean-100 / dev-clean / test-clean).
    """
    return _read_libri("librispeech", root, data_cfg, (".flac", ".wav"), _librispeech_text)


def read_libritts(root: Path, data_cfg) -> List[AudioMeta]:
    """LibriTTS: ``<subset>/<speaker>/<chapter>/<id>.wav`` with ``<id>.normalized.txt`` (or
    ``.original.txt``) beside it. Splits as for LibriSpeech."""
    return _read_libri("libritts", root, data_cfg, (".wav", ".flac"), _libritts_text)


def read_sc09(root: Path, data_cfg) -> List[AudioMeta]:
    """Speech Commands v0.02 restricted to the digits zero..nine (SC09).

    ``validation_list.txt`` / ``testing_list.txt`` (paths like ``zero/0a2b400e_nohash_0.wav``)
    define valid / test; the rest is train. Speaker = the hash before ``_nohash_``; text = the word.
    """
    root = Path(root)
    if not any((root / w).is_dir() for w in SC09_WORDS):
        raise root_error("sc09", root, data_cfg)
    lists = {}
    for split, fname in (("valid", "validation_list.txt"), ("test", "testing_list.txt")):
        f = root / fname
        if not f.is_file():
            raise DataError(
                f"sc09: '{f}' not found; it ships with Speech Commands v0.02 (re-extract the "
                f"archive into {root})"
            )
        lists[split] = {ln.strip() for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()}
    scan = _Scanner("sc09")
    metas = []
    for word in SC09_WORDS:
        for p in _audio_files(root / word, (".wav",)):
            rel = f"{word}/{p.name}"
            split = "valid" if rel in lists["valid"] else "test" if rel in lists["test"] else "train"
            spk = p.stem.split("_nohash_")[0]
            metas.append(scan.meta(p, f"{word}_{p.stem}", split, speaker=spk, text=word))
    if not metas:
        raise DataError(
            f"sc09: no .wav files in the digit folders under '{root}'; re-extract Speech Commands"
        )
    scan.report()
    return metas


def hash_split(rel_path: str, valid_fraction: float, test_fraction: float) -> str:
    """The folder corpus' split of a file, from sha1 of its relative POSIX path (stable)."""
    u = int.from_bytes(hashlib.sha1(rel_path.encode("utf-8")).digest()[:8], "big") / 2.0**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + valid_fraction:
        return "valid"
    return "train"


def read_folder(root: Path, data_cfg) -> List[AudioMeta]:
    """Every audio file below ``root`` (recursive; .wav .flac .ogg .mp3), split by path hash.

    id = the relative path without extension; speaker = the first sub-folder (None for files
    directly in the root). See :func:`hash_split` for the split; ``data.split_by=speaker`` hashes
    the speaker folder instead of the file, so valid and test hold voices training never heard.
    """
    root = Path(root)
    if not root.is_dir():
        raise root_error("folder", root, data_cfg)
    vf = float(getattr(data_cfg, "valid_fraction", 0.05))
    tf = float(getattr(data_cfg, "test_fraction", 0.05))
    if vf < 0 or tf < 0 or vf + tf >= 1:
        raise DataError(
            f"folder: need valid_fraction, test_fraction >= 0 with a sum below 1, got "
            f"{vf} and {tf}; fix data.valid_fraction / data.test_fraction"
        )
    split_by = str(getattr(data_cfg, "split_by", "file"))
    if split_by not in ("file", "speaker"):
        raise DataError(f"folder: data.split_by={split_by!r} is not one of: file, speaker")
    files = find_audio_files(root)
    if not files:
        raise DataError(
            f"folder: no audio files ({' '.join(AUDIO_EXTS)}) found under '{root}'; "
            f"point data.root at a folder of recordings"
        )
    scan = _Scanner("folder")
    metas = []
    for p in files:
        rel = p.relative_to(root)
        rel_posix = rel.as_posix()
        speaker = rel.parts[0] if len(rel.parts) > 1 else None
        uid = rel.with_suffix("").as_posix()
        key = speaker if split_by == "speaker" and speaker is not None else rel_posix
        metas.append(scan.meta(p, uid, hash_split(key, vf, tf), speaker=speaker))
    scan.report()
    return metas


def read_synthetic(root: Path, data_cfg) -> List[AudioMeta]:
    """The built-in corpus: materialised (once) under ``root/synthetic-<hash>/`` and read back.

    Layout ``<split>/spkNN/<split>_NNNNN.wav``; the split is the top folder.
    """
    dest = materialize_corpus(Path(root), data_cfg.synthetic, int(data_cfg.sample_rate))
    scan = _Scanner("synthetic")
    metas = []
    for split in SPLITS:
        d = dest / split
        if not d.is_dir():
            continue
        for spk_dir in _subdirs(d):
            for p in _audio_files(spk_dir, (".wav",)):
                metas.append(scan.meta(p, p.stem, split, speaker=spk_dir.name))
    scan.report()
    return metas


READERS: Dict[str, Callable[[Path, object], List[AudioMeta]]] = {
    "synthetic": read_synthetic,
    "ljspeech": read_ljspeech,
    "vctk": read_vctk,
    "voicebank_demand": read_voicebank_demand,
    "librispeech": read_librispeech,
    "libritts": read_libritts,
    "sc09": read_sc09,
    "folder": read_folder,
}


# ------------------------------------------------------------------------------------------
# Manifest building and caching
# ------------------------------------------------------------------------------------------
def resolve_root(cfg) -> Path:
    """The folder the reader of ``cfg.data.dataset`` reads (synthetic: where it is materialised).

    Raises:
        DataError: the dataset needs a root and none is set, or it does not exist.
    """
    from ..config import dataset_root

    name = cfg.data.dataset
    given = dataset_root(cfg)
    if name == "synthetic":
        return Path(given).expanduser() if given else default_cache_root()
    if not given:
        env = cfg.data.root_env
        where = f"data.root is unset and ${env} is empty" if env else "data.root is unset"
        raise DataError(f"{name}: no dataset root given ({where}); {_hint(cfg.data)}")
    root = Path(given).expanduser()
    if not root.is_dir():
        raise root_error(name, root, cfg.data)
    return root


def _listing_signature(root: Path) -> Tuple[int, int]:
    """(number of files, newest folder mtime in ns) below root: changes when files are added,
    removed or renamed, at the cost of one directory listing per folder (no per-file stat)."""
    n, newest = 0, 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        n += len(filenames)
        try:
            newest = max(newest, os.stat(dirpath).st_mtime_ns)
        except OSError:
            pass
    return n, newest


def _settings(cfg) -> Dict[str, object]:
    d = cfg.data
    s: Dict[str, object] = {"version": MANIFEST_VERSION, "dataset": d.dataset}
    if d.dataset in ("librispeech", "libritts"):
        s.update(train=list(d.train_subsets), valid=list(d.valid_subsets), test=list(d.test_subsets))
    if d.dataset == "folder":
        s.update(
            valid_fraction=float(d.valid_fraction),
            test_fraction=float(d.test_fraction),
            split_by=str(d.split_by),
        )
    if d.dataset == "synthetic":
        s.update(corpus=corpus_key(d.synthetic, int(d.sample_rate)))
    return s


def _cap(metas: List[AudioMeta], k: Optional[int]) -> List[AudioMeta]:
    """At most k metas, evenly spaced through the (id-sorted) list so speakers stay mixed."""
    if k is None or k >= len(metas):
        return metas
    if k <= 0:
        return []
    n = len(metas)
    return [metas[(i * n) // k] for i in range(k)]


def build_manifest(cfg, cache_dir: Optional[Path] = None) -> Dict[str, List[AudioMeta]]:
    """Scan the corpus of ``cfg.data`` into ``{"train": [...], "valid": [...], "test": [...]}``.

    Each split is sorted by id and capped by ``data.max_files`` (evenly spaced picks). With
    ``data.manifest_cache`` and a ``cache_dir`` (the run directory), the scan is cached as
    ``manifest-<dataset>-<key>.jsonl``; the key hashes the dataset, root, reader settings and a
    cheap listing signature of the root (file count + newest folder mtime), so adding, removing
    or renaming files rescans. (Rewriting a file in place keeps the cached durations.)

    Raises:
        DataError: unknown dataset, missing/wrong root (one line: dataset, path, how to set it),
            an empty corpus, or a reader's layout error.
    """
    name = cfg.data.dataset
    reader = READERS.get(name)
    if reader is None:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(READERS)}")
    root = resolve_root(cfg)
    scan_root = root
    if name == "synthetic":
        scan_root = materialize_corpus(root, cfg.data.synthetic, int(cfg.data.sample_rate))

    cache_file = None
    if cache_dir is not None and bool(cfg.data.manifest_cache):
        key = dict(_settings(cfg), root=str(scan_root.resolve()), listing=_listing_signature(scan_root))
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        cache_file = Path(cache_dir) / f"manifest-{name}-{digest}.jsonl"
    metas: Optional[List[AudioMeta]] = None
    if cache_file is not None and cache_file.is_file():
        try:
            metas = read_manifest(cache_file)
        except DataError:
            log.warning("ignoring unreadable manifest cache %s", cache_file)
    if metas is None:
        metas = reader(root, cfg.data)
        if cache_file is not None:
            for old in cache_file.parent.glob(f"manifest-{name}-*.jsonl"):
                if old != cache_file:
                    old.unlink(missing_ok=True)
            write_manifest(cache_file, metas)
    if not metas:
        raise DataError(f"{name}: no audio found under '{root}'; check data.root")
    out: Dict[str, List[AudioMeta]] = defaultdict(list)
    for m in metas:
        out[m.split].append(m)
    cap = cfg.data.max_files
    return {
        s: _cap(sorted(out.get(s, []), key=lambda m: m.id), None if cap is None else int(cap)) for s in SPLITS
    }
