"""Measure how fast scoreaudio trains, generates and denoises, as ratios that survive a busy machine.

The command line is ``tools/benchmark.py`` (:mod:`bench.cli`); this package is what it runs.

Suites (any subset, in any order; ``all`` runs the five), one module each under :mod:`bench.suites`:

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
docs/performance.md, or the file ``--readme`` names, adding the markers at the end if missing;
nothing else in the file is touched).

Modules:

* :mod:`bench.settings`   ``Settings``: every knob of a run, with the per-device and --quick defaults.
* :mod:`bench.harness`    timing: device-synced calls, the matmul reference, pairs and interleaving,
                          FLOP counting.
* :mod:`bench.stats`      medians, spreads, per-pair ratios, log-log exponents.
* :mod:`bench.memory`     peak memory of a block (CUDA allocator or the CPU resident set).
* :mod:`bench.meta`       what a result was measured on: date, machine, CPU, torch, git revision, load.
* :mod:`bench.workloads`  the models, training step and inputs the suites time.
* :mod:`bench.isolation`  one configuration per fresh process (clean peak RSS).
* :mod:`bench.suites`     one module per suite; ``SUITES`` and ``SUITE_FUNCS``.
* :mod:`bench.runner`     running suites in order, partial JSON after every row.
* :mod:`bench.results`    results as strict JSON and back.
* :mod:`bench.markdown`   the Markdown tables.
* :mod:`bench.readme`     replacing a marked block of a Markdown file, and which file holds each
                          block (shared with the other tools).
* :mod:`bench.cli`        the command line of tools/benchmark.py.

``tools/`` is not an installed package: the tool scripts put their own folder on ``sys.path`` and
import this package as ``bench``.
"""

from __future__ import annotations

from pathlib import Path

#: the checkout this package lives in (recipes/, README.md, docs/)
REPO = Path(__file__).resolve().parents[2]
