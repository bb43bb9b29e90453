"""Manifests: one :class:`AudioMeta` per utterance, stored as JSON Lines (one object a line)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, List, Optional

from ..errors import DataError
from ..utils.files import atomic_write

SPLITS = ("train", "valid", "test")


@dataclass
class AudioMeta:
    """One utterance of a corpus."""

    id: str  # unique within the corpus (usually the file stem)
    path: str  # the (clean) audio file
    duration: float  # seconds, from the file header; 0.0 when the header could not be read
    sample_rate: int  # the file's rate, Hz; 0 when the header could not be read
    speaker: Optional[str] = None  # speaker label, when the corpus has one
    text: Optional[str] = None  # transcript, when the corpus has one
    split: str = "train"  # train | valid | test
    noisy_path: Optional[str] = None  # the noisy partner, for paired corpora (VoiceBank-DEMAND)

    @property
    def readable(self) -> bool:
        """False when the header could not be read when the manifest was built."""
        return self.sample_rate > 0


_FIELDS = {f.name for f in fields(AudioMeta)}


def write_manifest(path, metas: Iterable[AudioMeta]) -> Path:
    """Write metas as JSON Lines, atomically (temp file then rename); creates parent folders."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for m in metas:
                f.write(json.dumps(asdict(m), ensure_ascii=False) + "\n")

    return atomic_write(path, write)


def read_manifest(path) -> List[AudioMeta]:
    """Read a JSON Lines manifest written by :func:`write_manifest`.

    Raises:
        DataError: missing file, or a line that is not a valid AudioMeta (names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest not found: '{path}'; build it again (scoreaudio data info RECIPE)")
    out: List[AudioMeta] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
                unknown = set(d) - _FIELDS
                if unknown:
                    raise ValueError(f"unknown fields {sorted(unknown)}")
                m = AudioMeta(**d)
            except (ValueError, TypeError) as e:
                raise DataError(
                    f"manifest '{path}' line {lineno} is not a valid entry ({e}); "
                    f"delete the file to rebuild it"
                ) from None
            if m.split not in SPLITS:
                raise DataError(
                    f"manifest '{path}' line {lineno}: split {m.split!r} is not one of {', '.join(SPLITS)}"
                )
            out.append(m)
    return out
