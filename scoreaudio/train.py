"""Training: ``python -m scoreaudio.train RECIPE [key=value ...]``.

One function, :func:`train`, reads top to bottom (DESIGN.md §5):

    build run dir -> data -> representation -> sigma settings (NCSNv2 rules) -> network, AdamW,
    EMA -> resume -> DDP -> for each step: batch -> encode on device -> sample sigma -> per-example
    loss -> backward (bf16 autocast on CUDA) -> clip -> step -> EMA -> log / validate / sample /
    checkpoint (atomic)

Every random draw (data order, crops, noise mixing, sigmas, noise) is a pure function of
(train.seed, step, rank), so a run killed at any point resumes from its last checkpoint and
continues exactly as if it had never stopped.

Distributed: ``torchrun --nproc_per_node=K -m scoreaudio.train RECIPE`` (NCCL on GPUs, gloo on
CPUs); only rank 0 writes; the effective batch is batch_size x K x grad_accum.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from . import __version__
from .audio.representation import build_representation
from .config import compose, is_conditional, to_yaml
from .data.datasets import build_datasets
from .errors import ConfigError, DataError, TrainingError
from .losses import dsm_loss
from .nn.build import build_score_model, check_representation, count_parameters
from .noise import geometric_sigmas, num_levels_from_dim, sigma_max_from_data
from .train_step import NonFiniteStep, ema_half_life, lr_at, sigma_bucket, train_step
from .utils.checkpoint import LAST, load_checkpoint_dict, save_checkpoint
from .utils.device import resolve_device
from .utils.ema import EMA
from .utils.logging import MetricsWriter, log
from .utils.tensor import derive_seed


# --------------------------------------------------------------------------------------------
# Data order: a function of (seed, step)
# --------------------------------------------------------------------------------------------
class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for each (step, micro-batch) from ``start_step``, a list of (index, draw_seed).

    The global draw number g = ((step * accum + micro) * world + rank) * batch + b walks through
    a fresh permutation of the files every epoch (epoch = g // n), so every file is seen once per
    epoch across all ranks; ``draw_seed`` = hash(seed, g) drives the random crop and noise mixing.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, start_step: int, total_steps: int,
                 *, rank: int = 0, world: int = 1, accum: int = 1):
        self.n, self.batch, self.seed = n_items, batch_size, seed
        self.start, self.total, self.rank, self.world, self.accum = start_step, total_steps, rank, world, accum
        self._perm_epoch, self._perm = -1, None

    def _index(self, g: int) -> int:
        epoch, pos = divmod(g, self.n)
        if epoch != self._perm_epoch:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, 1, epoch))
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=gen).tolist(), epoch
        return self._perm[pos]

    def __iter__(self) -> Iterator[List[tuple]]:
        for step in range(self.start, self.total):
            for micro in range(self.accum):
                g0 = ((step * self.accum + micro) * self.world + self.rank) * self.batch
                yield [(self._index(g), derive_seed(self.seed, 2, g)) for g in range(g0, g0 + self.batch)]

    def __len__(self) -> int:
        return max(0, self.total - self.start) * self.accum


def _collate(items: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


# --------------------------------------------------------------------------------------------
# Distributed setup
# --------------------------------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device_cfg: str) -> Dist:
    """Pick the device; join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_cfg, setting="train.device", local_rank=local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, device)


def _broadcast(obj, d: Dist):
    if d.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# --------------------------------------------------------------------------------------------
