"""Generation: sampling audio from a score model.

Three layers, each a thin shell over the one below:

* :func:`draw_samples` — the pure core (model + representation + sigma settings + sampler config
  -> peak-safe waveforms); training's sample hook calls it. It is :func:`sample_model_space`
  (the sampler run, with a non-finite check) followed by :func:`decode_samples` (representation
  decode + :func:`limit_peaks`).
* :func:`generate` — the Python API for notebooks: a checkpoint in, ``[(wav (T,), rate), ...]`` out.
  :func:`sample_checkpoint` does the same and also returns what a manifest needs (the sampler plan,
  timings, the raw model-space tensors).
* ``scoreaudio generate`` (:func:`configure_parser`, :func:`run_cli`) — writes ``sample_000.wav``...,
  a spectrogram PNG per sample, optionally the model-space tensors (``sample_000.pt``, for
  ``tools/export_wavs.py``) and ``manifest.json`` (every setting, the checkpoint's SHA-256, the
  sampler plan, timings and the real-time factor). ``--out`` (a folder that can be written) is
  checked before the checkpoint is loaded, and the request's memory (:func:`check_memory`, also
  in the Python API) before anything is sampled.

Seeding: samples are drawn in batches of ``batch_size``; batch ``b`` draws all its randomness from
its own ``torch.Generator`` seeded with ``derive_seed(seed, b)``. So a run is bit-exact for the same
(checkpoint, seed, batch size, sampler, steps, seconds) on the CPU, and asking for more samples with
the same batch size keeps the earlier ones. A different batch size gives different (equally valid)
samples: the samplers draw one noise tensor per batch, and the PC corrector's step size uses norms
averaged over the batch. CUDA results differ from CPU results (different random streams and kernels).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from .errors import ConfigError, ScoreAudioError, one_line
from .noise import NoiseLevels
from .sampling import SAMPLERS, SamplerPlan, get_sampler, sampler_ladder
from .utils.checks import check_int
from .utils.files import atomic_write

PEAK_LIMIT = 0.99  # samples louder than this are scaled down (never clipped)
MANIFEST = "manifest.json"
#: Peak memory of a sampling run as a share of the summed sizes of every layer's output in one
#: network call (:func:`network_bytes_per_sample`). Measured as peak RSS growth on the CPU (heun,
#: 2 samples of 2-4 s): 0.24 to 0.59 over unet2d tiny/small/base, wavenet tiny/small and the
#: stft_unet presets, because inference mode frees most outputs as soon as the next layer has run;
#: 0.6 keeps the estimate above every one of those measurements.
ACTIVATION_SHARE = 0.6
#: Sampler states alive at once besides the network's activations (heun: x, d, x_next, d_next,
#: the ladder's noise draw, and one spare for the decode).
STATE_COPIES = 6
#: Length of the input the memory probe runs the network on, seconds.
PROBE_SECONDS = 0.5


class OutputExistsError(ScoreAudioError, FileExistsError):
    """An output file exists and overwriting was not asked for."""


class NotEnoughMemoryError(ScoreAudioError, MemoryError):
    """A request would need more memory than the machine has free (refused before sampling)."""


def plan_for(sampler_cfg, levels: NoiseLevels | Mapping[str, float], dim: int) -> SamplerPlan:
    """The sampler's ladder and settings for ``sampler_cfg.steps`` network evaluations between the
    run's ``levels`` (:class:`~scoreaudio.noise.NoiseLevels`, or the dict of them a checkpoint stores)."""
    levels = NoiseLevels.coerce(levels)
    return sampler_ladder(
        sampler_cfg.name,
        int(sampler_cfg.steps),
        levels.sigma_min,
        levels.sigma_max,
        dim=dim,
        snr=float(sampler_cfg.snr),
        final_denoise=bool(sampler_cfg.final_denoise),
    )


def limit_peaks(wav: torch.Tensor, limit: float = PEAK_LIMIT) -> torch.Tensor:
    """(N, 1, T) -> (N, 1, T): examples peaking above ``limit`` are scaled down to it (never clipped)."""
    peak = wav.abs().flatten(1).amax(dim=1).clamp_min(1e-12)  # (N,)
    gain = torch.where(peak > limit, limit / peak, torch.ones_like(peak))
    return wav * gain.view(-1, *([1] * (wav.ndim - 1)))


