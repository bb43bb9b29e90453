"""Self-describing checkpoints: atomic writes, safe loads, and finding the newest run.

A checkpoint is a plain dict of tensors and primitives (loadable with
``torch.load(weights_only=True)``, so opening one never runs code):

    format            "scoreaudio-checkpoint"
    format_version    1
    package_version   scoreaudio version that wrote it
    step              optimiser steps done
    config            the resolved config as a plain dict (rebuilds everything else)
    representation    Representation.to_dict()
    sigmas            the run's noise levels, NoiseLevels.to_dict(): {"sigma_min", "sigma_max",
                      "num_levels", "sigma_data"[, "dim"][, "noise_map_scale"]} (scoreaudio.noise)
    model, ema        state dicts (live and EMA weights)
    optimizer         optimiser state (for resuming)
    rng               generator states for resuming bit-exactly
    metrics           the last logged metrics
"""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..errors import CheckpointError, TrainingError
from .files import atomic_write

FORMAT = "scoreaudio-checkpoint"
FORMAT_VERSION = 1
LAST = "last.pt"


def save_checkpoint(path: Union[str, Path], payload: Dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically: a temp file in the same folder, fsync, rename.

    A crash or a full disk leaves the previous file intact. Raises TrainingError with a clear
    message when the folder is not writable or the disk is full. torch's zip writer reports a
    full disk as a RuntimeError, not an OSError ("unexpected pos ...", "... file write failed"),
    so those count as a full disk too.
    """
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    try:
        atomic_write(path, lambda tmp: torch.save(payload, tmp), fsync=True)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise _disk_full(path) from None
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise TrainingError(
                f"cannot write checkpoint to {path.parent}: {e.strerror}; choose a writable train.run_dir"
            ) from None
        raise
    except RuntimeError as e:
        if not any(m in str(e).lower() for m in _WRITE_FAILED):
            raise
        raise _disk_full(path) from None
    return path


#: What torch.save's zip writer says when a write comes up short (a full disk, a quota).
_WRITE_FAILED = ("unexpected pos", "file write failed", "pytorchstreamwriter failed")


def _disk_full(path: Path) -> TrainingError:
    """The one-line error for a full disk; it names the checkpoint a resume will start from (the
    atomic write left it untouched), or says there is none yet."""
    last = path.parent / LAST
    previous = (
        f"the last good checkpoint {last} is intact" if last.is_file() else "no checkpoint was written yet"
    )
    return TrainingError(
        f"disk full while writing checkpoint {path}; {previous}; free space and "
        f"start again with train.resume=auto"
    )


def load_checkpoint_dict(
    path: Union[str, Path], map_location: Union[str, torch.device] = "cpu"
) -> Dict[str, Any]:
    """Load a checkpoint file safely (``weights_only=True``) and check that it is one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated, corrupt, or not a torch file at all
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:160]}); pass another file with --checkpoint"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a scoreaudio checkpoint (no '{FORMAT}' header)")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer scoreaudio (format "
            f"{ckpt['format_version']}); upgrade scoreaudio to read it"
        )
    return ckpt


def newest_run(runs_root: Union[str, Path] = "runs") -> Optional[Path]:
    """The run directory under ``runs_root`` whose last.pt is newest, or None."""
    root = Path(runs_root)
    if not root.is_dir():
        return None
    candidates = [p.parent for p in root.glob(f"*/{LAST}")]
    return max(candidates, key=lambda d: (d / LAST).stat().st_mtime) if candidates else None


def resolve_checkpoint(checkpoint: Union[str, Path, None], runs_root: Union[str, Path] = "runs") -> Path:
    """Turn a .pt path, a run directory or None (newest run under ``runs_root``) into a file path."""
    if checkpoint is None:
        run = newest_run(runs_root)
        if run is None:
            raise CheckpointError(
                f"no checkpoint given and no run found (looked for {Path(runs_root)}/*/{LAST}); "
                f"train one with 'python -m scoreaudio.train recipes/quickstart.yaml' "
                f"or pass --checkpoint PATH"
            )
        return run / LAST
    path = Path(checkpoint)
    if path.is_dir():
        if (path / LAST).is_file():
            return path / LAST
        raise CheckpointError(f"{path} is a folder without {LAST}; pass a run directory or a .pt file")
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path


def file_sha256(path: Union[str, Path], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file (recorded in manifests so outputs name their exact checkpoint)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
