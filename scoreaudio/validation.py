"""Validation during training: DSM curves at fixed levels, the one-call (or OUVE) SI-SDR of a
conditional model, Tweedie's SI-SDR of a prior; and the end-of-run noise-map calibration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

import torch
from omegaconf import DictConfig

from .config import is_conditional
from .denoise_methods import denoised, predictive
from .errors import AudioError
from .losses import dsm_loss
from .metrics import si_sdr
from .noise import NoiseLevels
from .ouve import OUVE, ouve_one_call
from .utils.logging import log
from .utils.tensor import derive_seed

__all__ = ["draw_training_samples", "store_calibration", "usable_items", "validate"]


def usable_items(dataset, n: int) -> List[Dict[str, torch.Tensor]]:
    """The first ``n`` items of an evaluation dataset that can be read: a file that cannot (NaN
    samples, a broken header) is left out with a log line instead of stopping the run."""
    items = []
    for i in range(len(dataset)):
        if len(items) == n:
            break
        try:
            items.append(dataset[i])
        except AudioError as e:
            log(f"validation: skipping {e}")
    if not items and len(dataset):
        raise AudioError(
            f"none of the {len(dataset)} validation files can be read; run `scoreaudio data check`"
        )
    return items


@torch.no_grad()
def validate(
    model, dataset, representation, cfg: DictConfig, device: torch.device, sigma_max: Optional[float] = None
) -> Dict[str, float]:
    """DSM loss at fixed sigmas on fixed validation crops with fixed noise (a curve per sigma);
    for paired data, SI-SDR of the one-call estimate: a conditional model's predictive estimate
    D(sigma_max z, sigma_max, y) (needs ``sigma_max``), a prior's Tweedie step at the true level."""
    items = usable_items(dataset, cfg.train.val_examples)
    n = len(items)
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
            losses.append(
                dsm_loss(model, x0[sl], sigma[sl], None if cond is None else cond[sl], noise=noise[sl])
            )
        out[f"val_loss/sigma={s:g}"] = float(torch.cat(losses).mean())
    if "noisy" in items[0]:
        noisy = torch.stack([it["noisy"] for it in items]).to(device)
        y = representation.encode(noisy)
        est = []
        if cond is not None:
            # the conditional model's own estimate: one call at sigma_max with the noisy input as cond
            pgen = torch.Generator(device=device).manual_seed(derive_seed(cfg.train.seed, 5))
            if sigma_max is None:
                raise ValueError("validating a conditional model needs its sigma_max")
            if cfg.noise.train_distribution == "ouve":  # trained for SGMSE+'s sampler: its one-call start
                process = OUVE.from_config(cfg.noise, float(model.sigma_data))
                one = lambda sl: ouve_one_call(
                    lambda x_, s_: denoised(model, x_, s_, cond[sl]),
                    y[sl],  # noqa: E731
                    process,
                    generator=pgen,
                )
                key = "val_si_sdr_ouve_one_call"
            else:
                one = lambda sl: predictive(
                    model,
                    y[sl],
                    cond=cond[sl],
                    sigma_max=float(sigma_max),  # noqa: E731
                    generator=pgen,
                )
                key = "val_si_sdr_predictive"
            for i in range(0, n, cfg.train.batch_size):
                est.append(one(slice(i, i + cfg.train.batch_size)))
        else:
            # a prior: Tweedie at the true noise level of each example
            wav_std = (noisy - clean).flatten(1).std(dim=1)
            sig = torch.tensor(
                [representation.noise_std_in_model_space(float(v)) for v in wav_std], device=device
            )
            for i in range(0, n, cfg.train.batch_size):
                sl = slice(i, i + cfg.train.batch_size)
                est.append(model.denoise(y[sl], sig[sl].clamp_min(1e-5)))
            key = "val_si_sdr_tweedie"
        wav_hat = representation.decode(torch.cat(est), clean.shape[-1])
        out["val_si_sdr_noisy"] = float(si_sdr(noisy[:, 0], clean[:, 0]).mean())
        out[key] = float(si_sdr(wav_hat[:, 0], clean[:, 0]).mean())
    return out


def store_calibration(
    model,
    valid_set,
    representation,
    levels: NoiseLevels,
    cfg: DictConfig,
    run_dir: Path,
    device: torch.device,
) -> NoiseLevels:
    """Fit the noise-map scale of an unconditional prior on validation crops (calibration.py) and
    return ``levels`` with it (saved with the next checkpoint) after writing sigmas.json. Nothing to do for a
    conditional model, the toy MLP, no validation set, or ``train.calibrate_noise_map=false``."""
    if (
        not cfg.train.calibrate_noise_map
        or valid_set is None
        or model.cond_channels
        or cfg.model.backbone == "mlp"
    ):
        return levels
    from .calibration import calibrate_noise_map

    clean = torch.stack([it["clean"] for it in usable_items(valid_set, int(cfg.train.val_examples))]).to(
        device
    )
    gen = torch.Generator(device=device).manual_seed(derive_seed(cfg.train.seed, 6))
    model.eval()
    fit = calibrate_noise_map(
        model,
        representation,
        clean,
        sigma_min=levels.sigma_min,
        sigma_max=levels.sigma_max,
        batch_size=int(cfg.train.batch_size),
        generator=gen,
    )
    scale = fit["noise_map_scale"]
    levels = levels.with_noise_map_scale(scale)
    (run_dir / "sigmas.json").write_text(json.dumps(levels.to_dict(), indent=2))
    log(
        f"noise map calibrated on validation speech: scale {scale:g} (one-step SI-SDR "
        f"{fit['si_sdr_db'][scale]:.2f} dB from {fit['input_si_sdr_db']:.2f} dB)"
    )
    return levels


def draw_training_samples(
    model,
    representation,
    levels: NoiseLevels,
    cfg: DictConfig,
    run_dir: Path,
    step: int,
    device: torch.device,
) -> None:
    """Draw a few samples from the EMA weights with the recipe's sampler: WAV + spectrogram PNG."""
    from .generation import draw_samples, write_sample_files

    if cfg.train.num_samples <= 0 or cfg.model.backbone == "mlp" or is_conditional(cfg):
        return  # a conditional model has nothing to generate from without an input
    gen = torch.Generator(device=device).manual_seed(derive_seed(cfg.train.seed, 5, step))
    wavs = draw_samples(
        model,
        representation,
        levels,
        cfg.sampler,
        num=cfg.train.num_samples,
        seconds=cfg.train.sample_seconds,
        sample_rate=cfg.data.sample_rate,
        device=device,
        generator=gen,
    )
    write_sample_files(wavs, cfg.data.sample_rate, run_dir / "samples" / f"step_{step:07d}")
