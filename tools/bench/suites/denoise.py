"""Suite ``denoise``: real-time factor and peak memory of every SpeechDenoiser method against input
length (one fresh process per length), and the fitted log-log exponents of time and memory."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch

from bench import REPO
from bench.harness import paired, reference_for
from bench.isolation import run_isolated, worker, worker_settings
from bench.memory import PeakMemory
from bench.settings import Settings
from bench.stats import fit_exponent, median


def noisy_speech(seconds: float, sample_rate: int, snr_db: float = 10.0, seed: int = 0):
    """Speech-like audio (the built-in synthetic voice, tiled) + white noise at ``snr_db``: float32 numpy."""
    import numpy as np

    from scoreaudio.data.synthetic import synthesize_utterance

    T = int(round(seconds * sample_rate))
    utt = synthesize_utterance(0, 0, min(seconds, 4.0), sample_rate)
    clean = np.resize(utt, T).astype(np.float32)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(T).astype(np.float32)
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return clean + noise


@worker
def measure_denoise(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One (checkpoint, method, length) denoising measurement."""
    from scoreaudio.denoise import SpeechDenoiser

    s = worker_settings(spec)
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
    return {
        "method": method,
        "seconds": seconds,
        "steps": steps,
        "wall_s": t,
        "rtf": t / seconds,
        "peak_mem_mb": mem.peak,
        "mem_growth_mb": mem.growth,
        "mem_kind": mem.kind,
        "audio_mb": wav.nbytes / 2**20,
        "matmul_gflops": median(refs) / 1e9,
        "rtf_x_matmul": t / seconds * median(refs) / 1e9,
        "chunk_seconds": den.chunk_seconds,
        "batch_size": den.batch_size,
    }


def temp_checkpoints(s: Settings, root: Path) -> List[Tuple[str, str]]:
    """2-step runs of the quickstart recipe (unconditional, and conditional on noise-mixed pairs) for
    each preset: [(label, run dir)]."""
    from scoreaudio.config import compose
    from scoreaudio.train import train

    quick = [
        "data.synthetic.train_utterances=8",
        "data.synthetic.valid_utterances=2",
        "data.synthetic.test_utterances=2",
        "data.synthetic.utterance_seconds=1.0",
        "data.segment_seconds=0.5",
        "train.batch_size=2",
        "train.steps=2",
        "train.log_every=1",
        "train.val_every=0",
        "train.ckpt_every=2",
        "train.num_samples=0",
        f"train.device={s.device}",
        "sampler.steps=6",
    ]
    out = []
    for preset in s.presets:
        for label, extra in (
            ("unconditional", []),
            ("conditional", ["loss=cdsm", "data.noise_mix.enabled=true"]),
        ):
            run_dir = root / f"{preset}-{label}"
            s.log(f"denoise: training a 2-step {preset} {label} run into {run_dir} ...")
            cfg = compose(
                REPO / "recipes" / "quickstart.yaml",
                [f"model=unet2d_{preset}", *quick, f"train.run_dir={run_dir}", *extra],
            )
            with contextlib.redirect_stdout(sys.stderr):
                train(cfg)
            out.append((f"unet2d_{preset} ({label}, 2-step temp run)", str(run_dir)))
    return out


