"""Peak memory of a block: the CUDA allocator's high-water mark, or the CPU resident set (MB).

On the CPU the high-water mark (VmHWM) is reset on entry where Linux allows it, so a block's peak
is its own even below an earlier, higher peak of the process; where it cannot be reset the peak is
the process's, an upper bound, and a fresh process per configuration (:mod:`bench.isolation`)
keeps it meaningful.
"""

from __future__ import annotations

import gc
import os
import resource
import sys

import torch


def rss_mb() -> float:
    """Resident set size of this process now, MB (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MB: VmHWM from /proc (since the last
    :func:`reset_peak_rss`), else resource.getrusage's ru_maxrss (since the process started)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory of a block: CUDA max_memory_allocated, or the CPU peak RSS during the block
    (the high-water mark is reset on entry where Linux allows it) and its growth over the RSS at
    the start. Without the reset, an earlier, higher peak of the process hides the block's: the
    peak and growth are then upper bounds (run it isolated).

    After the block: ``peak`` and ``growth`` (MB), ``kind`` (what ``peak`` is, for the tables);
    on the CPU also ``reset`` (whether the high-water mark was reset on entry)."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            self.reset = reset_peak_rss()
            self.base = rss_mb()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) / 2**20
            self.kind = "cuda max_memory_allocated"
        else:
            self.peak = peak_rss_mb()
            self.kind = "peak RSS during the block" if self.reset else "peak RSS of the process"
        self.growth = max(0.0, self.peak - self.base)
        return False
