"""Suite ``train``: one full training step per backbone and preset, as scoreaudio.train runs it.

Audio-seconds/s, examples/s, model FLOPs per step (FlopCounterMode), utilisation = achieved FLOP/s /
matmul FLOP/s, peak memory; optionally torch.compile and the ``--ab layout`` / ``--ab sync`` pairs.
"""

from __future__ import annotations

import time
from typing import Any, Dict

import torch

from bench.harness import count_flops, interleaved, paired, reference_for, sync
from bench.isolation import run_isolated, worker, worker_settings
from bench.memory import PeakMemory
from bench.settings import Settings
from bench.stats import median, pair_ratio, spread
from bench.workloads import BACKBONES, TrainStep, preset_name, set_layout, train_shape


@worker
def measure_train(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One (backbone, preset) training-step measurement (a worker: one fresh process each)."""
    s = worker_settings(spec)
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
        "backbone": backbone,
        "preset": preset_name(backbone, preset),
        "representation": BACKBONES[backbone][0],
        "params": step.params,
        "batch": batch,
        "seconds": seconds,
        "shape_from": spec.get("shape_from", ""),
        "precision": precision,
        "step_s": t,
        "step_s_spread": spread(times),
        "audio_s_per_s": batch * seconds / t,
        "examples_per_s": batch / t,
        "gflop_per_step": flops / 1e9,
        "achieved_gflops": flops / t / 1e9,
        "matmul_gflops": median(refs) / 1e9,
        "utilisation": median(util),
        "peak_mem_mb": mem.peak,
        "mem_growth_mb": mem.growth,
        "mem_kind": mem.kind,
    }
    if s.compile:
        t0 = time.perf_counter()
        step.use(compiled=True)
        step()  # compiles
        sync(dev)
        row["compile_s"] = time.perf_counter() - t0
        step()
        both = interleaved(
            {"eager": lambda: (step.use(False), step()), "compiled": lambda: (step.use(True), step())},
            dev,
            s.repeats,
        )
        row["step_s_compiled"] = median(both["compiled"])
        row["compile_speedup"] = pair_ratio(both["eager"], both["compiled"])
        row["utilisation_compiled"] = row["utilisation"] * row["compile_speedup"]
        step.use(False)
    if "layout" in s.ab:  # plain (NCHW / NCW) activations against channels-last ones, on any device
        plain = lambda: (set_layout(step.model, False), step())  # noqa: E731
        last = lambda: (set_layout(step.model, True), step())  # noqa: E731
        plain()
        last()
        both = interleaved({"plain": plain, "channels_last": last}, dev, s.repeats)
        row["layout_speedup"] = pair_ratio(both["plain"], both["channels_last"])
        row["step_s_plain_layout"] = median(both["plain"])
        row["step_s_channels_last"] = median(both["channels_last"])
        set_layout(step.model, None)
    if "sync" in s.ab:
        both = interleaved(
            {"trainpy": lambda: step(bookkeeping="trainpy"), "none": lambda: step()}, dev, s.repeats
        )
        row["sync_speedup"] = pair_ratio(both["trainpy"], both["none"])
    return row


def run(s: Settings) -> Dict[str, Any]:
    dev = torch.device(s.device)
    rows = s.new_rows()
    for backbone in s.backbones:
        for preset in s.presets:
            batch, seconds, origin = train_shape(backbone, preset, dev, s)
            spec = {
                "settings": s.to_json(),
                "backbone": backbone,
                "preset": preset,
                "batch": batch,
                "seconds": seconds,
                "shape_from": origin,
            }
            s.log(f"train {preset_name(backbone, preset)}: batch {batch} x {seconds:g} s ({origin}) ...")
            row = run_isolated("measure_train", spec, s)
            if "error" in row:
                row = {
                    "backbone": backbone,
                    "preset": preset_name(backbone, preset),
                    "batch": batch,
                    "seconds": seconds,
                    **row,
                }
                s.log(f"  FAILED: {row['error']}")
            else:
                s.log(
                    f"  {row['step_s']:.3f} s/step, utilisation {100 * row['utilisation']:.1f}% "
                    f"of {row['matmul_gflops']:.1f} GFLOP/s, {row['audio_s_per_s']:.2f} audio-s/s"
                )
            rows.append(row)
            s.on_row()
    cols = [
        ("preset", "model"),
        ("params", "params"),
        ("batch", "batch"),
        ("seconds", "crop s"),
        ("precision", "precision"),
        ("step_s", "s/step"),
        ("audio_s_per_s", "audio-s/s"),
        ("examples_per_s", "examples/s"),
        ("gflop_per_step", "GFLOP/step"),
        ("achieved_gflops", "GFLOP/s"),
        ("utilisation", "utilisation"),
        ("peak_mem_mb", "peak MB"),
        ("mem_growth_mb", "growth MB"),
    ]
    if s.compile:
        cols += [
            ("compile_speedup", "compile speed-up"),
            ("utilisation_compiled", "util. compiled"),
            ("compile_s", "compile s"),
        ]
    if "layout" in s.ab:
        cols += [("layout_speedup", "channels-last speed-up")]
    if "sync" in s.ab:
        cols += [("sync_speedup", "no-sync speed-up")]
    shapes = sorted({f"{r.get('preset')}: {r.get('shape_from', '')}" for r in rows})
    kinds = ", ".join(sorted({str(r.get("mem_kind")) for r in rows if r.get("mem_kind")})) or "n/a"
    memory = (
        f"{kinds}, from building the model through the timed steps"
        + ("" if dev.type == "cuda" else " (the RSS includes torch itself)")
        + "; growth MB: over the memory in use before the model was built"
    )
    notes = [
        "One full step as scoreaudio.train runs it: encode -> sigma -> dsm_loss -> backward "
        "-> clip -> AdamW -> EMA" + (" (bf16 autocast)" if dev.type == "cuda" else " (fp32)") + ".",
        "utilisation = (FlopCounterMode FLOPs per step / step time) / matmul FLOP/s, median over pairs "
        "timed back to back; GFLOP/step counts matmuls, convolutions and attention (forward + "
        "backward).",
        "Batch and crop: " + "; ".join(shapes) + ".",
        "peak MB: " + memory,
    ]
    if s.compile:
        notes.append("compile speed-up: eager time / torch.compile time, median over interleaved pairs.")
    if "layout" in s.ab:
        notes.append(
            "channels-last speed-up: plain-layout step time / channels-last step time, median "
            "over interleaved pairs (unet2d defaults to channels-last on the CPU, wavenet to the "
            "plain layout)."
        )
    if "sync" in s.ab:
        notes.append(
            "no-sync speed-up: step with train.py's per-step host reads / step without, "
            "median over interleaved pairs."
        )
    return {"rows": rows, "columns": cols, "notes": notes}
