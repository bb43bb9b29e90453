#!/usr/bin/env python3
"""Measure how fast scoreaudio trains, generates and denoises, as ratios that survive a busy machine.

    python tools/benchmark.py matmul train sample denoise scale [--presets tiny,small] [--device cpu|cuda]
                              [--quick] [--compile] [--ab layout,sync] [--checkpoint RUN_OR_PT]
                              [--json out.json] [--markdown out.md] [--update-readme]

Suites (any subset, in any order; ``all`` runs the five):

* ``matmul``  the large-matrix-product FLOP/s of this device in this run (fp32 on the CPU; bf16, fp32
              and TF32 on CUDA): the reference of every utilisation figure.
* ``train``   one full training step as scoreaudio.train runs it (encode -> sigma -> dsm_loss ->
              backward -> clip -> AdamW -> EMA; bf16 autocast on CUDA) per backbone and preset:
              audio-seconds/s, examples/s, model FLOPs per step (FlopCounterMode), utilisation =
              achieved FLOP/s / matmul FLOP/s, peak memory. ``--compile`` adds torch.compile.
* ``sample``  real-time factor (processing s / audio s) of the ald, pc and heun samplers at 30, 50,
              100 and 1,000 network evaluations (1,000 not with --quick), batch 1 and a larger batch,
              through generation.draw_samples (the path `scoreaudio generate` takes).
* ``denoise`` real-time factor and peak memory of every SpeechDenoiser method on 4, 60 and 600 s
              inputs (--quick: 2, 8, 32 s), one fresh process per length; fitted log-log exponents
              of time and memory against length (time should be ~1, memory ~0).
* ``scale``   training-step cost against crop length and against batch size; fitted exponents.

How the numbers are made (the machine may be shared; absolute times are then noisy):

* Every timed call is paired with a timed matrix product run right before or after it (the order
  alternates), and a figure that matters is the median over repeats of the per-pair ratio: e.g.
  utilisation = (step FLOPs / step time) / (matmul FLOPs / matmul time). Load that slows both
  cancels. Scale exponents are fitted to "matmul-equivalent" cost (time x matmul FLOP/s).
* On a CPU that other work keeps busy, several intra-op threads stall each other at every parallel
  region (a unet2d_small forward took 8x longer with 2 threads than with 1 on a loaded 2-core
  machine): pass ``--threads 1`` there; the script warns when the load average says so.
* FLOPs come from torch.utils.flop_counter.FlopCounterMode (deterministic; it counts matrix
  products, convolutions and attention, not elementwise work).
* A/B comparisons (``--ab layout``: channels-last activations against the plain layout; ``--ab sync``:
  the host syncs of train.py's bookkeeping against none; ``--compile``) are interleaved pair by pair
  and reported as the median of the per-pair time ratios (>1: the second variant is faster).
* Peak memory on CUDA is torch.cuda.max_memory_allocated; on the CPU it is the peak RSS
  (resource.getrusage) of a fresh process per configuration (unless --no-isolate), and its
  growth over the RSS once the model is built.
* Timings include the device sync (torch.cuda.synchronize) and exclude warm-up calls.

Outputs: a Markdown table per suite on stdout; --json (all numbers and the metadata: machine, CPU
model, torch version, threads, device, date, git revision, load average), --markdown, and
--update-readme (rewrites the block between ``<!-- perf:start -->`` and ``<!-- perf:end -->`` in
README.md, adding the markers at the end if missing; nothing else in the README is touched).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

SUITES = ("matmul", "train", "sample", "denoise", "scale")
PERF_START, PERF_END = "<!-- perf:start -->", "<!-- perf:end -->"
WORKER_TAG = "BENCHMARK-WORKER-RESULT "
SAMPLERS = ("ald", "pc", "heun")
#: (representation, recipe whose batch/crop a backbone trains at on a GPU)
BACKBONES = {"unet2d": ("stft", "ljspeech"), "wavenet": ("waveform", "sc09")}
#: model-space sigma range used where no trained run fixes one (costs do not depend on it)
SIGMAS = {"sigma_min": 0.002, "sigma_max": 20.0, "num_levels": 100, "sigma_data": 0.5}


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------
@dataclass
class Settings:
    """Everything a suite needs; ``Settings.make`` fills the defaults for a device and --quick."""

    device: str = "cpu"
    presets: List[str] = field(default_factory=lambda: ["tiny", "small"])
    backbones: List[str] = field(default_factory=lambda: ["unet2d", "wavenet"])
    quick: bool = False
    repeats: int = 5  # timed pairs per figure
    isolate: bool = True  # a fresh process per train / denoise configuration (clean peak RSS)
    compile: bool = False  # also measure torch.compile (train, sample)
    ab: List[str] = field(default_factory=list)  # layout, sync
    threads: Optional[int] = None
    matmul_n: int = 2048  # size of the reference matrix product
    matmul_inner: int = 1  # products per reference sample (so one sample lasts long enough)
    # train: (batch, crop seconds) per backbone; None = the recipe's (GPU) or quickstart's (CPU)
    train_batch: Optional[int] = None
    train_seconds: Optional[float] = None
    # sample
    sample_seconds: float = 2.0  # length of each generated sample
    sample_batches: List[int] = field(default_factory=lambda: [1, 8])
    nfes: List[int] = field(default_factory=lambda: [30, 50, 100, 1000])
    sample_budget_s: float = 30.0  # a run predicted to take longer is measured shorter and extrapolated
    # denoise
    checkpoints: List[str] = field(default_factory=list)
    denoise_seconds: List[float] = field(default_factory=lambda: [4.0, 60.0, 600.0])
    denoise_methods: Optional[List[str]] = None  # None = every method the checkpoint supports
    denoise_steps: Optional[int] = None  # None = SpeechDenoiser's default per method
    denoise_budget_s: float = 900.0  # a length predicted to take longer is skipped
    # scale
    scale_seconds: List[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0])
    scale_batches: List[int] = field(default_factory=lambda: [1, 2, 4, 8])
    scale_preset: Optional[str] = None  # None = the last of `presets`
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True),
                                       repr=False, compare=False)
    #: called after every finished row (run_suites writes partial JSON with it)
    on_row: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)
    live_rows: List[Dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    def new_rows(self) -> List[Dict[str, Any]]:
        """A fresh row list for a suite, visible to run_suites' partial JSON while the suite runs."""
        self.live_rows = []
        return self.live_rows

    @classmethod
    def make(cls, device: str = "auto", quick: bool = False, **kw) -> "Settings":
        from scoreaudio.errors import ConfigError
        from scoreaudio.utils.device import resolve_device

        try:
            dev = resolve_device(device, setting="--device")
        except ConfigError as e:
            raise SystemExit(str(e)) from None
        s = cls(device=str(dev), quick=quick)
        if dev.type == "cuda":
            s.matmul_n, s.matmul_inner = 8192, 10
            s.sample_batches = [1, 64]
            s.sample_budget_s = 120.0
        if quick:
            s.repeats = 3
            s.matmul_n = 1024 if dev.type == "cpu" else 4096
            s.nfes = [30, 50, 100]
            s.sample_seconds = 1.0
            s.sample_budget_s = 5.0 if dev.type == "cpu" else 20.0
            s.denoise_seconds = [2.0, 8.0, 32.0]
            s.denoise_budget_s = 60.0
            s.scale_seconds = [0.25, 0.5, 1.0]
            s.scale_batches = [1, 2, 4]
            if dev.type == "cpu":
                s.train_batch, s.train_seconds = 2, 0.25
                s.sample_batches = [1, 4]
        for k, v in kw.items():
            if not hasattr(s, k):
                raise ValueError(f"unknown setting {k!r}")
            setattr(s, k, v)
        return s

    def to_json(self) -> Dict[str, Any]:
        d = asdict(replace(self, log=None, on_row=None, live_rows=[]))
        for k in ("log", "on_row", "live_rows"):
            d.pop(k, None)
        return d


