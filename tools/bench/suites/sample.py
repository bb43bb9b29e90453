"""Suite ``sample``: real-time factor of the ald, pc and heun samplers at several network-evaluation
budgets and batch sizes, through generation.draw_samples (the path ``scoreaudio generate`` takes)."""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Tuple

import torch

from bench.harness import MatmulRef, count_flops, interleaved, paired, reference_for
from bench.settings import Settings
from bench.stats import median, pair_ratio
from bench.workloads import SIGMAS, eval_model, preset_name

SAMPLERS = ("ald", "pc", "heun")


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
    base = {
        "backbone": backbone,
        "preset": preset_name(backbone, preset),
        "batch": batch,
        "seconds": s.sample_seconds,
        "audio_s": audio_s,
        "gflop_per_eval": fwd_flops / 1e9,
        "forward_s": t_fwd,
        "forward_rtf": t_fwd / audio_s,
        "forward_utilisation": median([fwd_flops / t / r for t, r in zip(fwd_times, fwd_refs, strict=True)]),
    }
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
                    draw_samples(
                        model,
                        rep,
                        SIGMAS,
                        run_cfg,
                        num=batch,
                        seconds=s.sample_seconds,
                        sample_rate=sr,
                        device=dev,
                        generator=gen,
                    )

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
            rows.append(
                {
                    **base,
                    "sampler": name,
                    "nfe_requested": nfe,
                    "nfe": plan.nfe,
                    "measured_nfe": run_plan.nfe,
                    "extrapolated": extrap,
                    "wall_s": t_total,
                    "rtf": t_total / audio_s,
                    "per_eval_s": per_eval,
                    "overhead": max(0.0, 1.0 - t_fwd * run_plan.nfe / t_run),
                    "utilisation": util,
                }
            )
            s.log(
                f"  {name:4s} nfe {plan.nfe:4d}: RTF {t_total / audio_s:.3g}"
                + (f" (extrapolated from {run_plan.nfe} evaluations)" if extrap else "")
            )
    return rows


def run(s: Settings) -> Dict[str, Any]:
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
    cols = [
        ("preset", "model"),
        ("sampler", "sampler"),
        ("nfe", "NFE"),
        ("batch", "batch"),
        ("audio_s", "audio s"),
        ("rtf", "RTF"),
        ("measured_nfe", "measured NFE"),
        ("overhead", "sampler overhead"),
        ("utilisation", "utilisation"),
    ]  # JSON rows; see sample_table
    notes = [
        "RTF = processing seconds / audio seconds (audio s = batch x sample length) through "
        "generate.draw_samples: initial noise, sampler with the watch callback, decode, peak limit. "
        "'@N NFE' is the budget asked for; the sampler's plan makes at most N network evaluations.",
        "measured NFE: budgets measured in full; the rest would exceed the time budget, so the same "
        "sampler was run with a budget of N evaluations and the per-evaluation cost extrapolated "
        "linearly (the ladder does not change the cost of one evaluation).",
        "sampler overhead = 1 - (NFE x one network forward) / sampler time: the share spent outside the "
        "network (elementwise updates, noise, callback, decode).",
        "Untrained weights: the cost of a network evaluation does not depend on the weights.",
    ]
    if s.compile:
        cols.append(("compile_speedup", "compile speed-up (forward)"))
    return {"rows": rows, "columns": cols, "notes": notes}
