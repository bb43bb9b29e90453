"""Suite ``matmul``: this device's large-matrix-product FLOP/s, the reference of every utilisation."""

from __future__ import annotations

from typing import Any, Dict

import torch

from bench.harness import MatmulRef
from bench.settings import Settings
from bench.stats import median, spread


def run(s: Settings) -> Dict[str, Any]:
    """fp32 on the CPU; bf16, fp32 and TF32 on CUDA: GFLOP/s median, max and spread over samples."""
    dev = torch.device(s.device)
    variants = [("fp32", torch.float32, False)]
    if dev.type == "cuda":
        variants = [
            ("bf16", torch.bfloat16, False),
            ("fp32", torch.float32, False),
            ("tf32", torch.float32, True),
        ]
    rows = s.new_rows()
    for name, dtype, tf32 in variants:
        ref = MatmulRef(dev, dtype, s.matmul_n, s.matmul_inner, tf32=tf32)
        vals = [ref.sample() for _ in range(max(3, s.repeats))]
        rows.append(
            {
                "dtype": name,
                "n": s.matmul_n,
                "products_per_sample": s.matmul_inner,
                "samples": len(vals),
                "gflops_median": median(vals) / 1e9,
                "gflops_max": max(vals) / 1e9,
                "spread": spread(vals),
            }
        )
        s.log(f"matmul {name} {s.matmul_n}^2: {median(vals) / 1e9:.1f} GFLOP/s (median of {len(vals)})")
        s.on_row()
    return {
        "rows": rows,
        "columns": [
            ("dtype", "dtype"),
            ("n", "n"),
            ("gflops_median", "GFLOP/s (median)"),
            ("gflops_max", "GFLOP/s (max)"),
            ("spread", "spread"),
        ],
        "notes": [
            "Reference of every utilisation figure: n x n random matrices, torch.mm, "
            "device-synced; spread = (max - min) / median over the samples (machine noise)."
        ],
    }