# --------------------------------------------------------------------------------------------
# Timing and the matmul reference
# --------------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds of one call, the device synchronised before and after."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def median(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return float(statistics.median(xs)) if xs else float("nan")


def spread(xs: Sequence[float]) -> float:
    """(max - min) / median: how noisy the repeats were."""
    m = median(xs)
    return float((max(xs) - min(xs)) / m) if xs and m > 0 else float("nan")


class MatmulRef:
    """Timed products of two random n x n matrices: this device's large-matmul FLOP/s, on demand.

    ``sample()`` times ``inner`` products (one device sync) and returns FLOP/s. Random inputs, not
    zeros (zeros can run faster than real data).
    """

    def __init__(self, device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048,
                 inner: int = 1, tf32: bool = False):
        self.device, self.dtype, self.n, self.inner, self.tf32 = device, dtype, int(n), int(inner), tf32
        g = torch.Generator(device=device).manual_seed(0)
        self.a = torch.randn(n, n, generator=g, device=device, dtype=dtype)
        self.b = torch.randn(n, n, generator=g, device=device, dtype=dtype)
        self.c = torch.empty(n, n, device=device, dtype=dtype)
        self.flops = 2.0 * n ** 3 * self.inner
        for _ in range(2):
            self._run()

    def _run(self) -> None:
        ctx = _tf32(self.tf32) if self.device.type == "cuda" and self.dtype == torch.float32 \
            else contextlib.nullcontext()
        with ctx:
            for _ in range(self.inner):
                torch.mm(self.a, self.b, out=self.c)

    def sample(self) -> float:
        return self.flops / time_call(self._run, self.device)


@contextlib.contextmanager
def _tf32(enabled: bool):
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def reference_for(device: torch.device, precision: str, s: Settings) -> MatmulRef:
    """The matmul reference matching a workload's precision: bf16 under autocast on CUDA; for float32
    work on CUDA, TF32 when cuDNN may use it for convolutions (PyTorch's default), else strict fp32."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    tf32 = device.type == "cuda" and dtype == torch.float32 and torch.backends.cudnn.allow_tf32
    return MatmulRef(device, dtype, s.matmul_n, s.matmul_inner, tf32=tf32)


def paired(fn: Callable[[], Any], ref: MatmulRef, repeats: int) -> Tuple[List[float], List[float]]:
    """``repeats`` pairs of (seconds of fn, matmul FLOP/s), the order alternating within pairs."""
    times, refs = [], []
    for i in range(repeats):
        if i % 2 == 0:
            r = ref.sample()
            t = time_call(fn, ref.device)
        else:
            t = time_call(fn, ref.device)
            r = ref.sample()
        times.append(t)
        refs.append(r)
    return times, refs


def interleaved(fns: Dict[str, Callable[[], Any]], device: torch.device,
                repeats: int) -> Dict[str, List[float]]:
    """Seconds of each variant, run round-robin (order reversed every other round)."""
    out: Dict[str, List[float]] = {k: [] for k in fns}
    keys = list(fns)
    for i in range(repeats):
        for k in (keys if i % 2 == 0 else keys[::-1]):
            out[k].append(time_call(fns[k], device))
    return out


def pair_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over pairs of a_i / b_i."""
    return median([x / y for x, y in zip(a, b, strict=True) if y > 0])