def run(s: Settings) -> Dict[str, Any]:
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
                        msg = (
                            f"skipped: predicted {predicted_rtf * seconds:.0f} s > budget "
                            f"{s.denoise_budget_s:.0f} s"
                        )
                        rows.append(
                            {
                                "checkpoint": label,
                                "model": model_name,
                                "method": method,
                                "seconds": seconds,
                                "skipped": msg,
                            }
                        )
                        s.log(f"denoise {method} {seconds:g} s: {msg}")
                        s.on_row()
                        continue
                    repeats = 3 if seconds * (predicted_rtf or 0) < 5 else 1
                    one_call = method in ("tweedie", "predictive")  # exactly one network call each
                    spec = {
                        "settings": s.to_json(),
                        "checkpoint": ckpt,
                        "method": method,
                        "seconds": seconds,
                        "steps": None if one_call else s.denoise_steps,
                        "repeats": repeats,
                    }
                    s.log(f"denoise {model_name} {method} {seconds:g} s ...")
                    r = run_isolated("measure_denoise", spec, s)
                    r = {"checkpoint": label, "model": model_name, **r, "method": method, "seconds": seconds}
                    if "error" in r:
                        s.log(f"  FAILED: {r['error']}")
                    else:
                        predicted_rtf = r["rtf"]
                        per_len.append(r)
                        s.log(
                            f"  RTF {r['rtf']:.3g}, peak {r['peak_mem_mb']:.0f} MB "
                            f"(+{r['mem_growth_mb']:.0f} MB)"
                        )
                    rows.append(r)
                    s.on_row()
                if len(per_len) >= 2:
                    xs = [r["seconds"] for r in per_len]
                    fit = {
                        "checkpoint": label,
                        "model": model_name,
                        "method": method,
                        "time_exponent": fit_exponent(
                            xs, [r["rtf_x_matmul"] * r["seconds"] for r in per_len]
                        ),
                        "peak_mem_exponent": fit_exponent(xs, [r["peak_mem_mb"] for r in per_len]),
                        "mem_growth_ratio": (
                            (per_len[-1]["mem_growth_mb"] + 1) / (per_len[0]["mem_growth_mb"] + 1)
                        ),
                        # marginal memory per input byte between the two longest inputs: the
                        # length-proportional buffers (input, output, overlap-add) in input copies
                        "input_copies": (
                            (per_len[-1]["mem_growth_mb"] - per_len[-2]["mem_growth_mb"])
                            / max(per_len[-1]["audio_mb"] - per_len[-2]["audio_mb"], 1e-9)
                        ),
                        "length_ratio": xs[-1] / xs[0],
                    }
                    fits.append(fit)
                    s.log(
                        f"  {method}: time ~ length^{fit['time_exponent']:.2f}, peak memory ~ "
                        f"length^{fit['peak_mem_exponent']:.2f}"
                    )
    finally:
        if tmp is not None:
            tmp.cleanup()
    cols = [
        ("model", "model"),
        ("method", "method"),
        ("seconds", "input s"),
        ("rtf", "RTF"),
        ("peak_mem_mb", "peak MB"),
        ("mem_growth_mb", "growth MB"),
        ("audio_mb", "input MB"),
        ("skipped", "note"),
    ]
    memory = ", ".join(sorted({str(r.get("mem_kind")) for r in rows if r.get("mem_kind")})) or "n/a"
    notes = [
        "One fresh process per length" if s.isolate else "In-process (one process for all lengths)",
        "RTF = seconds / input seconds, including resampling, chunking and overlap-add; peak MB: "
        + memory
        + " of the timed call(s); growth MB: over the memory in use before them (model "
        "loaded, warm-up call done, input in memory). Input: synthetic speech + white noise at "
        "10 dB SNR.",
        "Exponents: least-squares log-log slopes against input length; time uses matmul-equivalent "
        "cost (time x matmul FLOP/s measured alongside) so machine load cancels. Chunked processing "
        "should give time ~ 1 and memory ~ 0 once an input fills a batch of chunks; 'MB per input MB' "
        "is the extra memory per extra input MB between the two longest inputs (buffers that grow "
        "with the length: input, resampled copy, output, overlap-add sums).",
    ]
    return {
        "rows": rows,
        "columns": cols,
        "notes": notes,
        "fits": fits,
        "fit_columns": [
            ("model", "model"),
            ("method", "method"),
            ("time_exponent", "time exponent"),
            ("peak_mem_exponent", "peak-memory exponent"),
            ("mem_growth_ratio", "growth ratio"),
            ("length_ratio", "length ratio"),
            ("input_copies", "MB per input MB (two longest)"),
        ],
    }