# Pieces of the step
# --------------------------------------------------------------------------------------------
def choose_sigmas(cfg: DictConfig, dataset, representation, device: torch.device, n_examples: int = 64) -> dict:
    """The run's sigma settings: given by the recipe, or picked from data by the NCSNv2 rules.

    sigma_max: technique 1 (largest pairwise distance among ``n_examples`` deterministic crops, in
    model space); num_levels: technique 2 (from the dimension); sigma_data: the std of the encoded
    data (EDM preconditioning).
    """
    n = min(n_examples, len(dataset))
    clean = torch.stack([dataset[i]["clean"] for i in range(n)]).to(device)
    with torch.no_grad():
        x = representation.encode(clean).float()
    sigma_min = float(cfg.noise.sigma_min)
    sigma_max = float(cfg.noise.sigma_max) if cfg.noise.sigma_max is not None else sigma_max_from_data(x.cpu())
    if sigma_max <= sigma_min:
        raise ConfigError(f"sigma_max ({sigma_max:.4g}) must exceed noise.sigma_min ({sigma_min:.4g}); "
                          f"is the training audio silent? set noise.sigma_max explicitly otherwise")
    dim = x[0].numel()
    num_levels = int(cfg.noise.num_levels) if cfg.noise.num_levels is not None else \
        num_levels_from_dim(dim, sigma_min, sigma_max)
    sigma_data = float(cfg.model.sigma_data) if cfg.model.sigma_data is not None else float(x.std())
    return {"sigma_min": sigma_min, "sigma_max": sigma_max, "num_levels": num_levels,
            "sigma_data": max(sigma_data, 1e-4), "dim": dim}


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def validate(model, dataset, representation, cfg: DictConfig, device: torch.device,
             sigma_max: Optional[float] = None) -> Dict[str, float]:
    """DSM loss at fixed sigmas on fixed validation crops with fixed noise (a curve per sigma);
    for paired data, SI-SDR of the one-call estimate: a conditional model's predictive estimate
    D(sigma_max z, sigma_max, y) (needs ``sigma_max``), a prior's Tweedie step at the true level."""
    from .metrics import si_sdr  # local: metrics pulls in nothing heavy, but keeps train import small

    n = min(cfg.train.val_examples, len(dataset))
    items = [dataset[i] for i in range(n)]
    clean = torch.stack([it["clean"] for it in items]).to(device)
    x0 = representation.encode(clean)
    cond = None
    if is_conditional(cfg):
        cond = representation.encode(torch.stack([it["noisy"] for it in items]).to(device))
    gen = torch.Generator(device=device).manual_seed(derive_seed(cfg.train.seed, 3))
    out: Dict[str, float] = {}
    for s in cfg.train.val_sigmas:
        sigma = torch.full((n,), float(s), device=device)
        noise = torch.randn(x0.shape, generator=gen, device=device)
        losses = []
        for i in range(0, n, cfg.train.batch_size):
            sl = slice(i, i + cfg.train.batch_size)
            losses.append(dsm_loss(model, x0[sl], sigma[sl], None if cond is None else cond[sl], noise=noise[sl]))
        out[f"val_loss/sigma={s:g}"] = float(torch.cat(losses).mean())
    if "noisy" in items[0]:
        noisy = torch.stack([it["noisy"] for it in items]).to(device)
        y = representation.encode(noisy)
        est = []
        if cond is not None:
            # the conditional model's own estimate: one call at sigma_max with the noisy input as cond
            from .denoise_methods import predictive

            pgen = torch.Generator(device=device).manual_seed(derive_seed(cfg.train.seed, 5))
            if sigma_max is None:
                raise ValueError("validating a conditional model needs its sigma_max")
            for i in range(0, n, cfg.train.batch_size):
                sl = slice(i, i + cfg.train.batch_size)
                est.append(predictive(model, y[sl], cond=cond[sl], sigma_max=float(sigma_max), generator=pgen))
            key = "val_si_sdr_predictive"
        else:
            # a prior: Tweedie at the true noise level of each example
            wav_std = (noisy - clean).flatten(1).std(dim=1)
            sig = torch.tensor([representation.noise_std_in_model_space(float(v)) for v in wav_std], device=device)
            for i in range(0, n, cfg.train.batch_size):
                sl = slice(i, i + cfg.train.batch_size)
                est.append(model.denoise(y[sl], sig[sl].clamp_min(1e-5)))
            key = "val_si_sdr_tweedie"
        wav_hat = representation.decode(torch.cat(est), clean.shape[-1])
        out["val_si_sdr_noisy"] = float(si_sdr(noisy[:, 0], clean[:, 0]).mean())
        out[key] = float(si_sdr(wav_hat[:, 0], clean[:, 0]).mean())
    return out


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
#: The lock file in a run directory: rank 0 of the training that writes there holds an
#: exclusive ``flock`` on it (and its PID is in it) for the whole run.
RUN_LOCK = ".lock"
_HELD_LOCKS: Dict[Path, int] = {}  # run dir -> fd of its lock file, held by this process


