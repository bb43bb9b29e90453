"""Training: ``python -m scoreaudio.train RECIPE [key=value ...]``.

One function, :func:`train`, reads top to bottom (DESIGN.md §5):

    build run dir -> data -> representation -> sigma settings (NCSNv2 rules) -> network, AdamW,
    EMA -> resume -> DDP -> for each step: batch -> encode on device -> sample sigma -> per-example
    loss -> backward (bf16 autocast on CUDA) -> clip -> step -> EMA -> log / validate / sample /
    checkpoint (atomic)

Every random draw (data order, crops, noise mixing, sigmas, noise, dropout) is a pure function of
(train.seed, step, rank) or is saved in the checkpoint, so a run killed at any point resumes from
its last checkpoint and continues exactly as if it had never stopped. SIGTERM and Ctrl-C only ask
the loop to stop: it finishes the step it is in, saves, and exits (a second Ctrl-C stops at once
and keeps the last checkpoint). A training file that turns out unreadable is skipped, named in
the log and listed in ``summary.json``; any other error that stops the run saves a checkpoint first.

Distributed: ``torchrun --nproc_per_node=K -m scoreaudio.train RECIPE`` (NCCL on GPUs, gloo on
CPUs); only rank 0 writes; the effective batch is batch_size x K x grad_accum.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from . import __version__
from .audio.representation import build_representation
from .config import is_conditional, to_yaml
from .data.datasets import build_training_sets
from .data.step_sampler import SKIPPED, SkippedFiles, StepBatchSampler, collate
from .errors import ConfigError, TrainingError
from .nn.build import build_score_model, check_representation, count_parameters
from .noise import NoiseLevels, geometric_sigmas, num_levels_from_dim, sigma_max_from_data
from .ouve import OUVE
from .pretrained import init_weights
from .resume import check_resume_config, check_same_model, continue_command, rng_state, set_rng_state
from .run_dir import make_run_dir, remove_if_unused, resume_path, unlock_run_dir
from .train_step import NonFiniteStep, ema_half_life, lr_at, sigma_bucket, train_step
from .utils.checkpoint import LAST, load_checkpoint_dict, save_checkpoint
from .utils.distributed import Dist, ranks_identical, setup
from .utils.ema import EMA
from .utils.logging import MetricsWriter, log, progress_bar
from .utils.signals import StopRequest
from .utils.tensor import derive_seed
from .validation import draw_training_samples, store_calibration, validate

__all__ = ["StepBatchSampler", "check_config", "choose_sigmas", "train"]


# --------------------------------------------------------------------------------------------
# Pieces of the run
# --------------------------------------------------------------------------------------------
def choose_sigmas(
    cfg: DictConfig, dataset, representation, device: torch.device, n_examples: int = 64, on_skip=None
) -> NoiseLevels:
    """The run's noise levels: given by the recipe, or picked from data by the NCSNv2 rules.

    sigma_max: technique 1 (largest pairwise distance among ``n_examples`` deterministic crops, in
    model space); num_levels: technique 2 (from the dimension); sigma_data: the std of the encoded
    data (EDM preconditioning). ``on_skip(path, reason)`` hears of each unreadable file met.
    """
    n = min(n_examples, len(dataset))
    items = [dataset[i] for i in range(n)]  # a training set: unreadable files are skipped (and listed)
    for it in items:
        for path, why in it.get(SKIPPED, {}).items():
            if on_skip is not None:
                on_skip(path, why)
    clean = torch.stack([it["clean"] for it in items]).to(device)
    with torch.no_grad():
        x = representation.encode(clean).float()
    sigma_min = float(cfg.noise.sigma_min)
    sigma_max = (
        float(cfg.noise.sigma_max) if cfg.noise.sigma_max is not None else sigma_max_from_data(x.cpu())
    )
    if sigma_max <= sigma_min:
        raise ConfigError(
            f"sigma_max ({sigma_max:.4g}) must exceed noise.sigma_min ({sigma_min:.4g}); "
            f"is the training audio silent? set noise.sigma_max explicitly otherwise"
        )
    dim = x[0].numel()
    num_levels = (
        int(cfg.noise.num_levels)
        if cfg.noise.num_levels is not None
        else num_levels_from_dim(dim, sigma_min, sigma_max)
    )
    sigma_data = float(cfg.model.sigma_data) if cfg.model.sigma_data is not None else float(x.std())
    return NoiseLevels(
        sigma_min=sigma_min,
        sigma_max=sigma_max,
        num_levels=num_levels,
        sigma_data=max(sigma_data, 1e-4),
        dim=dim,
    )


def check_config(cfg: DictConfig) -> None:
    """Settings that only make sense together, checked before any data is read."""
    check_representation(cfg.model, cfg.representation.kind)  # e.g. stft_unet needs representation=waveform
    if cfg.loss.predictive_spectral_weight > 0 and not (
        is_conditional(cfg)
        and cfg.representation.kind == "waveform"
        and cfg.noise.train_distribution == "conditional"
    ):
        raise ConfigError(
            "loss.predictive_spectral_weight needs a conditional model on the waveform state "
            "trained with noise.train_distribution=conditional (recipes/denoiser.yaml); set it to 0"
        )
    if cfg.noise.train_distribution == "ouve" and not is_conditional(cfg):
        raise ConfigError(
            "noise.train_distribution=ouve trains SGMSE+'s conditional sampler: it needs "
            "model.conditional=true (recipes/denoiser.yaml)"
        )


def train(cfg: DictConfig, *, command: Optional[str] = None) -> Path:
    """Train the model a config describes; returns the run directory. See the module docstring.

    ``command`` is the command line that continues the run, for the message after an interruption
    (``python -m scoreaudio.train`` passes it). The run directory stays locked against other
    trainings until this returns or raises; one this call created is removed again when the start
    fails before anything is written into it."""
    check_config(cfg)
    d = setup(cfg.train.device)
    run_dir, created = make_run_dir(cfg, d)
    try:
        return _train(cfg, d, run_dir, command)
    except BaseException:
        if created and d.main:
            unlock_run_dir(run_dir)
            remove_if_unused(run_dir)
        raise
    finally:
        unlock_run_dir(run_dir)


def _train(cfg: DictConfig, d: Dist, run_dir: Path, command: Optional[str]) -> Path:
    """:func:`train` in its locked run directory."""
    device = d.device

    # ---- data (fails before any compute if unusable) -------------------------------------
    train_set, valid_set = build_training_sets(cfg, d, cache_dir=run_dir)

    # ---- representation, resume, sigma settings, network ---------------------------------
    representation = build_representation(cfg.representation)
    resume_from = resume_path(cfg, run_dir)
    ckpt = load_checkpoint_dict(resume_from) if resume_from else None
    if ckpt:
        check_same_model(ckpt, cfg, resume_from)
        check_resume_config(ckpt, cfg, resume_from)

    def skipped_note(path: str, why: str) -> None:
        if d.main:
            log(f"skipping a training file that cannot be used (listed in summary.json): {why}")

    skipped = SkippedFiles(iter(()), known=(ckpt or {}).get("skipped_files"), on_new=skipped_note)
    cond_channels = representation.channels if is_conditional(cfg) else 0
    with torch.random.fork_rng(devices=[]):  # weight init from train.seed, global RNG left untouched
        torch.manual_seed(derive_seed(cfg.train.seed, 0))
        model = build_score_model(cfg.model, representation.channels, cond_channels=cond_channels)
    if ckpt:
        levels = NoiseLevels.from_dict(ckpt["sigmas"], source=f"{resume_from}: sigmas")
    elif cfg.train.init_from:  # fine-tuning: the source's weights and the noise levels they learned
        levels = init_weights(model, cfg.train.init_from, representation, cond_channels)
        log(f"fine-tuning from {cfg.train.init_from}")
    else:
        levels = choose_sigmas(cfg, train_set, representation, device, on_skip=skipped.record)
    model.to(device).sigma_data.fill_(levels.sigma_data)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        betas=(0.9, float(cfg.train.adam_beta2)),
    )
    ema = EMA(model, ema_half_life(cfg.train))
    start_step = 0
    if ckpt:
        try:
            model.load_state_dict(ckpt["model"])
            ema.load_state_dict(ckpt["ema"])
        except RuntimeError as e:
            raise TrainingError(
                f"{resume_from} does not fit this recipe's model ({str(e).splitlines()[0]}); "
                f"use another train.run_dir (or train.resume=never train.overwrite=true "
                f"to replace it)"
            ) from None
        optimizer.load_state_dict(ckpt["optimizer"])
        start_step = int(ckpt["step"])
    if cfg.noise.train_distribution == "ouve":
        top = float(OUVE.from_config(cfg.noise, levels.sigma_data).sigma_eff(torch.tensor(1.0)))
        if top > levels.sigma_max:
            raise ConfigError(
                f"noise.ouve_sigma_max={cfg.noise.ouve_sigma_max} reaches sigma {top:.3g}, above "
                f"the run's sigma_max {levels.sigma_max:.3g}; lower it or raise noise.sigma_max"
            )
    ladder = geometric_sigmas(levels.num_levels, levels.sigma_min, levels.sigma_max).to(device)

    train_model = torch.compile(model) if cfg.train.compile else model
    if d.world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None
        )

    writer = MetricsWriter(run_dir, enabled=d.main, resume_step=start_step)
    n_params = count_parameters(model)
    if d.main:
        (run_dir / "config.yaml").write_text(to_yaml(cfg))
        (run_dir / "sigmas.json").write_text(json.dumps(levels.to_dict(), indent=2))
        eff = cfg.train.batch_size * d.world * cfg.train.grad_accum
        log(
            f"run dir {run_dir}  |  {cfg.model.preset} {cfg.model.backbone}: {n_params / 1e6:.2f}M params  |  "
            f"device {device} x{d.world}  |  effective batch {eff}"
        )
        origin = (
            "from checkpoint"
            if ckpt
            else f"from {cfg.train.init_from}"
            if cfg.train.init_from
            else "NCSNv2 rules / data"
        )
        log(
            f"sigmas: min {levels.sigma_min:.4g}  max {levels.sigma_max:.4g}  levels {levels.num_levels}  "
            f"sigma_data {levels.sigma_data:.4g}  ({origin})"
        )
        if ckpt:
            log(f"resuming from {resume_from} at step {start_step}")

    def write_checkpoint(step: int, metrics: dict, numbered: bool) -> None:
        if not d.main:
            return
        payload = {
            "package_version": __version__,
            "step": step,
            "config": OmegaConf.to_container(cfg, resolve=True),
            "representation": representation.to_dict(),
            "sigmas": levels.to_dict(),
            "cond_channels": cond_channels,
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(device),
            "skipped_files": dict(skipped.files),
            "metrics": metrics,
        }
        save_checkpoint(run_dir / LAST, payload)
        if numbered:
            save_checkpoint(run_dir / f"step_{step:07d}.pt", payload)

    # ---- loader ---------------------------------------------------------------------------
    total = int(cfg.train.steps)
    sampler = StepBatchSampler(
        len(train_set),
        cfg.train.batch_size,
        cfg.train.seed,
        start_step,
        total,
        rank=d.rank,
        world=d.world,
        accum=cfg.train.grad_accum,
    )
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.train.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.train.num_workers > 0,
    )
    # Dropout draws from the global generators: seeded by (train.seed, rank) for a new run, restored
    # from the checkpoint for a resumed one (after iter(loader), which takes a base seed from them).
    torch.manual_seed(derive_seed(cfg.train.seed, 7, d.rank))
    skipped.batches = iter(loader)
    if ckpt:
        set_rng_state(ckpt.get("rng"), device)
    segment_s = cfg.data.segment_seconds

    # ---- loop -----------------------------------------------------------------------------
    step = start_step
    last_metrics: dict = {}
    bucket_sum: dict = {}
    bucket_n: dict = {}
    window_loss, window_n, window_t = 0.0, 0, time.perf_counter()
    progress = progress_bar(d.main, start_step, total)
    stop = StopRequest()
    try:
        with stop:
            while step < total and not stop.asked:
                try:
                    result = train_step(
                        model=model,
                        train_model=train_model,
                        optimizer=optimizer,
                        ema=ema,
                        batches=skipped,
                        representation=representation,
                        sigmas=levels,
                        cfg=cfg,
                        step=step,
                        device=device,
                        ladder=ladder,
                        rank=d.rank,
                        world=d.world,
                    )
                except NonFiniteStep as e:  # nothing was applied: the live state is still step `step`
                    write_checkpoint(step, last_metrics, numbered=False)
                    raise TrainingError(
                        f"non-finite {e.what} at step {step + 1} (sigma={e.sigma:.4g}); step {step} "
                        f"is saved in {run_dir / LAST}; lower train.lr or check the data"
                    ) from None
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
                    row = {
                        "step": step,
                        "loss": window_loss / window_n,
                        "lr": lr_at(step - 1, cfg.train),
                        "grad_norm": float(grad_norm),
                        "steps_per_s": steps_per_s,
                        "audio_s_per_s": steps_per_s
                        * cfg.train.batch_size
                        * d.world
                        * cfg.train.grad_accum
                        * segment_s,
                    }
                    row.update({f"loss_bucket/{b}": bucket_sum[b] / bucket_n[b] for b in sorted(bucket_sum)})
                    writer.write("train", row)
                    last_metrics = row
                    bucket_sum.clear()
                    bucket_n.clear()
                    window_loss, window_n, window_t = 0.0, 0, time.perf_counter()

                if (
                    d.main
                    and valid_set is not None
                    and cfg.train.val_every > 0
                    and (step % cfg.train.val_every == 0 or step == total)
                ):
                    val = validate(
                        ema.module, valid_set, representation, cfg, device, sigma_max=levels.sigma_max
                    )
                    writer.write("valid", {"step": step, **val})
                    last_metrics = {**last_metrics, **val}
                    if progress is not None:
                        progress.write(
                            f"step {step}: "
                            + "  ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in val.items())
                        )

                if (
                    d.main
                    and cfg.train.sample_every > 0
                    and step % cfg.train.sample_every == 0
                    and step < total
                ):
                    draw_training_samples(ema.module, representation, levels, cfg, run_dir, step, device)

                if d.main and step == total:  # before the last checkpoint, which then carries the scale
                    levels = store_calibration(
                        ema.module, valid_set, representation, levels, cfg, run_dir, device
                    )

                if step % cfg.train.ckpt_every == 0 or step == total:
                    write_checkpoint(step, last_metrics, numbered=step % cfg.train.ckpt_every == 0)
    except KeyboardInterrupt:  # a second Ctrl-C, mid-step: the live state may hold half a step
        writer.close()
        if d.main:
            log(
                f"stopped at once; the last checkpoint {run_dir / LAST} is kept. Continue with: "
                f"{command or continue_command(None, [], run_dir)}"
            )
        raise
    except TrainingError:  # already says where the last good state is
        raise
    except Exception:  # an error stops the run: keep the last complete step first
        if d.main:
            try:
                write_checkpoint(step, last_metrics, numbered=False)
                log(f"step {step} saved to {run_dir / LAST} before stopping")
            except Exception:
                pass  # the error being raised says more than a failed save would
        raise
    finally:
        if progress is not None:
            progress.close()
    if stop.asked and step < total:
        write_checkpoint(step, last_metrics, numbered=False)
        writer.close()
        if d.main:
            log(
                f"{stop.asked} at step {step}: checkpoint saved to {run_dir / LAST}. "
                f"Continue with: {command or continue_command(None, [], run_dir)}"
            )
        raise KeyboardInterrupt

    # ---- end of run -----------------------------------------------------------------------
    identical = ranks_identical(model, d)
    if d.main:
        draw_training_samples(ema.module, representation, levels, cfg, run_dir, step, device)
        summary = {
            "step": step,
            "params": n_params,
            "world_size": d.world,
            "ranks_identical": identical,
            **{k: v for k, v in last_metrics.items() if isinstance(v, (int, float))},
            "skipped_files": dict(skipped.files),
        }
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    writer.close()
    if d.world > 1:
        dist.barrier()
    return run_dir


if __name__ == "__main__":  # python -m scoreaudio.train: the command line lives in train_cli
    from .train_cli import main

    sys.exit(main())