def sample_model_space(
    model,
    representation,
    levels: NoiseLevels | Mapping[str, float],
    sampler_cfg,
    *,
    num: int,
    length: int,
    device: torch.device,
    generator: Optional[torch.Generator] = None,
    cond: Optional[torch.Tensor] = None,
    callback: Optional[Callable[[dict], None]] = None,
) -> Tuple[torch.Tensor, SamplerPlan]:
    """Run the sampler in model space: returns ((num, C, *S) on ``device``, the plan it followed).

    Starts from sigma_max * N(0, I) of the representation's shape for ``length`` samples and runs
    ``sampler_cfg.name`` for ``sampler_cfg.steps`` network evaluations (the ladder from
    :func:`scoreaudio.sampling.sampler_ladder`). A non-finite value at any step is a
    ScoreAudioError naming the sampler, the step and its sigma (found without a host sync per step).
    """
    levels = NoiseLevels.coerce(levels)
    shape = (num, *representation.encoded_shape(length))
    try:
        plan = plan_for(sampler_cfg, levels, dim=math.prod(shape[1:]))
    except ValueError as e:
        raise ConfigError(
            f"{sampler_cfg.steps} network evaluations (--steps / sampler.steps) are too few "
            f"for sampler '{sampler_cfg.name}': {e}"
        ) from None
    x = plan.sigmas[0].item() * torch.randn(shape, generator=generator, device=device)
    first_bad = torch.full((), -1, dtype=torch.long, device=device)
    bad_sigma = torch.zeros((), dtype=torch.float64, device=device)
    total = [plan.nfe]

    def watch(info: dict) -> None:
        # Records the first step with a non-finite value without a host sync per step.
        new = ~torch.isfinite(info["x"]).all() & (first_bad < 0)
        first_bad.copy_(torch.where(new, torch.full_like(first_bad, info["i"]), first_bad))
        bad_sigma.copy_(torch.where(new, torch.full_like(bad_sigma, info["sigma"]), bad_sigma))
        total[0] = info["total"]
        if callback is not None:
            callback(info)

    score_fn = model if cond is None else (lambda x_, s_: model(x_, s_, cond))
    sampler = get_sampler(plan.name)
    with torch.inference_mode():
        x = sampler(score_fn, x, plan.sigmas.to(device), generator=generator, callback=watch, **plan.kwargs)
    step = int(first_bad)
    if step >= 0:
        raise ScoreAudioError(
            f"sampler '{plan.name}' produced non-finite values at step {step + 1} of "
            f"{total[0]} (sigma={float(bad_sigma):.4g}); try another --sampler or more "
            f"--steps, or a later checkpoint"
        )
    return x, plan


def decode_samples(representation, x: torch.Tensor, length: int, *, sampler: str = "?") -> torch.Tensor:
    """Model space (N, C, *S) -> peak-safe (N, 1, length) float32 waveforms on the CPU."""
    with torch.inference_mode():
        wav = representation.decode(x, length).float()
    if not torch.isfinite(wav).all():
        raise ScoreAudioError(
            f"sampler '{sampler}' gave samples that decode to non-finite audio; "
            f"try another --sampler or more --steps, or a later checkpoint"
        )
    return limit_peaks(wav).cpu()


def draw_samples(
    model,
    representation,
    levels: NoiseLevels | Mapping[str, float],
    sampler_cfg,
    *,
    num: int,
    seconds: float,
    sample_rate: int,
    device: torch.device,
    generator: Optional[torch.Generator] = None,
    cond: Optional[torch.Tensor] = None,
    callback: Optional[Callable[[dict], None]] = None,
) -> torch.Tensor:
    """Draw ``num`` waveforms of ``seconds`` from the model: returns (num, 1, T) float32 on CPU.

    Starts from sigma_max * N(0, I) in model space, runs the configured sampler for
    ``sampler_cfg.steps`` network evaluations (see :func:`scoreaudio.sampling.sampler_ladder`),
    decodes with the representation, and scales any sample whose peak exceeds 0.99 down to it
    (never clips). A non-finite value at any step is a ScoreAudioError naming the sampler and step.
    ``cond`` (num, C, *S) conditions a conditional model on an input.
    """
    length = num_samples_for(seconds, sample_rate)
    x, plan = sample_model_space(
        model,
        representation,
        levels,
        sampler_cfg,
        num=num,
        length=length,
        device=device,
        generator=generator,
        cond=cond,
        callback=callback,
    )
    return decode_samples(representation, x, length, sampler=plan.name)