def _close_inherited_locks() -> None:
    # a forked child (a DataLoader worker) shares the lock's open file description: close its
    # copy, so the lock goes when the training does, not when its last worker exits
    for fd in _HELD_LOCKS.values():
        os.close(fd)
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def _lock_run_dir(run_dir: Path) -> None:
    """Take the run directory's exclusive lock, so a second training into the same folder stops
    with the first one's PID instead of overwriting its checkpoints and interleaving its metrics.

    The kernel drops a ``flock`` when its holder dies (even by kill -9), so a lock file left by a
    dead process never blocks; the PID written into it only names the holder in the error.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        return
    path = run_dir / RUN_LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise TrainingError(f"{run_dir} is in use by another training (PID {holder}); let it finish or "
                                f"stop it, or set train.run_dir=ANOTHER_FOLDER") from None
        except OSError as e:  # e.g. a file system without flock
            os.close(fd)
            log(f"note: cannot lock {path} ({e.strerror}); nothing stops a second training into this run dir")
            return
        try:  # the holder we waited on may have removed the file meanwhile: lock the one on disk
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD_LOCKS[run_dir] = fd


def _unlock_run_dir(run_dir: Path) -> None:
    """Release the lock :func:`_lock_run_dir` took and remove its file (while still holding it,
    which the inode check there makes safe), so a finished run leaves no lock file behind."""
    fd = _HELD_LOCKS.pop(run_dir, None)
    if fd is not None:
        (run_dir / RUN_LOCK).unlink(missing_ok=True)
        os.close(fd)


def _refuse_to_replace(cfg: DictConfig, run_dir: Path) -> None:
    """``train.resume=never`` in a folder that holds a run would replace its last.pt and empty its
    metrics.jsonl: only with ``train.overwrite=true`` (old numbered checkpoints stay, named)."""
    if cfg.train.resume != "never":
        return
    held = sorted(run_dir.glob("*.pt"))
    if not held:
        return
    if not cfg.train.overwrite:
        raise ConfigError(f"{run_dir} already holds a run ({held[-1].name}); train.resume=never would "
                          f"replace its checkpoints and metrics: pass train.overwrite=true to start it "
                          f"over, train.resume=auto to continue it, or another train.run_dir")
    numbered = [p.name for p in held if p.name != LAST]
    log(f"train.overwrite=true: starting {run_dir} over" +
        (f"; its old numbered checkpoints stay until replaced: {', '.join(numbered)}" if numbered else ""))


def make_run_dir(cfg: DictConfig, d: Dist) -> Path:
    """The run directory: created, checked writable and locked by rank 0 (:func:`_lock_run_dir`,
    released by :func:`train` on the way out); a start that would replace an existing run is
    refused here, before any data is read. Every rank raises rank 0's error, so none waits on a
    barrier rank 0 will never reach."""
    if cfg.train.run_dir:
        run_dir = Path(cfg.train.run_dir)
    else:
        stamp = _broadcast(datetime.now().strftime("%Y%m%d-%H%M%S"), d)
        run_dir = Path(cfg.train.runs_root) / f"{cfg.name}-{stamp}"
    problem: Optional[Exception] = None
    if d.main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            probe = run_dir / ".write_test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            problem = TrainingError(f"cannot write to run directory {run_dir}: {e.strerror}; "
                                    f"set train.run_dir=A_WRITABLE_FOLDER")
        if problem is None:
            try:
                _lock_run_dir(run_dir)
                _refuse_to_replace(cfg, run_dir)
            except (ConfigError, TrainingError) as e:
                _unlock_run_dir(run_dir)
                problem = e
    problem = _broadcast(problem, d)
    if problem is not None:
        raise problem
    return run_dir


def _resume_path(cfg: DictConfig, run_dir: Path) -> Optional[Path]:
    if cfg.train.resume == "never":
        return None
    if cfg.train.resume == "auto":
        p = run_dir / LAST
        return p if p.is_file() else None
    p = Path(cfg.train.resume)
    if not p.is_file():
        raise ConfigError(f"train.resume={cfg.train.resume}: no such checkpoint; use auto, never or a .pt path")
    return p


def train(cfg: DictConfig) -> Path:
    """Train the model a config describes; returns the run directory. See the module docstring.

    The run directory stays locked against other trainings until this returns or raises."""
    check_representation(cfg.model, cfg.representation.kind)  # e.g. stft_unet needs representation=waveform
    d = setup(cfg.train.device)
    run_dir = make_run_dir(cfg, d)
    try:
        return _train(cfg, d, run_dir)
    finally:
        _unlock_run_dir(run_dir)


def _train(cfg: DictConfig, d: Dist, run_dir: Path) -> Path:
    """:func:`train` in its locked run directory."""
    device = d.device

    # ---- data (fails before any compute if unusable) -------------------------------------
    # Rank 0 scans (and, for the synthetic corpus, writes) first; the others then read its result.
    if d.main:
        datasets = build_datasets(cfg, cache_dir=run_dir)
    if d.world > 1:
        dist.barrier()
    if not d.main:
        datasets = build_datasets(cfg, cache_dir=run_dir)
    train_set, valid_set = datasets["train"], datasets.get("valid")
    if valid_set is not None and len(valid_set) == 0:
        valid_set = None  # build_datasets has warned; nothing to validate on
    if len(train_set) == 0:
        raise DataError(f"{cfg.data.dataset}: the train split has no usable files")
    if is_conditional(cfg) and "noisy" not in train_set[0]:
        raise ConfigError("a conditional model (model.conditional=true or loss=cdsm) needs clean/noisy pairs: "
                          "a paired corpus (voicebank_demand) or data.noise_mix.enabled=true")

    # ---- representation, sigma settings, network -----------------------------------------
    representation = build_representation(cfg.representation)
    resume_from = _resume_path(cfg, run_dir)
    ckpt = load_checkpoint_dict(resume_from) if resume_from else None
    if ckpt:
        _check_same_model(ckpt, cfg, resume_from)
    sigmas = ckpt["sigmas"] if ckpt else choose_sigmas(cfg, train_set, representation, device)
    cond_channels = representation.channels if is_conditional(cfg) else 0
    with torch.random.fork_rng(devices=[]):  # weight init from train.seed, global RNG left untouched
        torch.manual_seed(derive_seed(cfg.train.seed, 0))
        model = build_score_model(cfg.model, representation.channels, cond_channels=cond_channels).to(device)
    model.sigma_data.fill_(sigmas["sigma_data"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay,
                                  betas=(0.9, float(cfg.train.adam_beta2)))
    ema = EMA(model, ema_half_life(cfg.train))
    start_step = 0
    if ckpt:
        try:
            model.load_state_dict(ckpt["model"])
            ema.load_state_dict(ckpt["ema"])
        except RuntimeError as e:
            raise TrainingError(f"{resume_from} does not fit this recipe's model ({str(e).splitlines()[0]}); "
                                f"use another train.run_dir (or train.resume=never train.overwrite=true "
                                f"to replace it)") from None
        optimizer.load_state_dict(ckpt["optimizer"])
        start_step = int(ckpt["step"])
    ladder = geometric_sigmas(sigmas["num_levels"], sigmas["sigma_min"], sigmas["sigma_max"]).to(device)

    train_model = torch.compile(model) if cfg.train.compile else model
    if d.world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None)

    writer = MetricsWriter(run_dir, enabled=d.main, resume_step=start_step)
    n_params = count_parameters(model)
    if d.main:
        (run_dir / "config.yaml").write_text(to_yaml(cfg))
        (run_dir / "sigmas.json").write_text(json.dumps(sigmas, indent=2))
        eff = cfg.train.batch_size * d.world * cfg.train.grad_accum
        log(f"run dir {run_dir}  |  {cfg.model.preset} {cfg.model.backbone}: {n_params / 1e6:.2f}M params  |  "
            f"device {device} x{d.world}  |  effective batch {eff}")
        log(f"sigmas: min {sigmas['sigma_min']:.4g}  max {sigmas['sigma_max']:.4g}  levels {sigmas['num_levels']}  "
            f"sigma_data {sigmas['sigma_data']:.4g}" + ("  (from checkpoint)" if ckpt else "  (NCSNv2 rules / data)"))
        if ckpt:
            log(f"resuming from {resume_from} at step {start_step}")

    def checkpoint_payload(step: int, metrics: dict) -> dict:
        return {"package_version": __version__, "step": step,
                "config": OmegaConf.to_container(cfg, resolve=True),
                "representation": representation.to_dict(), "sigmas": sigmas, "cond_channels": cond_channels,
                "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                "metrics": metrics}

    def write_checkpoint(step: int, metrics: dict, numbered: bool) -> None:
        if not d.main:
            return
        payload = checkpoint_payload(step, metrics)
        save_checkpoint(run_dir / LAST, payload)
        if numbered:
            save_checkpoint(run_dir / f"step_{step:07d}.pt", payload)

    # ---- loader ---------------------------------------------------------------------------
    total = int(cfg.train.steps)
    sampler = StepBatchSampler(len(train_set), cfg.train.batch_size, cfg.train.seed, start_step, total,
                               rank=d.rank, world=d.world, accum=cfg.train.grad_accum)
    loader = torch.utils.data.DataLoader(
        train_set, batch_sampler=sampler, collate_fn=_collate, num_workers=cfg.train.num_workers,
        pin_memory=device.type == "cuda", persistent_workers=cfg.train.num_workers > 0)
    batches = iter(loader)
    segment_s = cfg.data.segment_seconds

    # ---- loop -----------------------------------------------------------------------------
    step = start_step
    last_metrics: dict = {}
    bucket_sum: Dict[str, float] = {}
    bucket_n: Dict[str, int] = {}
    window_loss, window_n, window_t = 0.0, 0, time.perf_counter()
    progress = _progress(d.main, start_step, total)
    interrupted = False
    # SIGTERM (a scheduler's preemption, `kill`) takes the same path as Ctrl-C: save, then exit.
    previous_term = None
    if threading.current_thread() is threading.main_thread():
        previous_term = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        while step < total:
            try:
                result = train_step(model=model, train_model=train_model, optimizer=optimizer, ema=ema,
                                    batches=batches, representation=representation, sigmas=sigmas, cfg=cfg,
                                    step=step, device=device, ladder=ladder, rank=d.rank, world=d.world)
            except NonFiniteStep as e:
                raise TrainingError(f"non-finite {e.what} at step {step + 1} (sigma={e.sigma:.4g}); the last good "
                                    f"checkpoint is {run_dir / LAST}; lower train.lr or check the data") from None
            step += 1
            losses, sig, grad_norm = result.losses, result.sigmas, result.grad_norm

            # bookkeeping on the host, off the critical path of the next step's compute
            loss_value = float(losses.mean())
            window_loss += loss_value
            window_n += 1
            for s, l in zip(sig.tolist(), losses.tolist()):
                b = sigma_bucket(s)
                bucket_sum[b] = bucket_sum.get(b, 0.0) + l
                bucket_n[b] = bucket_n.get(b, 0) + 1
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss_value:.4f}", refresh=False)

            if step % cfg.train.log_every == 0 or step == total:
                dt = time.perf_counter() - window_t
                steps_per_s = window_n / max(dt, 1e-9)
                row = {"step": step, "loss": window_loss / window_n, "lr": lr_at(step - 1, cfg.train),
                       "grad_norm": float(grad_norm), "steps_per_s": steps_per_s,
                       "audio_s_per_s": steps_per_s * cfg.train.batch_size * d.world * cfg.train.grad_accum * segment_s}
                row.update({f"loss_bucket/{b}": bucket_sum[b] / bucket_n[b] for b in sorted(bucket_sum)})
                writer.write("train", row)
                last_metrics = row
                bucket_sum.clear()
                bucket_n.clear()
                window_loss, window_n, window_t = 0.0, 0, time.perf_counter()

            if d.main and valid_set is not None and cfg.train.val_every > 0 and \
                    (step % cfg.train.val_every == 0 or step == total):
                val = validate(ema.module, valid_set, representation, cfg, device, sigma_max=sigmas["sigma_max"])
                writer.write("valid", {"step": step, **val})
                last_metrics = {**last_metrics, **val}
                if progress is not None:
                    progress.write(f"step {step}: " + "  ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in val.items()))

            if d.main and cfg.train.sample_every > 0 and step % cfg.train.sample_every == 0 and step < total:
                _sample_hook(ema.module, representation, sigmas, cfg, run_dir, step, device)

            if d.main and step == total:  # before the last checkpoint, which then carries the scale
                _store_calibration(ema.module, valid_set, representation, sigmas, cfg, run_dir, device)

            if step % cfg.train.ckpt_every == 0 or step == total:
                write_checkpoint(step, last_metrics, numbered=step % cfg.train.ckpt_every == 0)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if progress is not None:
            progress.close()
    if interrupted:
        write_checkpoint(step, last_metrics, numbered=False)
        if d.main:
            log(f"interrupted at step {step}; checkpoint saved to {run_dir / LAST}. "
                f"Continue with: python -m scoreaudio.train {cfg.name} train.run_dir={run_dir}")
        writer.close()
        raise KeyboardInterrupt

    # ---- end of run -----------------------------------------------------------------------
    identical = _ranks_identical(model, d)
    if d.main:
        _sample_hook(ema.module, representation, sigmas, cfg, run_dir, step, device)
        summary = {"step": step, "params": n_params, "world_size": d.world, "ranks_identical": identical,
                   **{k: v for k, v in last_metrics.items() if isinstance(v, (int, float))}}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    writer.close()
    if d.world > 1:
        dist.barrier()
    return run_dir


def _store_calibration(model, valid_set, representation, sigmas: dict, cfg: DictConfig, run_dir: Path,
                       device: torch.device) -> None:
    """Fit the noise-map scale of an unconditional prior on validation crops (calibration.py) and
    put it in ``sigmas`` (saved with the next checkpoint) and sigmas.json. Nothing to do for a
    conditional model, the toy MLP, no validation set, or ``train.calibrate_noise_map=false``."""
    if not cfg.train.calibrate_noise_map or valid_set is None or model.cond_channels or cfg.model.backbone == "mlp":
        return
    from .calibration import calibrate_noise_map

    n = min(int(cfg.train.val_examples), len(valid_set))
    clean = torch.stack([valid_set[i]["clean"] for i in range(n)]).to(device)
    gen = torch.Generator(device=device).manual_seed(derive_seed(cfg.train.seed, 6))
    model.eval()
    fit = calibrate_noise_map(model, representation, clean, sigma_min=sigmas["sigma_min"],
                              sigma_max=sigmas["sigma_max"], batch_size=int(cfg.train.batch_size), generator=gen)
    scale = fit["noise_map_scale"]
    sigmas["noise_map_scale"] = scale
    (run_dir / "sigmas.json").write_text(json.dumps(sigmas, indent=2))
    log(f"noise map calibrated on validation speech: scale {scale:g} (one-step SI-SDR "
        f"{fit['si_sdr_db'][scale]:.2f} dB from {fit['input_si_sdr_db']:.2f} dB)")


def _check_same_model(ckpt: dict, cfg: DictConfig, path: Path) -> None:
    """Refuse to resume a checkpoint into a different network: the weights would load (same
    names) but compute something else, e.g. a U-Net trained with ``norm=global`` resumed with
    ``norm=frame``. Old configs get the values they were trained with first."""
    from .pretrained import checkpoint_config

    saved = OmegaConf.to_container(checkpoint_config(ckpt["config"]).model, resolve=True)
    now = OmegaConf.to_container(cfg.model, resolve=True)

    def flat(d, prefix="model"):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}.{k}")
            else:
                yield f"{prefix}.{k}", v

    a, b = dict(flat(saved)), dict(flat(now))
    changed = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if changed:
        k = changed[0]
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise ConfigError(f"{path} was trained with {k}={a.get(k)!r} but this config has {b.get(k)!r}{more}; "
                          f"pass {k}={a.get(k)} to resume it, or start over (train.resume=never "
                          f"train.overwrite=true, or another train.run_dir)")


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _ranks_identical(model: torch.nn.Module, d: Dist) -> bool:
    """Whether every rank holds the same weights (DDP sanity check at the end of a run)."""
    if d.world == 1:
        return True
    with torch.no_grad():
        flat = torch.cat([p.detach().flatten().double() for p in model.parameters()])
        mine = torch.stack([flat.sum(), (flat * torch.arange(1, flat.numel() + 1, device=flat.device,
                                                             dtype=torch.float64).sin()).sum()])
        gathered = [torch.zeros_like(mine) for _ in range(d.world)]
        dist.all_gather(gathered, mine)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def _sample_hook(model, representation, sigmas: dict, cfg: DictConfig, run_dir: Path, step: int,
                 device: torch.device) -> None:
    """Draw a few samples from the EMA weights with the recipe's sampler: WAV + spectrogram PNG."""
    from .generation import draw_samples, write_sample_files

    if cfg.train.num_samples <= 0 or cfg.model.backbone == "mlp" or is_conditional(cfg):
        return  # a conditional model has nothing to generate from without an input
    gen = torch.Generator(device=device).manual_seed(derive_seed(cfg.train.seed, 5, step))
    wavs = draw_samples(model, representation, sigmas, cfg.sampler, num=cfg.train.num_samples,
                        seconds=cfg.train.sample_seconds, sample_rate=cfg.data.sample_rate,
                        device=device, generator=gen)
    write_sample_files(wavs, cfg.data.sample_rate, run_dir / "samples" / f"step_{step:07d}")