def count_flops(fn: Callable[[], Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True)
           if x and y and x > 0 and y > 0 and math.isfinite(y)]
    if len(pts) < 2:
        return float("nan")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return float(sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx) if sxx > 0 else float("nan")


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------
def rss_mb() -> float:
    """Resident set size of this process now, MB (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
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
    return kb / 1024 if sys.platform != "darwin" else kb / 2 ** 20


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
    growth is then a lower bound (run it isolated)."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device) / 2 ** 20
        else:
            self.reset = reset_peak_rss()
            self.base = rss_mb()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) / 2 ** 20
            self.kind = "cuda max_memory_allocated"
        else:
            self.peak = peak_rss_mb()
            self.kind = "peak RSS during the block" if self.reset else "peak RSS of the process"
        self.growth = max(0.0, self.peak - self.base)
        return False


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown (no commit)"
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def metadata(s: Settings) -> Dict[str, Any]:
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
        return (f"load average {load:.1f} on {cpus} CPUs before starting: the machine is shared, so "
                f"timings with {meta['threads']} threads will be noisy (threads wait for each other at "
                f"every parallel region); --threads 1 gives steadier ratios")
    return None


# --------------------------------------------------------------------------------------------
# Building models and inputs
# --------------------------------------------------------------------------------------------
def preset_name(backbone: str, preset: str) -> str:
    return preset if preset.startswith(backbone) else f"{backbone}_{preset}"


def compose_cfg(backbone: str, preset: str, extra: Sequence[str] = ()):
    from scoreaudio.config import compose

    rep, _ = BACKBONES[backbone]
    return compose(REPO / "recipes" / "quickstart.yaml",
                   [f"model={preset_name(backbone, preset)}", f"representation={rep}", *extra])


def train_shape(backbone: str, preset: str, device: torch.device, s: Settings) -> Tuple[int, float, str]:
    """(batch, crop seconds, where they come from) for a training-step measurement."""
    from scoreaudio.config import compose

    if s.train_batch is not None or s.train_seconds is not None:
        cfg = compose(REPO / "recipes" / "quickstart.yaml")
        batch = s.train_batch or int(cfg.train.batch_size)
        return batch, s.train_seconds or float(cfg.data.segment_seconds), "--quick" if s.quick else "settings"
    if device.type == "cuda":
        _, recipe = BACKBONES[backbone]
        cfg = compose(REPO / "recipes" / f"{recipe}.yaml")
        return int(cfg.train.batch_size), float(cfg.data.segment_seconds), f"recipes/{recipe}.yaml"
    cfg = compose(REPO / "recipes" / "quickstart.yaml")
    batch, seconds = int(cfg.train.batch_size), float(cfg.data.segment_seconds)
    if preset == "base":  # a GPU-scale network: a shorter crop keeps a CPU step within minutes
        return 2, 0.5, "base on CPU: batch 2 x 0.5 s (documented smaller crop)"
    return batch, seconds, "recipes/quickstart.yaml"


def test_audio(batch: int, length: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """(B, 1, T) speech-band noise at a speech-like level (costs do not depend on the content)."""
    g = torch.Generator().manual_seed(seed)
    return (0.1 * torch.randn(batch, 1, length, generator=g)).to(device)


def _layout(model, value: Optional[bool]) -> None:
    bb = getattr(model, "backbone", None)
    if bb is not None and hasattr(type(bb), "channels_last"):
        bb.channels_last = value


# --------------------------------------------------------------------------------------------
# Isolation: one configuration per fresh process
# --------------------------------------------------------------------------------------------
WORKERS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {}


def worker(fn):
    WORKERS[fn.__name__] = fn
    return fn


def run_isolated(name: str, spec: Dict[str, Any], s: Settings, timeout: float = 3600.0) -> Dict[str, Any]:
    """Run worker ``name`` on ``spec`` in a fresh Python process (clean peak RSS); its result dict."""
    if not s.isolate:
        return WORKERS[name](spec)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--worker-spec", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(WORKER_TAG):
            return json.loads(line[len(WORKER_TAG):])
    tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
    return {"error": f"worker {name} exited {proc.returncode}: {tail[-400:]}"}


def _worker_settings(spec: Dict[str, Any]) -> Settings:
    s = Settings(**{k: v for k, v in spec["settings"].items() if k in Settings.__dataclass_fields__})
    if s.threads:
        torch.set_num_threads(int(s.threads))
    return s


# --------------------------------------------------------------------------------------------
# Suite: matmul
# --------------------------------------------------------------------------------------------
def suite_matmul(s: Settings) -> Dict[str, Any]:
    dev = torch.device(s.device)
    variants = [("fp32", torch.float32, False)]
    if dev.type == "cuda":
        variants = [("bf16", torch.bfloat16, False), ("fp32", torch.float32, False),
                    ("tf32", torch.float32, True)]
    rows = s.new_rows()
    for name, dtype, tf32 in variants:
        ref = MatmulRef(dev, dtype, s.matmul_n, s.matmul_inner, tf32=tf32)
        vals = [ref.sample() for _ in range(max(3, s.repeats))]
        rows.append({"dtype": name, "n": s.matmul_n, "products_per_sample": s.matmul_inner,
                     "samples": len(vals), "gflops_median": median(vals) / 1e9, "gflops_max": max(vals) / 1e9,
                     "spread": spread(vals)})
        s.log(f"matmul {name} {s.matmul_n}^2: {median(vals) / 1e9:.1f} GFLOP/s (median of {len(vals)})")
        s.on_row()
    return {"rows": rows, "columns": [("dtype", "dtype"), ("n", "n"), ("gflops_median", "GFLOP/s (median)"),
                                      ("gflops_max", "GFLOP/s (max)"), ("spread", "spread")],
            "notes": ["Reference of every utilisation figure: n x n random matrices, torch.mm, "
                      "device-synced; spread = (max - min) / median over the samples (machine noise)."]}


# --------------------------------------------------------------------------------------------
# Suite: train
# --------------------------------------------------------------------------------------------
class TrainStep:
    """One optimiser step exactly as scoreaudio.train runs it (grad_accum 1, one process)."""

    def __init__(self, backbone: str, preset: str, batch: int, seconds: float, device: torch.device,
                 precision: str, compile: bool = False):
        from scoreaudio.audio.representation import build_representation
        from scoreaudio.nn.build import build_score_model, count_parameters
        from scoreaudio.utils.ema import EMA

        self.cfg = compose_cfg(backbone, preset,
                               [f"train.batch_size={batch}", f"data.segment_seconds={seconds}",
                                f"train.precision={precision}"])
        self.device, self.precision, self.batch, self.seconds = device, precision, batch, seconds
        sr = int(self.cfg.data.sample_rate)
        self.rep = build_representation(self.cfg.representation)
        torch.manual_seed(0)
        self.model = build_score_model(self.cfg.model, self.rep.channels).to(device)
        self.model.sigma_data.fill_(SIGMAS["sigma_data"])
        self.params = count_parameters(self.model)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, betas=(0.9, 0.999))
        self.ema = EMA(self.model, 100.0)
        self.eager_model = self.model
        self.compiled = torch.compile(self.model) if compile else None
        self.train_model = self.model
        self.wav = test_audio(batch, int(round(seconds * sr)), device)
        self.n = 0
        self.host_sums: Dict[str, float] = {}

    def use(self, compiled: bool) -> None:
        self.train_model = self.compiled if compiled else self.eager_model

    def __call__(self, *, bookkeeping: str = "none") -> None:
        """One step. ``bookkeeping='trainpy'`` adds train.py's per-step host reads (isfinite check,
        float(loss), per-example tolist for the sigma buckets); 'none' keeps everything on the device."""
        from scoreaudio.train_step import sigma_bucket, train_step

        # The trainer's own step (scoreaudio/train_step.py), so what is timed is what trains.
        result = train_step(model=self.model, train_model=self.train_model, optimizer=self.opt, ema=self.ema,
                            batches=iter([{"clean": self.wav}]), representation=self.rep, sigmas=SIGMAS,
                            cfg=self.cfg, step=self.n, device=self.device)
        self.n += 1
        if bookkeeping == "trainpy":
            self.host_sums["loss"] = self.host_sums.get("loss", 0.0) + float(result.losses.mean())
            for sg, lo in zip(result.sigmas.tolist(), result.losses.tolist(), strict=True):
                b = sigma_bucket(sg)
                self.host_sums[b] = self.host_sums.get(b, 0.0) + lo


@worker
def measure_train(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One (backbone, preset) training-step measurement; see the module docstring."""
    s = _worker_settings(spec)
    dev = torch.device(s.device)
    backbone, preset = spec["backbone"], spec["preset"]
    batch, seconds = int(spec["batch"]), float(spec["seconds"])
    precision = "bf16" if dev.type == "cuda" else "fp32"
    ref = reference_for(dev, precision, s)
    with PeakMemory(dev) as mem:
        step = TrainStep(backbone, preset, batch, seconds, dev, precision, compile=s.compile)
        step()  # warm-up (lazy inits, allocator, oneDNN primitive cache)
        flops = count_flops(step)
        times, refs = paired(step, ref, s.repeats)
    t = median(times)
    util = [flops / ti / ri for ti, ri in zip(times, refs, strict=True)]
    row: Dict[str, Any] = {
        "backbone": backbone, "preset": preset_name(backbone, preset),
        "representation": BACKBONES[backbone][0],
        "params": step.params, "batch": batch, "seconds": seconds, "shape_from": spec.get("shape_from", ""),
        "precision": precision, "step_s": t, "step_s_spread": spread(times),
        "audio_s_per_s": batch * seconds / t, "examples_per_s": batch / t,
        "gflop_per_step": flops / 1e9, "achieved_gflops": flops / t / 1e9,
        "matmul_gflops": median(refs) / 1e9, "utilisation": median(util),
        "peak_mem_mb": mem.peak, "mem_growth_mb": mem.growth, "mem_kind": mem.kind,
    }
    if s.compile:
        t0 = time.perf_counter()
        step.use(compiled=True)
        step()  # compiles
        sync(dev)
        row["compile_s"] = time.perf_counter() - t0
        step()
        both = interleaved({"eager": lambda: (step.use(False), step()),
                            "compiled": lambda: (step.use(True), step())}, dev, s.repeats)
        row["step_s_compiled"] = median(both["compiled"])
        row["compile_speedup"] = pair_ratio(both["eager"], both["compiled"])
        row["utilisation_compiled"] = row["utilisation"] * row["compile_speedup"]
        step.use(False)
    if "layout" in s.ab:  # plain (NCHW / NCW) activations against channels-last ones, on any device
        plain = lambda: (_layout(step.model, False), step())  # noqa: E731
        last = lambda: (_layout(step.model, True), step())  # noqa: E731
        plain()
        last()
        both = interleaved({"plain": plain, "channels_last": last}, dev, s.repeats)
        row["layout_speedup"] = pair_ratio(both["plain"], both["channels_last"])
        row["step_s_plain_layout"] = median(both["plain"])
        row["step_s_channels_last"] = median(both["channels_last"])
        _layout(step.model, None)
    if "sync" in s.ab:
        both = interleaved({"trainpy": lambda: step(bookkeeping="trainpy"), "none": lambda: step()},
                           dev, s.repeats)
        row["sync_speedup"] = pair_ratio(both["trainpy"], both["none"])
    return row