def num_samples_for(seconds: float, sample_rate: int) -> int:
    """Length in samples of ``seconds`` at ``sample_rate``; ConfigError unless it is at least one sample."""
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise ConfigError(f"seconds must be a number, got {seconds!r}") from None
    length = round(seconds * sample_rate) if math.isfinite(seconds) else 0
    if length <= 0:
        raise ConfigError(
            f"--seconds must be positive (at least one sample at {sample_rate} Hz), got {seconds}"
        )
    return length


def write_sample_files(
    wavs: torch.Tensor,
    sample_rate: int,
    out_dir: Path,
    *,
    start_index: int = 0,
    overwrite: bool = True,
    pictures: bool = True,
) -> List[Path]:
    """Write (N, 1, T) waveforms as ``sample_000.wav``... (+ a spectrogram PNG each) into out_dir."""
    from .audio.features import spectrogram_png
    from .audio.io import save

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, wav in enumerate(wavs):
        path = out_dir / sample_name(start_index + k, ".wav")
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} exists; pass --overwrite or another --out folder")
        save(path, wav, sample_rate)
        if pictures:
            spectrogram_png(wav, sample_rate, path.with_suffix(".png"), title=path.name)
        paths.append(path)
    return paths


def sample_name(index: int, suffix: str) -> str:
    return f"sample_{index:03d}{suffix}"


# --------------------------------------------------------------------------------------------
# Memory: refuse a request that cannot fit before allocating it
# --------------------------------------------------------------------------------------------
def network_bytes_per_sample(
    model, representation, sample_rate: int, sigma: float, device: torch.device
) -> float:
    """Bytes one sampler step needs per waveform sample of one example, measured on ``model``.

    Runs the network once on ``PROBE_SECONDS`` of zeros and sums the sizes of every layer's
    output (forward hooks on the leaf modules), times :data:`ACTIVATION_SHARE`; doubled when the
    network builds an autograd graph while sampling (an energy model's score is a gradient, so its
    activations are kept for the backward pass). Adds :data:`STATE_COPIES` model-space states.
    The networks are convolutional, so this grows linearly with the length.
    """
    probe = max(1, round(PROBE_SECONDS * sample_rate))
    x = torch.zeros((1, *representation.encoded_shape(probe)), device=device)
    seen = {"bytes": 0, "grad": False}

    def count(module, inputs, output) -> None:
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                seen["bytes"] += t.numel() * t.element_size()
                seen["grad"] = seen["grad"] or t.requires_grad

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.inference_mode():
            model(x, torch.full((1,), float(sigma), device=device))
    finally:
        for h in hooks:
            h.remove()
    activations = ACTIVATION_SHARE * seen["bytes"] * (2 if seen["grad"] else 1)
    return (activations + STATE_COPIES * x.numel() * x.element_size()) / probe


