"""Rebuild a trained model from nothing but its checkpoint (or run directory)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import torch
from omegaconf import DictConfig

from .audio.representation import representation_from_dict
from .config import from_container
from .errors import CheckpointError, ConfigError
from .nn.build import build_score_model
from .utils.checkpoint import load_checkpoint_dict, resolve_checkpoint


@dataclass
class Pretrained:
    """A model ready for sampling or denoising, with everything needed to use it."""

    model: torch.nn.Module  # ScoreModel in eval mode, on `device`, EMA weights unless asked otherwise
    cfg: DictConfig  # the resolved training config
    representation: object  # Representation used in training
    sigmas: dict  # sigma_min, sigma_max, num_levels, sigma_data
    step: int  # optimiser steps the weights have seen
    path: Path  # the checkpoint file
    device: torch.device

    @property
    def sample_rate(self) -> int:
        return int(self.cfg.data.sample_rate)

    @property
    def conditional(self) -> bool:
        """True for a model trained on clean/noisy pairs (it needs the noisy input as `cond`)."""
        return self.cfg.loss.objective == "cdsm"


def resolve_device(device: Union[str, torch.device, None]) -> torch.device:
    """``None``/"auto" -> CUDA when available, else CPU; anything else as given (checked)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} requested but CUDA is not available; use --device cpu or auto")
    return device


#: Settings added after checkpoints were first written, with the value that reproduces what a
#: checkpoint without them was trained with (the schema's default is for new runs).
LEGACY_DEFAULTS = {("model", "unet2d", "norm"): "global"}  # before per-frame GroupNorm/attention


def checkpoint_config(container: dict) -> DictConfig:
    """The validated config of a checkpoint's stored config dict, with :data:`LEGACY_DEFAULTS`
    filled in where the dict lacks them, so old checkpoints rebuild the network they trained."""
    container = copy.deepcopy(container)
    for (*parents, key), value in LEGACY_DEFAULTS.items():
        node = container
        for name in parents:
            node = node.setdefault(name, {})
        node.setdefault(key, value)
    return from_container(container)


def load_pretrained(checkpoint: Union[str, Path, None], *, device: Union[str, torch.device, None] = None,
                    ema: bool = True, runs_root: Union[str, Path] = "runs") -> Pretrained:
    """Load a checkpoint file, a run directory, or (None) the newest run under ``runs_root``."""
    path = resolve_checkpoint(checkpoint, runs_root)
    device = resolve_device(device)
    ckpt = load_checkpoint_dict(path, map_location="cpu")
    try:
        cfg = checkpoint_config(ckpt["config"])
        representation = representation_from_dict(ckpt["representation"])
        sigmas = dict(ckpt["sigmas"])
        cond_channels = representation.channels if cfg.loss.objective == "cdsm" else 0
        model = build_score_model(cfg.model, representation.channels, cond_channels=cond_channels)
        model.load_state_dict(ckpt["ema" if ema else "model"])
    except (KeyError, RuntimeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path} is incomplete or does not match this scoreaudio version "
                              f"({type(e).__name__}: {' '.join(str(e).split())[:160]})") from None
    model.to(device).eval().requires_grad_(False)
    return Pretrained(model, cfg, representation, sigmas, int(ckpt.get("step", 0)), path, device)