def suite_train(s: Settings) -> Dict[str, Any]:
    dev = torch.device(s.device)
    rows = s.new_rows()
    for backbone in s.backbones:
        for preset in s.presets:
            batch, seconds, origin = train_shape(backbone, preset, dev, s)
            spec = {"settings": s.to_json(), "backbone": backbone, "preset": preset, "batch": batch,
                    "seconds": seconds, "shape_from": origin}
            s.log(f"train {preset_name(backbone, preset)}: batch {batch} x {seconds:g} s ({origin}) ...")
            row = run_isolated("measure_train", spec, s)
            if "error" in row:
                row = {"backbone": backbone, "preset": preset_name(backbone, preset), "batch": batch,
                       "seconds": seconds, **row}
                s.log(f"  FAILED: {row['error']}")
            else:
                s.log(f"  {row['step_s']:.3f} s/step, utilisation {100 * row['utilisation']:.1f}% "
                      f"of {row['matmul_gflops']:.1f} GFLOP/s, {row['audio_s_per_s']:.2f} audio-s/s")
            rows.append(row)
            s.on_row()
    cols = [("preset", "model"), ("params", "params"), ("batch", "batch"), ("seconds", "crop s"),
            ("precision", "precision"), ("step_s", "s/step"), ("audio_s_per_s", "audio-s/s"),
            ("examples_per_s", "examples/s"), ("gflop_per_step", "GFLOP/step"),
            ("achieved_gflops", "GFLOP/s"),
            ("utilisation", "utilisation"), ("peak_mem_mb", "peak MB"), ("mem_growth_mb", "growth MB")]
    if s.compile:
        cols += [("compile_speedup", "compile speed-up"), ("utilisation_compiled", "util. compiled"),
                 ("compile_s", "compile s")]
    if "layout" in s.ab:
        cols += [("layout_speedup", "channels-last speed-up")]
    if "sync" in s.ab:
        cols += [("sync_speedup", "no-sync speed-up")]
    shapes = sorted({f"{r.get('preset')}: {r.get('shape_from', '')}" for r in rows})
    kinds = ", ".join(sorted({str(r.get("mem_kind")) for r in rows if r.get("mem_kind")})) or "n/a"
    memory = (f"{kinds}, from building the model through the timed steps"
              + ("" if dev.type == "cuda" else " (the RSS includes torch itself)")
              + "; growth MB: over the memory in use before the model was built")
    notes = ["One full step as scoreaudio.train runs it: encode -> sigma -> dsm_loss -> backward "
             "-> clip -> AdamW -> EMA" + (" (bf16 autocast)" if dev.type == "cuda" else " (fp32)") + ".",
             "utilisation = (FlopCounterMode FLOPs per step / step time) / matmul FLOP/s, median over pairs "
             "timed back to back; GFLOP/step counts matmuls, convolutions and attention (forward + "
             "backward).",
             "Batch and crop: " + "; ".join(shapes) + ".",
             "peak MB: " + memory]
    if s.compile:
        notes.append("compile speed-up: eager time / torch.compile time, median over interleaved pairs.")
    if "layout" in s.ab:
        notes.append("channels-last speed-up: plain-layout step time / channels-last step time, median "
                     "over interleaved pairs (unet2d defaults to channels-last on the CPU, wavenet to the "
                     "plain layout).")
    if "sync" in s.ab:
        notes.append("no-sync speed-up: step with train.py's per-step host reads / step without, "
                     "median over interleaved pairs.")
    return {"rows": rows, "columns": cols, "notes": notes}


# --------------------------------------------------------------------------------------------
# Suite: sample
# --------------------------------------------------------------------------------------------
def eval_model(backbone: str, preset: str, device: torch.device):
    from scoreaudio.audio.representation import build_representation
    from scoreaudio.nn.build import build_score_model

    cfg = compose_cfg(backbone, preset)
    rep = build_representation(cfg.representation)
    torch.manual_seed(0)
    model = build_score_model(cfg.model, rep.channels)
    model.sigma_data.fill_(SIGMAS["sigma_data"])
    return cfg, rep, model.to(device).eval().requires_grad_(False)