def available_memory(device: torch.device) -> Optional[int]:
    """Bytes free for new tensors on ``device``; None when this platform does not say.

    CUDA: the driver's free memory plus what torch's caching allocator holds unused. CPU:
    psutil's ``available`` when it is installed, else ``MemAvailable`` of /proc/meminfo (Linux).
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**29 else f"{n / 2**20:.0f} MiB"


def check_memory(
    *,
    num: int,
    batch_size: int,
    length: int,
    sample_rate: int,
    per_sample: float,
    state_per_sample: float,
    keep_model_space: bool,
    device: torch.device,
) -> None:
    """NotEnoughMemoryError when a request cannot fit, saying what it needs and what to lower.

    ``per_sample``: bytes per waveform sample of one example while sampling
    (:func:`network_bytes_per_sample`); ``state_per_sample``: bytes of the model-space state per
    waveform sample. The sampler runs ``min(batch_size, num)`` examples at once on ``device``;
    every finished waveform (float32) and, with ``keep_model_space``, every state is kept in CPU
    memory, twice over at the end (the batches and their concatenation). On the CPU both draw on
    the same memory. An unknown amount of free memory is not checked.
    """
    at_once = min(batch_size, num)
    work = at_once * length * per_sample
    kept = 2 * num * length * (4 + (state_per_sample if keep_model_space else 0))
    seconds = length / sample_rate
    what = f"generating {num} sample(s) of {seconds:g} s ({at_once} at a time at {sample_rate} Hz)"
    host = available_memory(torch.device("cpu"))
    if device.type == "cuda":
        free = available_memory(device)
        if free is not None and work > free:
            lower = "--seconds" + (" or --batch-size" if at_once > 1 else "")
            raise NotEnoughMemoryError(
                f"{what} needs about {_gib(work)} of memory on {device} but "
                f"{_gib(free)} is free; lower {lower}"
            )
        if host is not None and kept > host:
            raise NotEnoughMemoryError(
                f"{what} keeps about {_gib(kept)} of results in memory but "
                f"{_gib(host)} is available; lower --num or --seconds"
            )
        return
    if host is not None and work + kept > host:
        if work >= kept:
            lower = "--seconds" + (" or --batch-size" if at_once > 1 else "")
        else:
            lower = "--num or --seconds"
        raise NotEnoughMemoryError(
            f"{what} needs about {_gib(work + kept)} of memory but {_gib(host)} is available; lower {lower}"
        )


# --------------------------------------------------------------------------------------------
# From a checkpoint
# --------------------------------------------------------------------------------------------
@dataclass
class Generation:
    """What :func:`sample_checkpoint` produced, with everything a manifest records."""

    wavs: torch.Tensor  # (N, 1, T) float32 on the CPU, peak-safe
    sample_rate: int
    plan: SamplerPlan  # the ladder and settings each batch followed; plan.nfe network calls per batch
    pretrained: object  # scoreaudio.pretrained.Pretrained
    settings: Dict[str, object]  # the resolved arguments
    timings: Dict[str, object]  # load_s, sample_s, batch_s, audio_s, rtf
    model_space: Optional[torch.Tensor] = None  # (N, C, *S) float32 CPU: raw sampler output (before decode)
    batch_seeds: List[int] = field(default_factory=list)  # the generator seed of each batch


def sample_checkpoint(
    checkpoint=None,
    num: int = 4,
    seconds: float = 2.0,
    *,
    sampler: Optional[str] = None,
    steps: Optional[int] = None,
    batch_size: int = 4,
    seed: int = 0,
    device: Union[str, torch.device, None] = None,
    ema: bool = True,
    runs_root: Union[str, Path] = "runs",
    progress: Optional[bool] = False,
    keep_model_space: bool = False,
) -> Generation:
    """Load a checkpoint and draw ``num`` samples of ``seconds``; see :func:`generate` for the arguments.

    ``progress``: True shows a tqdm bar over sampler steps on stderr, False none, None only when
    stderr is a terminal. ``keep_model_space`` also returns the sampler's raw output.
    """
    from .pretrained import load_pretrained
    from .utils.tensor import derive_seed

    num = check_int("num", num, error=ConfigError)
    batch_size = check_int("batch_size", batch_size, error=ConfigError)
    seed = check_int("seed", seed, minimum=0, error=ConfigError)
    if steps is not None:
        steps = check_int("steps", steps, error=ConfigError)
    if sampler is not None and sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; valid: {', '.join(sorted(SAMPLERS))}")
    try:
        ok = math.isfinite(float(seconds)) and float(seconds) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"--seconds must be a positive number, got {seconds!r}")
    seconds = float(seconds)

    t0 = time.perf_counter()
    pre = load_pretrained(checkpoint, device=device, ema=ema, runs_root=runs_root)
    if pre.conditional:
        raise ConfigError(
            f"{pre.path} is a conditional denoiser: it "
            f"needs a noisy input to condition on and cannot generate from noise; use "
            f"'scoreaudio denoise NOISY.wav --checkpoint {pre.path}'"
        )
    if pre.cfg.model.backbone == "mlp":
        raise ConfigError(
            f"{pre.path} is a toy model (mlp backbone) of fixed-size data, not audio; "
            f"generate needs a unet2d or wavenet checkpoint"
        )
    length = num_samples_for(seconds, pre.sample_rate)
    sc = pre.cfg.sampler
    n_steps = int(sc.steps if steps is None else steps)
    sampler_cfg = SimpleNamespace(
        name=sampler or str(sc.name), steps=n_steps, snr=float(sc.snr), final_denoise=bool(sc.final_denoise)
    )
    if pre.device.type == "cuda":
        torch.cuda.synchronize(pre.device)
    load_s = time.perf_counter() - t0
    # Before anything as large as the request is allocated: a typo such as --seconds 10000 is
    # refused with what it needs instead of swapping the machine or dying out of memory.
    state_per_sample = 4 * math.prod(pre.representation.encoded_shape(length)) / length
    per_sample = network_bytes_per_sample(
        pre.model, pre.representation, pre.sample_rate, pre.levels.sigma_max, pre.device
    )
    check_memory(
        num=num,
        batch_size=batch_size,
        length=length,
        sample_rate=pre.sample_rate,
        per_sample=per_sample,
        state_per_sample=state_per_sample,
        keep_model_space=keep_model_space,
        device=pre.device,
    )

    n_batches = -(-num // batch_size)
    bar = None
    if progress is None or progress:
        from tqdm import tqdm

        bar = tqdm(
            total=None,
            unit="step",
            desc=f"sampling ({sampler_cfg.name})",
            dynamic_ncols=True,
            disable=None if progress is None else False,
            file=sys.stderr,
            mininterval=0.5,
        )

    def tick(info: dict) -> None:
        if bar.total is None:
            bar.total = info["total"] * n_batches
            bar.refresh()
        bar.update(1)

    wavs, latents, batch_s, seeds, plan = [], [], [], [], None
    try:
        for b in range(n_batches):
            n = min(batch_size, num - b * batch_size)
            seeds.append(derive_seed(seed, b))
            gen = torch.Generator(device=pre.device).manual_seed(seeds[-1])
            tb = time.perf_counter()
            x, plan = sample_model_space(
                pre.model,
                pre.representation,
                pre.levels,
                sampler_cfg,
                num=n,
                length=length,
                device=pre.device,
                generator=gen,
                callback=tick if bar is not None else None,
            )
            wavs.append(decode_samples(pre.representation, x, length, sampler=plan.name))  # syncs the device
            batch_s.append(time.perf_counter() - tb)
            if keep_model_space:
                latents.append(x.float().cpu())
    finally:
        if bar is not None:
            bar.close()

    sample_s = float(sum(batch_s))
    audio_s = num * length / pre.sample_rate
    settings = {
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "runs_root": str(runs_root),
        "num": num,
        "seconds": seconds,
        "sampler": sampler_cfg.name,
        "steps": sampler_cfg.steps,
        "batch_size": batch_size,
        "seed": seed,
        "device": str(pre.device),
        "ema": bool(ema),
        "snr": sampler_cfg.snr,
        "final_denoise": sampler_cfg.final_denoise,
    }
    timings = {
        "load_s": load_s,
        "sample_s": sample_s,
        "batch_s": batch_s,
        "audio_s": audio_s,
        "rtf": sample_s / audio_s,
    }
    return Generation(
        torch.cat(wavs),
        pre.sample_rate,
        plan,
        pre,
        settings,
        timings,
        torch.cat(latents) if keep_model_space else None,
        seeds,
    )


def generate(
    checkpoint=None,
    num: int = 4,
    seconds: float = 2.0,
    *,
    sampler: Optional[str] = None,
    steps: Optional[int] = None,
    batch_size: int = 4,
    seed: int = 0,
    device: Union[str, torch.device, None] = None,
    ema: bool = True,
    runs_root: Union[str, Path] = "runs",
    progress: bool = False,
) -> List[Tuple[np.ndarray, int]]:
    """Draw ``num`` speech samples of ``seconds`` from a trained model.

    Args:
        checkpoint: a ``.pt`` file, a run directory, or None for the newest run under ``runs_root``.
        num: how many samples.
        seconds: length of each (any length: the networks are fully convolutional).
        sampler: ``ald`` | ``pc`` | ``heun``; default the checkpoint's ``sampler.name``.
        steps: network evaluations per sample, shared over the sampler's ladder (the same budget
            for every sampler; see :func:`scoreaudio.sampling.sampler_ladder`); default the
            checkpoint's ``sampler.steps``.
        batch_size: samples drawn together.
        seed: batch ``b`` uses a generator seeded from (seed, b): bit-exact on the CPU for the same
            seed and batch size (see the module doc).
        device: ``None``/"auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        ema: use the EMA weights (the default) or the live training weights.
        progress: show a tqdm bar over sampler steps on stderr.

    Returns:
        ``[(wav, sample_rate), ...]``: ``wav`` a float32 ndarray (T,), peak at most 0.99.

    Raises:
        ScoreAudioError: no or unreadable checkpoint, a conditional (cdsm) checkpoint (use
            ``scoreaudio denoise``), bad arguments, or a sampler that diverged (non-finite values).
        NotEnoughMemoryError: the request needs more memory than is free (checked before
            sampling; :func:`check_memory`).
    """
    result = sample_checkpoint(
        checkpoint,
        num,
        seconds,
        sampler=sampler,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        device=device,
        ema=ema,
        runs_root=runs_root,
        progress=progress,
    )
    return [(w[0].numpy().copy(), result.sample_rate) for w in result.wavs]


# --------------------------------------------------------------------------------------------
# Writing results
# --------------------------------------------------------------------------------------------
def output_names(num: int, *, pictures: bool = True, tensors: bool = False) -> List[str]:
    """The files ``scoreaudio generate`` writes for ``num`` samples (checked before sampling)."""
    suffixes = [".wav"] + ([".png"] if pictures else []) + ([".pt"] if tensors else [])
    return [sample_name(k, s) for k in range(num) for s in suffixes] + [MANIFEST]


_SAMPLE_FILE = re.compile(r"sample_(\d+)(\.[a-z]+)")


def existing_outputs(out_dir: Path, num: int, *, pictures: bool = True, tensors: bool = False) -> List[str]:
    """The names of :func:`output_names` that already exist in ``out_dir``, in that order.

    Lists the folder rather than testing every name, so ``--num 1000000000`` costs no more here
    than ``--num 4`` (the memory check refuses it later, with the sample rate known).
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    suffixes = [".wav"] + ([".png"] if pictures else []) + ([".pt"] if tensors else [])
    found = []
    for name in os.listdir(out_dir):
        m = _SAMPLE_FILE.fullmatch(name)
        if m and m[2] in suffixes and int(m[1]) < num and name == sample_name(int(m[1]), m[2]):
            found.append((int(m[1]), suffixes.index(m[2]), name))
    names = [name for _, _, name in sorted(found)]
    return names + ([MANIFEST] if (out_dir / MANIFEST).exists() else [])


