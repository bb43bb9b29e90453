"""The run directory: created, locked against a second training, refused when a start would
replace a run, cleaned of an interrupted write's temporary files; and where a resume starts."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Dict, Optional, Tuple

from omegaconf import DictConfig

from .errors import ConfigError, TrainingError
from .utils.checkpoint import LAST
from .utils.distributed import Dist, broadcast
from .utils.files import remove_leftover_tmp
from .utils.logging import log

__all__ = [
    "RUN_LOCK",
    "lock_run_dir",
    "make_run_dir",
    "refuse_to_replace",
    "remove_if_unused",
    "resume_path",
    "unlock_run_dir",
]

#: The lock file in a run directory: rank 0 of the training that writes there holds an
#: exclusive ``flock`` on it (and its PID is in it) for the whole run.
RUN_LOCK = ".lock"
_HELD_LOCKS: Dict[Path, int] = {}  # run dir -> fd of its lock file, held by this process


def _close_inherited_locks() -> None:
    # a forked child (a DataLoader worker) shares the lock's open file description: close its
    # copy, so the lock goes when the training does, not when its last worker exits
    for fd in _HELD_LOCKS.values():
        os.close(fd)
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def lock_run_dir(run_dir: Path) -> None:
    """Take the run directory's exclusive lock, so a second training into the same folder stops
    with the first one's PID instead of overwriting its checkpoints and interleaving its metrics.

    The kernel drops a ``flock`` when its holder dies (even by kill -9), so a lock file left by a
    dead process never blocks; the PID written into it only names the holder in the error.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        return
    path = run_dir / RUN_LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise TrainingError(
                f"{run_dir} is in use by another training (PID {holder}); let it finish or "
                f"stop it, or set train.run_dir=ANOTHER_FOLDER"
            ) from None
        except OSError as e:  # e.g. a file system without flock
            os.close(fd)
            log(f"note: cannot lock {path} ({e.strerror}); nothing stops a second training into this run dir")
            return
        try:  # the holder we waited on may have removed the file meanwhile: lock the one on disk
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD_LOCKS[run_dir] = fd


def unlock_run_dir(run_dir: Path) -> None:
    """Release the lock :func:`lock_run_dir` took and remove its file (while still holding it,
    which the inode check there makes safe), so a finished run leaves no lock file behind."""
    fd = _HELD_LOCKS.pop(run_dir, None)
    if fd is not None:
        (run_dir / RUN_LOCK).unlink(missing_ok=True)
        os.close(fd)


def refuse_to_replace(cfg: DictConfig, run_dir: Path) -> None:
    """``train.resume=never`` in a folder that holds a run would replace its last.pt and empty its
    metrics.jsonl: only with ``train.overwrite=true`` (old numbered checkpoints stay, named)."""
    if cfg.train.resume != "never":
        return
    held = sorted(run_dir.glob("*.pt"))
    if not held:
        return
    if not cfg.train.overwrite:
        raise ConfigError(
            f"{run_dir} already holds a run ({held[-1].name}); train.resume=never would "
            f"replace its checkpoints and metrics: pass train.overwrite=true to start it "
            f"over, train.resume=auto to continue it, or another train.run_dir"
        )
    numbered = [p.name for p in held if p.name != LAST]
    log(
        f"train.overwrite=true: starting {run_dir} over"
        + (f"; its old numbered checkpoints stay until replaced: {', '.join(numbered)}" if numbered else "")
    )


def make_run_dir(cfg: DictConfig, d: Dist) -> Tuple[Path, bool]:
    """The run directory: created, checked writable and locked by rank 0 (:func:`lock_run_dir`,
    released by :func:`train` on the way out); a start that would replace an existing run is
    refused here, before any data is read. Every rank raises rank 0's error, so none waits on a
    barrier rank 0 will never reach. Temporary files a killed run left behind are removed once
    the lock is held (no other writer is alive then). Returns the folder and whether this call
    created it (see :func:`remove_if_unused`)."""
    if cfg.train.run_dir:
        run_dir = Path(cfg.train.run_dir)
    else:
        stamp = broadcast(datetime.now().strftime("%Y%m%d-%H%M%S"), d)
        run_dir = Path(cfg.train.runs_root) / f"{cfg.name}-{stamp}"
    problem: Optional[Exception] = None
    created = not run_dir.exists()
    if d.main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            probe = run_dir / ".write_test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            problem = TrainingError(
                f"cannot write to run directory {run_dir}: {e.strerror}; set train.run_dir=A_WRITABLE_FOLDER"
            )
        if problem is None:
            try:
                lock_run_dir(run_dir)
                refuse_to_replace(cfg, run_dir)
                removed = remove_leftover_tmp(run_dir)
                if removed:
                    log(f"removed {len(removed)} temporary file(s) an interrupted write left in {run_dir}")
            except (ConfigError, TrainingError) as e:
                unlock_run_dir(run_dir)
                problem = e
    problem = broadcast(problem, d)
    created = broadcast(created, d)
    if problem is not None:
        if created and d.main:
            remove_if_unused(run_dir)
        raise problem
    return run_dir, created


#: What a start writes before its first checkpoint: the lock, the corpus manifest cache, the
#: config, the sigma settings and the first metric rows.
START_FILES = (RUN_LOCK, "manifest-*.jsonl", "config.yaml", "sigmas.json", "metrics*.jsonl", "metrics*.csv")


def remove_if_unused(run_dir: Path) -> None:
    """Remove a run directory this start created when the start failed before its first
    checkpoint (on its data or config): only the start's own files are in it then
    (:data:`START_FILES`), and a folder with anything else is left as it is."""
    try:
        entries = list(run_dir.iterdir()) if run_dir.is_dir() else []
        if not run_dir.is_dir() or not all(
            p.is_file() and any(p.match(g) for g in START_FILES) for p in entries
        ):
            return
        for p in entries:
            p.unlink(missing_ok=True)
        run_dir.rmdir()
    except OSError:
        pass  # e.g. a file appeared meanwhile: leave the folder


def resume_path(cfg: DictConfig, run_dir: Path) -> Optional[Path]:
    if cfg.train.resume == "never":
        return None
    if cfg.train.resume == "auto":
        p = run_dir / LAST
        return p if p.is_file() else None
    p = Path(cfg.train.resume)
    if not p.is_file():
        raise ConfigError(
            f"train.resume={cfg.train.resume}: no such checkpoint; use auto, never or a .pt path"
        )
    return p