def _progress(enabled: bool, start: int, total: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, disable=None,
                desc="train", mininterval=1.0)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="recipe YAML (e.g. recipes/quickstart.yaml) or a recipe name")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. train.steps=1000 data.root=/data/LJSpeech-1.1 model=unet2d_tiny")
    p.add_argument("--print-config", action="store_true", help="print the composed config and exit")


def run_cli(args: argparse.Namespace) -> int:
    cfg = compose(args.recipe, args.overrides)
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    t0 = time.perf_counter()
    run_dir = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        minutes = (time.perf_counter() - t0) / 60
        log(f"done in {minutes:.1f} min. Run directory: {run_dir}")
        generate = "" if is_conditional(cfg) else f"  scoreaudio generate --checkpoint {run_dir} --out samples/\n"
        log("next:\n" + generate +
            f"  python -c \"from scoreaudio import SpeechDenoiser; den = SpeechDenoiser.from_pretrained('{run_dir}'); "
            f"den.denoise_file('noisy.wav', 'clean.wav')\"\n"
            f"  scoreaudio denoise noisy.wav -o denoised/ --checkpoint {run_dir}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .cli import run

    parser = argparse.ArgumentParser(prog="python -m scoreaudio.train",
                                     description="Train a score model from a recipe.")
    configure_parser(parser)
    args = parser.parse_args(argv)
    try:
        return run(run_cli, args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