def check_out_folder(out: Path, flag: str = "--out") -> None:
    """ScoreAudioError unless ``out`` is a folder that takes new files or one that can be created.

    Checked before the checkpoint is loaded, so a mistyped ``--out`` costs no sampling. Tries it
    for real (a temporary folder made and removed in ``out`` or in its nearest existing parent):
    permission bits say nothing about read-only mounts or /proc, least of all for root.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ScoreAudioError(
            f"{flag} {out} is a file, not a folder; give a folder for the samples "
            f"(e.g. {flag} {out.parent / 'samples'})"
        )
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ScoreAudioError(
            f"{flag} {out} cannot be created: {parent} is a file; give another {flag} folder"
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".scoreaudio-", dir=parent))
    except OSError as e:
        where = "" if parent == out else f" (its folder {parent} takes no new files)"
        raise ScoreAudioError(
            f"cannot write into {flag} {out}{where}: {one_line(e)}; give a folder you can write to"
        ) from None


def check_outputs(out_dir: Path, names: List[str], overwrite: bool) -> None:
    """OutputExistsError naming the first of ``names`` that exists in ``out_dir`` (unless overwrite)."""
    if overwrite:
        return
    existing = [n for n in names if (Path(out_dir) / n).exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputExistsError(
            f"{Path(out_dir) / existing[0]} exists{more}; pass --overwrite or another --out folder"
        )


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as indented JSON, atomically."""

    def w(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")

    return atomic_write(path, w)


def save_tensor(path: Path, x: torch.Tensor) -> Path:
    """``torch.save`` a plain tensor atomically (loadable with ``weights_only=True``)."""
    return atomic_write(path, lambda tmp: torch.save(x.contiguous().clone(), tmp))


def _level_dbfs(wav: torch.Tensor) -> Optional[float]:
    rms = float(wav.double().pow(2).mean().sqrt())
    return 20.0 * math.log10(rms) if rms > 0 else None  # None: digital silence (JSON has no -inf)


def speech_measures_of(wavs: torch.Tensor, sample_rate: int) -> List[Dict[str, Optional[float]]]:
    """Per sample of (N, 1, T): voiced share, pause share and spectral flatness
    (:func:`scoreaudio.generation_metrics.speech_measures`; None where undefined, e.g. silence)."""
    from .generation_metrics import speech_measures

    out = []
    for wav in wavs:
        m = speech_measures(wav[0].double().numpy(), sample_rate)
        out.append({k: (v if math.isfinite(v) else None) for k, v in m.items()})  # JSON has no NaN
    return out


def generation_manifest(
    result: Generation,
    files: List[Dict[str, object]],
    extra: Dict[str, object],
    *,
    speech_measures: bool = True,
) -> dict:
    """The manifest.json content of one ``scoreaudio generate`` run.

    ``speech_measures`` adds each file's voiced share, pause share and spectral flatness to its
    entry in ``files`` (pYIN: ~0.1 s per 2 s sample on a CPU; see :mod:`scoreaudio.generation_metrics`).
    """
    from . import __version__
    from .utils.checkpoint import file_sha256

    timings = dict(result.timings)
    if speech_measures:
        t0 = time.perf_counter()
        measured = speech_measures_of(result.wavs, result.sample_rate)
        files = [{**entry, **m} for entry, m in zip(files, measured, strict=True)]
        timings["speech_measures_s"] = time.perf_counter() - t0
    pre = result.pretrained
    plan = result.plan
    ladder = plan.sigmas.tolist()
    device = pre.device
    return {
        "created_by": f"scoreaudio {__version__} generate",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {**result.settings, **extra},
        "checkpoint": {
            "path": str(Path(pre.path).resolve()),
            "sha256": file_sha256(pre.path),
            "step": pre.step,
            "weights": "ema" if result.settings["ema"] else "model",
            "backbone": str(pre.cfg.model.backbone),
            "preset": str(pre.cfg.model.preset),
            "dataset": str(pre.cfg.data.dataset),
        },
        "representation": pre.representation.to_dict(),
        "sample_rate": result.sample_rate,
        "length": int(result.wavs.shape[-1]),
        "sigmas": pre.levels.to_dict(),
        "sampler_plan": {
            "name": plan.name,
            "ladder_length": len(ladder),
            "nfe": plan.nfe,
            "nfe_requested": result.settings["steps"],
            "kwargs": dict(plan.kwargs),
            "sigma_first": ladder[0],
            "sigma_last": ladder[-1],
        },
        "seeding": {
            "seed": result.settings["seed"],
            "batch_seeds": result.batch_seeds,
            "rule": "batch b: torch.Generator(device).manual_seed(derive_seed(seed, b))",
        },
        "timings": {
            **timings,
            "device": _device_name(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads() if device.type == "cpu" else None,
        },
        "rtf": result.timings["rtf"],
        "files": files,
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", help="a .pt checkpoint or a run directory (default: the newest run under --runs-root)"
    )
    p.add_argument("--runs-root", default="runs", help="where to look for the newest run (default: runs)")
    p.add_argument("--out", default="samples", help="output folder, created if needed (default: samples/)")
    p.add_argument("--overwrite", action="store_true", help="replace existing sample files in --out")
    p.add_argument("--num", type=int, default=4, help="number of samples (default: 4)")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each sample, seconds (default: 2.0)")
    p.add_argument(
        "--sampler",
        choices=sorted(SAMPLERS),
        help="ald (annealed Langevin) | pc (predictor-corrector) | heun (probability-flow ODE); "
        "default: the checkpoint's",
    )
    p.add_argument(
        "--steps",
        type=int,
        help="network evaluations per sample, shared over the ladder (default: the checkpoint's)",
    )
    p.add_argument("--batch-size", type=int, default=4, help="samples drawn together (default: 4)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed; bit-exact on CPU for the same seed and --batch-size (default: 0)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when available) | cpu | cuda | cuda:N")
    p.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="use the EMA weights (default) or, with --no-ema, the live training weights",
    )
    p.add_argument(
        "--save-tensors",
        action="store_true",
        help="also save each sample's raw model-space tensor as sample_NNN.pt (for tools/export_wavs.py)",
    )
    p.add_argument("--no-pictures", action="store_true", help="skip the spectrogram PNGs")
    p.add_argument(
        "--no-speech-measures",
        action="store_true",
        help="skip the per-file voiced share, pause share and flatness in manifest.json "
        "(pYIN, ~0.1 s per 2 s sample)",
    )


def run_cli(args: argparse.Namespace) -> int:
    from .utils.device import resolve_device
    from .utils.logging import log

    out = Path(args.out)
    pictures, tensors = not args.no_pictures, bool(args.save_tensors)
    # Everything that can be refused without the checkpoint is, before it is loaded.
    check_out_folder(out)
    device = resolve_device(args.device, setting="--device")
    check_int("--num", args.num, error=ConfigError)
    if not math.isfinite(args.seconds) or args.seconds <= 0:
        raise ConfigError(f"--seconds must be positive, got {args.seconds}")
    check_outputs(out, existing_outputs(out, args.num, pictures=pictures, tensors=tensors), args.overwrite)

    result = sample_checkpoint(
        args.checkpoint,
        args.num,
        args.seconds,
        sampler=args.sampler,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        device=device,
        ema=args.ema,
        runs_root=args.runs_root,
        progress=None,
        keep_model_space=tensors,
    )
    t0 = time.perf_counter()
    paths = write_sample_files(result.wavs, result.sample_rate, out, overwrite=True, pictures=pictures)
    files = []
    for k, (path, wav) in enumerate(zip(paths, result.wavs, strict=True)):
        entry = {"wav": path.name, "peak": float(wav.abs().max()), "rms_dbfs": _level_dbfs(wav)}
        if pictures:
            entry["png"] = path.with_suffix(".png").name
        if tensors:
            pt = save_tensor(path.with_suffix(".pt"), result.model_space[k : k + 1])
            entry["pt"] = pt.name
            entry["pt_shape"] = list(result.model_space[k : k + 1].shape)
        files.append(entry)
    result.timings["write_s"] = time.perf_counter() - t0
    manifest = generation_manifest(
        result,
        files,
        {
            "out": str(out),
            "overwrite": bool(args.overwrite),
            "pictures": pictures,
            "save_tensors": tensors,
            "speech_measures": not args.no_speech_measures,
        },
        speech_measures=not args.no_speech_measures,
    )
    write_json(out / MANIFEST, manifest)
    t = result.timings
    plan = result.plan
    log(
        f"wrote {len(paths)} samples of {args.seconds:g} s to {out}/ ({plan.name}, {plan.nfe} network "
        f"evaluations, ladder of {len(plan.sigmas)}; {t['sample_s']:.1f} s sampling on "
        f"{result.pretrained.device}, real-time factor {t['rtf']:.2f})"
    )
    return 0
