"""Atomic file writes: a temporary name beside the target, then one rename.

A crash, a kill or a full disk never leaves a half-written file under the target's name, and the
previous version survives until the new one is complete.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable, List, Optional, Tuple, Union

#: The temporary names :func:`atomic_write` uses: ``.NAME.PID.HEX.tmp``.
TMP_GLOB = ".*.*.tmp"


def atomic_write(path: Union[str, Path], write: Callable[[str], None], *, fsync: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then rename it into place.

    ``write`` creates the temporary file itself (plain ``open``), so it gets the usual permissions
    (umask), unlike ``tempfile.mkstemp``'s private 0600 files. ``fsync=True`` flushes it to disk
    before the rename (checkpoints). Creates missing parent folders.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(str(tmp))
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_leftover_tmp(folder: Union[str, Path]) -> List[Path]:
    """Delete the temporary files of :func:`atomic_write` that a killed process left in ``folder``
    (only call this while no other process can be writing there); returns what was removed."""
    removed = []
    for p in Path(folder).glob(TMP_GLOB):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def file_id(path: Path) -> Optional[Tuple[int, int]]:
    """(device, inode) of an existing file, None otherwise: two paths are one file, also through
    symlinks, hard links and ``..``, when their ids are equal."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino
