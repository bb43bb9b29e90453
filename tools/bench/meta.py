"""What a result was measured on: date, machine, CPU model, torch, git revision, load average."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional

import torch

from bench import REPO

if TYPE_CHECKING:
    from bench.settings import Settings


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision() -> str:
    """The checkout's commit, 12 hex digits (a length that stays unique as history grows), with
    " (with uncommitted changes)" when tracked files differ from it; "unknown (no commit)" outside
    a repository or before the first commit, "unknown" without git."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return "unknown (no commit)"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def metadata(s: "Settings") -> Dict[str, Any]:
    """The machine, software and settings of a benchmark run (the JSON's ``metadata``)."""
    dev = torch.device(s.device)
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": platform.node(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": s.device,
        "device_name": gpu or cpu_model(),
        "git_revision": git_revision(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "settings": s.to_json(),
    }


def busy_warning(meta: Dict[str, Any]) -> Optional[str]:
    """A warning when other work already keeps the CPUs busy (then several intra-op threads stall
    each other at every parallel region; one thread per process gives steadier numbers)."""
    load, cpus = (meta.get("load_average") or [0.0])[0], meta.get("cpu_count") or 1
    if meta["device"] == "cpu" and load >= 0.75 * cpus and meta["threads"] > 1:
        return (
            f"load average {load:.1f} on {cpus} CPUs before starting: the machine is shared, so "
            f"timings with {meta['threads']} threads will be noisy (threads wait for each other at "
            f"every parallel region); --threads 1 gives steadier ratios"
        )
    return None