def _sample_rows(s: Settings, backbone: str, preset: str, batch: int, ref: MatmulRef) -> List[Dict[str, Any]]:
    from types import SimpleNamespace

    from scoreaudio.generation import draw_samples, num_samples_for, plan_for

    dev = torch.device(s.device)
    cfg, rep, model = eval_model(backbone, preset, dev)
    sr = int(cfg.data.sample_rate)
    length = num_samples_for(s.sample_seconds, sr)
    shape = (batch, *rep.encoded_shape(length))
    x = SIGMAS["sigma_max"] * torch.randn(shape, device=dev)
    sig = torch.full((batch,), 1.0, device=dev)

    def forward():
        with torch.inference_mode():
            model(x, sig)

    forward()
    fwd_flops = count_flops(forward)
    fwd_times, fwd_refs = paired(forward, ref, s.repeats)
    t_fwd = median(fwd_times)
    audio_s = batch * length / sr
    rows: List[Dict[str, Any]] = []
    compiled_speedup = None
    if s.compile:
        cm = torch.compile(model, dynamic=False)

        def cforward():
            with torch.inference_mode():
                cm(x, sig)

        t0 = time.perf_counter()
        cforward()
        compile_s = time.perf_counter() - t0
        both = interleaved({"eager": forward, "compiled": cforward}, dev, s.repeats)
        compiled_speedup = pair_ratio(both["eager"], both["compiled"])
    base = {"backbone": backbone, "preset": preset_name(backbone, preset), "batch": batch,
            "seconds": s.sample_seconds, "audio_s": audio_s, "gflop_per_eval": fwd_flops / 1e9,
            "forward_s": t_fwd, "forward_rtf": t_fwd / audio_s,
            "forward_utilisation": median([fwd_flops / t / r
                                           for t, r in zip(fwd_times, fwd_refs, strict=True)])}
    if compiled_speedup is not None:
        base.update(compile_speedup=compiled_speedup, compile_s=compile_s)
    cap = max(4, int(s.sample_budget_s / max(t_fwd, 1e-9)))  # evaluations that fit the time budget
    for name in SAMPLERS:
        measured: Dict[int, Tuple[List[float], List[float], Any]] = {}  # run NFE -> (times, refs, plan)
        for nfe in s.nfes:
            sampler_cfg = SimpleNamespace(name=name, steps=nfe, snr=0.16, final_denoise=True)
            plan = plan_for(sampler_cfg, SIGMAS, dim=math.prod(shape[1:]))
            # Over budget: run this sampler with `cap` evaluations and extrapolate the cost per NFE.
            run_nfe = min(nfe, cap)
            if run_nfe not in measured:
                run_cfg = SimpleNamespace(name=name, steps=run_nfe, snr=0.16, final_denoise=True)
                run_plan = plan_for(run_cfg, SIGMAS, dim=math.prod(shape[1:]))

                def go(run_cfg=run_cfg):
                    gen = torch.Generator(device=dev).manual_seed(0)
                    draw_samples(model, rep, SIGMAS, run_cfg, num=batch, seconds=s.sample_seconds,
                                 sample_rate=sr, device=dev, generator=gen)

                cheap = run_plan.nfe * t_fwd <= s.sample_budget_s / 3
                if cheap:
                    go()  # warm-up (decode, sampler); the network was warmed by the forward timing
                reps = max(1, min(s.repeats, 3)) if cheap else 1
                measured[run_nfe] = (*paired(go, ref, reps), run_plan)
            times, refs, run_plan = measured[run_nfe]
            t_run = median(times)
            per_eval = t_run / run_plan.nfe
            t_total = per_eval * plan.nfe
            extrap = run_plan.nfe != plan.nfe
            util = median([fwd_flops * run_plan.nfe / t / r for t, r in zip(times, refs, strict=True)])
            rows.append({**base, "sampler": name, "nfe_requested": nfe, "nfe": plan.nfe,
                         "measured_nfe": run_plan.nfe, "extrapolated": extrap,
                         "wall_s": t_total, "rtf": t_total / audio_s, "per_eval_s": per_eval,
                         "overhead": max(0.0, 1.0 - t_fwd * run_plan.nfe / t_run), "utilisation": util})
            s.log(f"  {name:4s} nfe {plan.nfe:4d}: RTF {t_total / audio_s:.3g}"
                  + (f" (extrapolated from {run_plan.nfe} evaluations)" if extrap else ""))
    return rows


def suite_sample(s: Settings) -> Dict[str, Any]:
    dev = torch.device(s.device)
    ref = reference_for(dev, "fp32", s)
    rows = s.new_rows()
    for backbone in s.backbones:
        for preset in s.presets:
            for batch in s.sample_batches:
                s.log(f"sample {preset_name(backbone, preset)} batch {batch} x {s.sample_seconds:g} s ...")
                for _attempt in range(4):
                    try:
                        rows.extend(_sample_rows(s, backbone, preset, batch, ref))
                        s.on_row()
                        break
                    except torch.cuda.OutOfMemoryError:
                        torch.cuda.empty_cache()
                        s.log(f"  batch {batch} does not fit; trying {batch // 2}")
                        batch //= 2
                        if batch < 1:
                            break
    cols = [("preset", "model"), ("sampler", "sampler"), ("nfe", "NFE"), ("batch", "batch"),
            ("audio_s", "audio s"), ("rtf", "RTF"), ("measured_nfe", "measured NFE"),
            ("overhead", "sampler overhead"), ("utilisation", "utilisation")]  # JSON rows; see sample_table
    notes = ["RTF = processing seconds / audio seconds (audio s = batch x sample length) through "
             "generate.draw_samples: initial noise, sampler with the watch callback, decode, peak limit. "
             "'@N NFE' is the budget asked for; the sampler's plan makes at most N network evaluations.",
             "measured NFE: budgets measured in full; the rest would exceed the time budget, so the same "
             "sampler was run with a budget of N evaluations and the per-evaluation cost extrapolated "
             "linearly (the ladder does not change the cost of one evaluation).",
             "sampler overhead = 1 - (NFE x one network forward) / sampler time: the share spent outside the "
             "network (elementwise updates, noise, callback, decode).",
             "Untrained weights: the cost of a network evaluation does not depend on the weights."]
    if s.compile:
        cols.append(("compile_speedup", "compile speed-up (forward)"))
    return {"rows": rows, "columns": cols, "notes": notes}


# --------------------------------------------------------------------------------------------
# Suite: denoise
# --------------------------------------------------------------------------------------------
def noisy_speech(seconds: float, sample_rate: int, snr_db: float = 10.0, seed: int = 0):
    """Speech-like audio (the built-in synthetic voice, tiled) + white noise at ``snr_db``: float32 numpy."""
    import numpy as np

    from scoreaudio.data.synthetic import synthesize_utterance

    T = int(round(seconds * sample_rate))
    utt = synthesize_utterance(0, 0, min(seconds, 4.0), sample_rate)
    clean = np.resize(utt, T).astype(np.float32)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(T).astype(np.float32)
    noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return clean + noise


