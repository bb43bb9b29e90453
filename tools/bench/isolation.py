"""One configuration per fresh process: a clean peak RSS for each train / denoise measurement.

A suite registers a measurement with :func:`worker`; :func:`run_isolated` runs it as
``tools/benchmark.py --worker NAME --worker-spec JSON``, which prints the result dict on one line
after :data:`WORKER_TAG` (anything else the worker prints is ignored).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict

import torch

from bench import REPO

if TYPE_CHECKING:
    from bench.settings import Settings

WORKER_TAG = "BENCHMARK-WORKER-RESULT "
#: the entry point a worker process runs (it imports every suite, which registers the workers)
ENTRY = REPO / "tools" / "benchmark.py"
WORKERS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {}


def worker(fn):
    """Register ``fn(spec) -> result dict`` under its name, for :func:`run_isolated`."""
    WORKERS[fn.__name__] = fn
    return fn


def run_isolated(name: str, spec: Dict[str, Any], s: "Settings", timeout: float = 3600.0) -> Dict[str, Any]:
    """Run worker ``name`` on ``spec`` in a fresh Python process (clean peak RSS); its result dict."""
    if not s.isolate:
        return WORKERS[name](spec)
    cmd = [sys.executable, str(ENTRY), "--worker", name, "--worker-spec", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(WORKER_TAG):
            return json.loads(line[len(WORKER_TAG) :])
    tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
    return {"error": f"worker {name} exited {proc.returncode}: {tail[-400:]}"}


def worker_settings(spec: Dict[str, Any]) -> "Settings":
    """The settings a worker was sent, with its torch thread count applied."""
    from bench.settings import Settings

    s = Settings.from_json(spec["settings"])
    if s.threads:
        torch.set_num_threads(int(s.threads))
    return s
