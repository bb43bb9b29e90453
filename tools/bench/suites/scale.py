"""Suite ``scale``: training-step cost against crop length and against batch size, with the fitted
log-log exponents (cost = step time x matmul FLOP/s measured alongside, so load cancels)."""

from __future__ import annotations

import gc
from typing import Any, Dict

import torch

from bench.harness import paired, reference_for
from bench.settings import Settings
from bench.stats import fit_exponent, median
from bench.workloads import TrainStep, preset_name, train_shape


def run(s: Settings) -> Dict[str, Any]:
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
                rows.append(
                    {
                        "backbone": backbone,
                        "preset": preset_name(backbone, preset),
                        "axis": axis,
                        "batch": batch,
                        "seconds": seconds,
                        "step_s": median(times),
                        "matmul_equiv_gflop": cost / 1e9,
                        "cost_per_audio_s": cost / 1e9 / (batch * seconds),
                    }
                )
                s.on_row()
                del step
                gc.collect()
            fits.append(
                {
                    "backbone": backbone,
                    "preset": preset_name(backbone, preset),
                    "axis": axis,
                    "values": list(values),
                    "exponent": fit_exponent(values, costs),
                }
            )
            s.log(f"  step cost ~ {axis}^{fits[-1]['exponent']:.2f}")
    cols = [
        ("preset", "model"),
        ("axis", "varied"),
        ("batch", "batch"),
        ("seconds", "crop s"),
        ("step_s", "s/step"),
        ("matmul_equiv_gflop", "matmul-equiv. GFLOP"),
        ("cost_per_audio_s", "per audio-s"),
    ]
    notes = [
        "Training-step cost against crop length (at the suite's batch) and batch size (at its crop). "
        "Cost = step time x matmul FLOP/s measured alongside (load cancels); exponent = log-log slope "
        "(1 = linear; below 1 = fixed overheads still matter at the small end)."
    ]
    return {
        "rows": rows,
        "columns": cols,
        "notes": notes,
        "fits": fits,
        "fit_columns": [
            ("preset", "model"),
            ("axis", "varied"),
            ("values", "values"),
            ("exponent", "exponent"),
        ],
    }