@worker
def measure_denoise(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One (checkpoint, method, length) denoising measurement."""
    from scoreaudio.denoise import SpeechDenoiser

    s = _worker_settings(spec)
    dev = torch.device(s.device)
    ref = reference_for(dev, "fp32", s)
    den = SpeechDenoiser.from_pretrained(spec["checkpoint"], device=dev)
    sr = den.sample_rate
    method, steps, seconds = spec["method"], spec.get("steps"), float(spec["seconds"])
    wav = noisy_speech(seconds, sr)
    warm = noisy_speech(0.5, sr)

    def call(w):
        return den(w, sr, method=method, steps=steps, generator=torch.Generator().manual_seed(0))

    call(warm)  # warm-up: lazy inits, oneDNN primitives
    repeats = int(spec.get("repeats", 1))
    with PeakMemory(dev) as mem:
        times, refs = paired(lambda: call(wav), ref, repeats)
    t = median(times)
    return {"method": method, "seconds": seconds, "steps": steps, "wall_s": t, "rtf": t / seconds,
            "peak_mem_mb": mem.peak, "mem_growth_mb": mem.growth, "mem_kind": mem.kind,
            "audio_mb": wav.nbytes / 2 ** 20, "matmul_gflops": median(refs) / 1e9,
            "rtf_x_matmul": t / seconds * median(refs) / 1e9, "chunk_seconds": den.chunk_seconds,
            "batch_size": den.batch_size}


def temp_checkpoints(s: Settings, root: Path) -> List[Tuple[str, str]]:
    """2-step runs of the quickstart recipe (unconditional, and conditional on noise-mixed pairs) for
    each preset: [(label, run dir)]."""
    from scoreaudio.config import compose
    from scoreaudio.train import train

    quick = ["data.synthetic.train_utterances=8", "data.synthetic.valid_utterances=2",
             "data.synthetic.test_utterances=2", "data.synthetic.utterance_seconds=1.0",
             "data.segment_seconds=0.5", "train.batch_size=2", "train.steps=2", "train.log_every=1",
             "train.val_every=0", "train.ckpt_every=2", "train.num_samples=0", f"train.device={s.device}",
             "sampler.steps=6"]
    out = []
    for preset in s.presets:
        for label, extra in (("unconditional", []),
                             ("conditional", ["loss=cdsm", "data.noise_mix.enabled=true"])):
            run_dir = root / f"{preset}-{label}"
            s.log(f"denoise: training a 2-step {preset} {label} run into {run_dir} ...")
            cfg = compose(REPO / "recipes" / "quickstart.yaml",
                          [f"model=unet2d_{preset}", *quick, f"train.run_dir={run_dir}", *extra])
            with contextlib.redirect_stdout(sys.stderr):
                train(cfg)
            out.append((f"unet2d_{preset} ({label}, 2-step temp run)", str(run_dir)))
    return out


def suite_denoise(s: Settings) -> Dict[str, Any]:
    try:
        from scoreaudio.denoise import SpeechDenoiser  # noqa: F401  (lazy: written alongside)
        from scoreaudio.denoise_methods import CONDITIONAL_METHODS, PRIOR_METHODS
    except ImportError as e:
        msg = f"skipped: scoreaudio.denoise.SpeechDenoiser is not available ({e})"
        s.log(f"denoise {msg}")
        return {"rows": [], "columns": [], "notes": [msg], "skipped": msg}
    from scoreaudio.pretrained import load_pretrained

    tmp = None
    if s.checkpoints:
        ckpts = [(str(c), str(c)) for c in s.checkpoints]
    else:
        tmp = tempfile.TemporaryDirectory(prefix="scoreaudio-bench-")
        ckpts = temp_checkpoints(s, Path(tmp.name))
    rows, fits = s.new_rows(), []
    try:
        for label, ckpt in ckpts:
            pre = load_pretrained(ckpt, device="cpu")
            model_name = f"{pre.cfg.model.preset} ({'conditional' if pre.conditional else 'unconditional'})"
            methods = list(CONDITIONAL_METHODS if pre.conditional else PRIOR_METHODS)
            if s.denoise_methods:
                methods = [m for m in methods if m in s.denoise_methods]
            del pre
            for method in methods:
                per_len = []
                predicted_rtf = None
                for seconds in s.denoise_seconds:
                    if predicted_rtf is not None and predicted_rtf * seconds > s.denoise_budget_s:
                        msg = (f"skipped: predicted {predicted_rtf * seconds:.0f} s > budget "
                               f"{s.denoise_budget_s:.0f} s")
                        rows.append({"checkpoint": label, "model": model_name, "method": method,
                                     "seconds": seconds, "skipped": msg})
                        s.log(f"denoise {method} {seconds:g} s: {msg}")
                        s.on_row()
                        continue
                    repeats = 3 if seconds * (predicted_rtf or 0) < 5 else 1
                    one_call = method in ("tweedie", "predictive")  # exactly one network call each
                    spec = {"settings": s.to_json(), "checkpoint": ckpt, "method": method, "seconds": seconds,
                            "steps": None if one_call else s.denoise_steps, "repeats": repeats}
                    s.log(f"denoise {model_name} {method} {seconds:g} s ...")
                    r = run_isolated("measure_denoise", spec, s)
                    r = {"checkpoint": label, "model": model_name, **r, "method": method, "seconds": seconds}
                    if "error" in r:
                        s.log(f"  FAILED: {r['error']}")
                    else:
                        predicted_rtf = r["rtf"]
                        per_len.append(r)
                        s.log(f"  RTF {r['rtf']:.3g}, peak {r['peak_mem_mb']:.0f} MB "
                              f"(+{r['mem_growth_mb']:.0f} MB)")
                    rows.append(r)
                    s.on_row()
                if len(per_len) >= 2:
                    xs = [r["seconds"] for r in per_len]
                    fit = {"checkpoint": label, "model": model_name, "method": method,
                           "time_exponent": fit_exponent(xs, [r["rtf_x_matmul"] * r["seconds"]
                                                              for r in per_len]),
                           "peak_mem_exponent": fit_exponent(xs, [r["peak_mem_mb"] for r in per_len]),
                           "mem_growth_ratio": ((per_len[-1]["mem_growth_mb"] + 1)
                                                / (per_len[0]["mem_growth_mb"] + 1)),
                           # marginal memory per input byte between the two longest inputs: the
                           # length-proportional buffers (input, output, overlap-add) in input copies
                           "input_copies": ((per_len[-1]["mem_growth_mb"] - per_len[-2]["mem_growth_mb"])
                                            / max(per_len[-1]["audio_mb"] - per_len[-2]["audio_mb"], 1e-9)),
                           "length_ratio": xs[-1] / xs[0]}
                    fits.append(fit)
                    s.log(f"  {method}: time ~ length^{fit['time_exponent']:.2f}, peak memory ~ "
                          f"length^{fit['peak_mem_exponent']:.2f}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    cols = [("model", "model"), ("method", "method"), ("seconds", "input s"), ("rtf", "RTF"),
            ("peak_mem_mb", "peak MB"), ("mem_growth_mb", "growth MB"), ("audio_mb", "input MB"),
            ("skipped", "note")]
    memory = ", ".join(sorted({str(r.get("mem_kind")) for r in rows if r.get("mem_kind")})) or "n/a"
    notes = ["One fresh process per length" if s.isolate else "In-process (one process for all lengths)",
             "RTF = seconds / input seconds, including resampling, chunking and overlap-add; peak MB: "
             + memory + " of the timed call(s); growth MB: over the memory in use before them (model "
             "loaded, warm-up call done, input in memory). Input: synthetic speech + white noise at "
             "10 dB SNR.",
             "Exponents: least-squares log-log slopes against input length; time uses matmul-equivalent "
             "cost (time x matmul FLOP/s measured alongside) so machine load cancels. Chunked processing "
             "should give time ~ 1 and memory ~ 0 once an input fills a batch of chunks; 'MB per input MB' "
             "is the extra memory per extra input MB between the two longest inputs (buffers that grow "
             "with the length: input, resampled copy, output, overlap-add sums)."]
    return {"rows": rows, "columns": cols, "notes": notes, "fits": fits,
            "fit_columns": [("model", "model"), ("method", "method"), ("time_exponent", "time exponent"),
                            ("peak_mem_exponent", "peak-memory exponent"),
                            ("mem_growth_ratio", "growth ratio"), ("length_ratio", "length ratio"),
                            ("input_copies", "MB per input MB (two longest)")]}


# --------------------------------------------------------------------------------------------
# Suite: scale
# --------------------------------------------------------------------------------------------
def suite_scale(s: Settings) -> Dict[str, Any]:
    dev = torch.device(s.device)
    precision = "bf16" if dev.type == "cuda" else "fp32"
    ref = reference_for(dev, precision, s)
    preset = s.scale_preset or s.presets[-1]
    rows, fits = s.new_rows(), []
    base_batch, base_seconds, _ = train_shape("unet2d", preset, dev, s)
    for backbone in s.backbones:
        for axis, values in (("seconds", s.scale_seconds), ("batch", s.scale_batches)):
            costs = []
            for v in values:
                batch = int(v) if axis == "batch" else base_batch
                seconds = float(v) if axis == "seconds" else base_seconds
                s.log(f"scale {preset_name(backbone, preset)} batch {batch} x {seconds:g} s ...")
                step = TrainStep(backbone, preset, batch, seconds, dev, precision)
                step()
                times, refs = paired(step, ref, s.repeats)
                cost = median([t * r for t, r in zip(times, refs, strict=True)])  # matmul-equivalent FLOP
                costs.append(cost)
                rows.append({"backbone": backbone, "preset": preset_name(backbone, preset), "axis": axis,
                             "batch": batch, "seconds": seconds, "step_s": median(times),
                             "matmul_equiv_gflop": cost / 1e9,
                             "cost_per_audio_s": cost / 1e9 / (batch * seconds)})
                s.on_row()
                del step
                gc.collect()
            fits.append({"backbone": backbone, "preset": preset_name(backbone, preset), "axis": axis,
                         "values": list(values), "exponent": fit_exponent(values, costs)})
            s.log(f"  step cost ~ {axis}^{fits[-1]['exponent']:.2f}")
    cols = [("preset", "model"), ("axis", "varied"), ("batch", "batch"), ("seconds", "crop s"),
            ("step_s", "s/step"), ("matmul_equiv_gflop", "matmul-equiv. GFLOP"),
            ("cost_per_audio_s", "per audio-s")]
    notes = ["Training-step cost against crop length (at the suite's batch) and batch size (at its crop). "
             "Cost = step time x matmul FLOP/s measured alongside (load cancels); exponent = log-log slope "
             "(1 = linear; below 1 = fixed overheads still matter at the small end)."]
    return {"rows": rows, "columns": cols, "notes": notes, "fits": fits,
            "fit_columns": [("preset", "model"), ("axis", "varied"), ("values", "values"),
                            ("exponent", "exponent")]}


SUITE_FUNCS = {"matmul": suite_matmul, "train": suite_train, "sample": suite_sample, "denoise": suite_denoise,
               "scale": suite_scale}


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------
def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "n/a"
        if v == 0:
            return "0"
        a = abs(v)
        if a >= 1e5:
            return f"{v:.3g}"
        if a >= 100:
            return f"{v:.0f}"
        if a >= 1:
            return f"{v:.2f}"
        return f"{v:.3g}"
    if isinstance(v, int) and abs(v) >= 100000:
        return f"{v / 1e6:.2f}M"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x) for x in v)
    return str(v).replace("|", "\\|")


def md_table(rows: List[Dict[str, Any]], columns: Sequence[Tuple[str, str]]) -> str:
    if not rows:
        return "(no rows)\n"
    cols = [(k, h) for k, h in columns if any(k in r for r in rows)]
    pct = {"utilisation", "utilisation_compiled", "forward_utilisation", "overhead"}
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for k, _ in cols:
            v = r.get(k)
            if k in pct and isinstance(v, float) and math.isfinite(v):
                cells.append(f"{100 * v:.1f}%")
            elif k == "error" or (k == "skipped" and v):
                cells.append(fmt(v))
            else:
                cells.append(fmt(v))
        if "error" in r:
            cells[-1] = f"FAILED: {fmt(r['error'])[:120]}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sample_table(rows: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Tuple[str, str]]]:
    """The sample suite as one row per (model, batch, sampler) with an RTF column per NFE budget."""
    nfes = sorted({r["nfe_requested"] for r in rows})
    groups: Dict[Tuple[Any, ...], List[Dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["preset"], r["batch"], r["sampler"]), []).append(r)
    out = []
    for (preset, batch, sampler), rs in groups.items():
        row = {"preset": preset, "batch": batch, "audio_s": rs[0]["audio_s"], "sampler": sampler,
               "gflop_per_eval": rs[0]["gflop_per_eval"], "overhead": median([r["overhead"] for r in rs]),
               "utilisation": median([r["utilisation"] for r in rs])}
        for r in rs:
            row[f"rtf@{r['nfe_requested']}"] = r["rtf"]
        extrap = [r["measured_nfe"] for r in rs if r["extrapolated"]]
        full = ", ".join(str(r["nfe"]) for r in rs if not r["extrapolated"])
        row["measured"] = "all" if not extrap else \
            (f"{full}; rest from {min(extrap)} NFE" if full else f"none: all from {min(extrap)} NFE")
        if "compile_speedup" in rs[0]:
            row["compile_speedup"] = rs[0]["compile_speedup"]
        out.append(row)
    cols = [("preset", "model"), ("batch", "batch"), ("audio_s", "audio s"), ("sampler", "sampler")]
    cols += [(f"rtf@{n}", f"RTF @{n} NFE") for n in nfes]
    cols += [("measured", "measured NFE"), ("overhead", "sampler overhead"), ("utilisation", "utilisation"),
             ("gflop_per_eval", "GFLOP/eval"), ("compile_speedup", "compile speed-up (forward)")]
    return out, cols


def display_tables(name: str, res: Dict[str, Any]) -> List[str]:
    """The Markdown tables of one suite's result."""
    tables = []
    if res.get("columns") and res.get("rows"):
        if name == "sample":
            tables.append(md_table(*sample_table(res["rows"])))
        else:
            tables.append(md_table(res["rows"], res["columns"]))
    if res.get("fits"):
        tables.append(md_table(res["fits"], res["fit_columns"]))
    return tables


def render_markdown(results: Dict[str, Any], heading_level: int = 3) -> str:
    meta = results["metadata"]
    h = "#" * heading_level
    out = [f"Measured {meta['date']} on {meta['device_name']} ({meta['device']}, {meta['threads']} threads, "
           f"{meta['cpu_count']} CPUs), torch {meta['torch']}, git {meta['git_revision']}, load average "
           f"{', '.join(f'{x:.1f}' for x in meta['load_average'] or [])} at the start"
           + (" (`--quick`)" if meta["settings"]["quick"] else "")
           + ". Produced by `python tools/benchmark.py " + " ".join(results["suites"]) + "`."]
    if meta.get("warning"):
        out.append(f"**Caveat:** {meta['warning']}.")
    out.append("")
    for name, res in results["suites"].items():
        out.append(f"{h} {name}")
        out.append("")
        out.extend(display_tables(name, res))
        for n in res.get("notes", []):
            out.append(f"- {n}")
        out.append("")
    return "\n".join(out)


def update_readme(markdown: str, readme: Path = REPO / "README.md") -> Path:
    """Replace the text between the perf markers (appending the markers if missing)."""
    text = readme.read_text() if readme.exists() else ""
    block = f"{PERF_START}\n## Performance\n\n{markdown.strip()}\n{PERF_END}"
    if PERF_START in text and PERF_END in text and text.index(PERF_START) < text.index(PERF_END):
        head, rest = text.split(PERF_START, 1)
        _, tail = rest.split(PERF_END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, readme)
    return readme


def _jsonable(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        if o and all(isinstance(x, tuple) and len(x) == 2 and all(isinstance(y, str) for y in x) for x in o):
            return [list(x) for x in o]
        return [_jsonable(x) for x in o]
    if isinstance(o, (str, int, float, bool)) or o is None:
        return o
    return str(o)


def write_json(path: Path, results: Dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_jsonable(results), indent=2) + "\n")
    os.replace(tmp, path)


def run_suites(names: Sequence[str], s: Settings, partial_json: Optional[Path] = None) -> Dict[str, Any]:
    """Run the named suites in order; returns {"metadata": ..., "suites": {name: result}}.

    With ``partial_json``, the results so far (finished suites and the running suite's finished rows)
    are written there after every row, so a run stopped by a time limit still leaves its numbers.
    """
    if s.threads:
        torch.set_num_threads(int(s.threads))
    results: Dict[str, Any] = {"metadata": metadata(s), "suites": {}}
    warning = busy_warning(results["metadata"])
    if warning:
        results["metadata"]["warning"] = warning
        s.log(f"WARNING: {warning}")
    for name in names:
        t0 = time.perf_counter()
        if partial_json is not None:
            def on_row(name=name):
                running = {"rows": s.live_rows, "in_progress": True}
                write_json(partial_json, {**results, "suites": {**results["suites"], name: running}})
            s.on_row = on_row
        try:
            res = SUITE_FUNCS[name](s)
        except Exception as e:  # keep the other suites' results
            import traceback

            traceback.print_exc(file=sys.stderr)
            res = {"rows": [], "columns": [], "notes": [f"FAILED: {type(e).__name__}: {e}"], "error": str(e)}
        res["wall_s"] = time.perf_counter() - t0
        results["suites"][name] = res
        print(f"\n## {name}\n")
        for table in display_tables(name, res):
            print(table)
        for n in res.get("notes", []):
            print(f"- {n}")
        sys.stdout.flush()
    results["metadata"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return _jsonable(results)


def _ints(text: str) -> List[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _floats(text: str) -> List[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tools/benchmark.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suites", nargs="*", help=f"any of {', '.join(SUITES)}, or all (default: all)")
    p.add_argument("--presets", default="tiny,small",
                   help="comma-separated: tiny, small, base (default: tiny,small)")
    p.add_argument("--backbones", default="unet2d,wavenet", help="comma-separated: unet2d, wavenet")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default)")
    p.add_argument("--quick", action="store_true", help="fewer repeats, shorter inputs, no 1,000-NFE runs")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (train, sample)")
    p.add_argument("--ab", default="", help="comma-separated A/B experiments in train: layout, sync")
    p.add_argument("--repeats", type=int, help="timed pairs per figure (default 5; 3 with --quick)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--checkpoint", action="append", default=[],
                   help="denoise: a run directory or .pt (repeatable); default: 2-step temp runs")
    p.add_argument("--nfes", type=_ints, help="sample: network evaluations, e.g. 30,50,100,1000")
    p.add_argument("--sample-batches", type=_ints, help="sample: batch sizes, e.g. 1,8")
    p.add_argument("--sample-seconds", type=float,
                   help="sample: length of each sample (default 2; 1 with --quick)")
    p.add_argument("--sample-budget", dest="sample_budget_s", type=float,
                   help="sample: seconds a run may take before it is measured shorter and extrapolated")
    p.add_argument("--denoise-seconds", type=_floats, help="denoise: input lengths, e.g. 4,60,600")
    p.add_argument("--denoise-budget", dest="denoise_budget_s", type=float,
                   help="denoise: a length predicted to take longer than this many seconds is skipped")
    p.add_argument("--denoise-steps", type=int,
                   help="denoise: steps for posterior/conditional (default: SpeechDenoiser's)")
    p.add_argument("--no-isolate", action="store_true",
                   help="measure train/denoise configurations in this process "
                        "(faster; where Linux cannot reset the peak RSS, CPU memory is then a lower bound)")
    p.add_argument("--json", type=Path, help="write all results and metadata as JSON")
    p.add_argument("--markdown", type=Path, help="write the tables as Markdown")
    p.add_argument("--update-readme", action="store_true",
                   help="write the tables between <!-- perf:start --> and <!-- perf:end --> in README.md")
    p.add_argument("--from-json", type=Path, action="append", default=[],
                   help="measure nothing: render the results of earlier --json files (repeatable; suites "
                        "of later files win) to stdout / --markdown / --update-readme")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-spec", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = WORKERS[args.worker](json.loads(args.worker_spec))
        print(WORKER_TAG + json.dumps(_jsonable(result)), flush=True)
        return 0
    if args.from_json:
        results = {"metadata": None, "suites": {}}
        for path in args.from_json:
            loaded = json.loads(Path(path).read_text())
            results["metadata"] = results["metadata"] or loaded["metadata"]
            results["suites"].update(loaded["suites"])
        for res in results["suites"].values():  # JSON turned (key, header) pairs into lists
            for k in ("columns", "fit_columns"):
                if k in res:
                    res[k] = [tuple(c) for c in res[k]]
        md = render_markdown(results)
        print(md)
        if args.markdown:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(md)
        if args.update_readme:
            update_readme(md)
        return 0
    names = list(args.suites) or ["all"]
    if "all" in names:
        names = list(SUITES)
    bad = [n for n in names if n not in SUITES]
    if bad:
        raise SystemExit(f"unknown suite(s) {', '.join(bad)}; valid: {', '.join(SUITES)}, all")
    kw: Dict[str, Any] = {"presets": [p.strip() for p in args.presets.split(",") if p.strip()],
                          "backbones": [b.strip() for b in args.backbones.split(",") if b.strip()],
                          "compile": args.compile, "ab": [a.strip() for a in args.ab.split(",") if a.strip()],
                          "isolate": not args.no_isolate, "checkpoints": list(args.checkpoint)}
    for b in kw["backbones"]:
        if b not in BACKBONES:
            raise SystemExit(f"unknown backbone {b!r}; valid: {', '.join(BACKBONES)}")
    for a in kw["ab"]:
        if a not in ("layout", "sync"):
            raise SystemExit(f"unknown --ab experiment {a!r}; valid: layout, sync")
    if args.repeats:
        kw["repeats"] = args.repeats
    if args.threads:
        kw["threads"] = args.threads
    s = Settings.make(args.device, args.quick, **kw)
    for key in ("nfes", "sample_batches", "sample_seconds", "sample_budget_s", "denoise_seconds",
                "denoise_budget_s", "denoise_steps"):
        value = getattr(args, key)
        if value is not None:
            setattr(s, key, value)
    results = run_suites(names, s, partial_json=args.json)
    md = render_markdown(results)
    if args.json:
        write_json(args.json, results)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(md)
    if args.update_readme:
        update_readme(md)
        s.log("README.md: performance section updated between the perf markers")
    failed = [n for n, r in results["suites"].items() if r.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
