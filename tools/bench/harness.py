"""Timing: device-synchronised calls, the matmul reference they are paired with, FLOP counting.

A figure that matters is never one absolute time: every timed call is paired with a timed matrix
product right before or after it (:func:`paired`), or variants are run round-robin
(:func:`interleaved`), so load that slows both cancels in the ratio (:mod:`bench.stats`).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Tuple

import torch

if TYPE_CHECKING:
    from bench.settings import Settings


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


class MatmulRef:
    """Timed products of two random n x n matrices: this device's large-matmul FLOP/s, on demand.

    ``sample()`` times ``inner`` products (one device sync) and returns FLOP/s. Random inputs, not
    zeros (zeros can run faster than real data).
    """

    def __init__(
        self,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        n: int = 2048,
        inner: int = 1,
        tf32: bool = False,
    ):
        self.device, self.dtype, self.n, self.inner, self.tf32 = device, dtype, int(n), int(inner), tf32
        g = torch.Generator(device=device).manual_seed(0)
        self.a = torch.randn(n, n, generator=g, device=device, dtype=dtype)
        self.b = torch.randn(n, n, generator=g, device=device, dtype=dtype)
        self.c = torch.empty(n, n, device=device, dtype=dtype)
        self.flops = 2.0 * n**3 * self.inner
        for _ in range(2):
            self._run()

    def _run(self) -> None:
        ctx = (
            _tf32(self.tf32)
            if self.device.type == "cuda" and self.dtype == torch.float32
            else contextlib.nullcontext()
        )
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


def reference_for(device: torch.device, precision: str, s: "Settings") -> MatmulRef:
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


def interleaved(
    fns: Dict[str, Callable[[], Any]], device: torch.device, repeats: int
) -> Dict[str, List[float]]:
    """Seconds of each variant, run round-robin (order reversed every other round)."""
    out: Dict[str, List[float]] = {k: [] for k in fns}
    keys = list(fns)
    for i in range(repeats):
        for k in keys if i % 2 == 0 else keys[::-1]:
            out[k].append(time_call(fns[k], device))
    return out


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call as FlopCounterMode counts them (matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())
