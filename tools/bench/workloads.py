"""What the suites time: untrained models of each backbone and preset, one training step exactly as
the trainer runs it, and test audio (costs do not depend on the weights or the content)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Sequence, Tuple

import torch

from bench import REPO

if TYPE_CHECKING:
    from bench.settings import Settings

#: (representation, recipe whose batch/crop a backbone trains at on a GPU)
BACKBONES = {"unet2d": ("stft", "ljspeech"), "wavenet": ("waveform", "sc09")}
#: model-space sigma range used where no trained run fixes one (costs do not depend on it)
SIGMAS = {"sigma_min": 0.002, "sigma_max": 20.0, "num_levels": 100, "sigma_data": 0.5}


def preset_name(backbone: str, preset: str) -> str:
    return preset if preset.startswith(backbone) else f"{backbone}_{preset}"


def compose_cfg(backbone: str, preset: str, extra: Sequence[str] = ()):
    from scoreaudio.config import compose

    rep, _ = BACKBONES[backbone]
    return compose(
        REPO / "recipes" / "quickstart.yaml",
        [f"model={preset_name(backbone, preset)}", f"representation={rep}", *extra],
    )


def train_shape(backbone: str, preset: str, device: torch.device, s: "Settings") -> Tuple[int, float, str]:
    """(batch, crop seconds, where they come from) for a training-step measurement."""
    from scoreaudio.config import compose

    if s.train_batch is not None or s.train_seconds is not None:
        cfg = compose(REPO / "recipes" / "quickstart.yaml")
        batch = s.train_batch or int(cfg.train.batch_size)
        return batch, s.train_seconds or float(cfg.data.segment_seconds), "--quick" if s.quick else "settings"
    if device.type == "cuda":
        _, recipe = BACKBONES[backbone]
        cfg = compose(REPO / "recipes" / f"{recipe}.yaml")
        return int(cfg.train.batch_size), float(cfg.data.segment_seconds), f"recipes/{recipe}.yaml"
    cfg = compose(REPO / "recipes" / "quickstart.yaml")
    batch, seconds = int(cfg.train.batch_size), float(cfg.data.segment_seconds)
    if preset == "base":  # a GPU-scale network: a shorter crop keeps a CPU step within minutes
        return 2, 0.5, "base on CPU: batch 2 x 0.5 s (documented smaller crop)"
    return batch, seconds, "recipes/quickstart.yaml"


def audio_batch(batch: int, length: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """(B, 1, T) speech-band noise at a speech-like level (costs do not depend on the content)."""
    g = torch.Generator().manual_seed(seed)
    return (0.1 * torch.randn(batch, 1, length, generator=g)).to(device)


def set_layout(model, value: Optional[bool]) -> None:
    """Channels-last activations on (True), off (False) or the backbone's default (None)."""
    bb = getattr(model, "backbone", None)
    if bb is not None and hasattr(type(bb), "channels_last"):
        bb.channels_last = value


def eval_model(backbone: str, preset: str, device: torch.device):
    """(cfg, representation, model): an untrained network in eval mode without gradients."""
    from scoreaudio.audio.representation import build_representation
    from scoreaudio.nn.build import build_score_model

    cfg = compose_cfg(backbone, preset)
    rep = build_representation(cfg.representation)
    torch.manual_seed(0)
    model = build_score_model(cfg.model, rep.channels)
    model.sigma_data.fill_(SIGMAS["sigma_data"])
    return cfg, rep, model.to(device).eval().requires_grad_(False)


class TrainStep:
    """One optimiser step exactly as scoreaudio.train runs it (grad_accum 1, one process)."""

    def __init__(
        self,
        backbone: str,
        preset: str,
        batch: int,
        seconds: float,
        device: torch.device,
        precision: str,
        compile: bool = False,
    ):
        from scoreaudio.audio.representation import build_representation
        from scoreaudio.nn.build import build_score_model, count_parameters
        from scoreaudio.utils.ema import EMA

        self.cfg = compose_cfg(
            backbone,
            preset,
            [f"train.batch_size={batch}", f"data.segment_seconds={seconds}", f"train.precision={precision}"],
        )
        self.device, self.precision, self.batch, self.seconds = device, precision, batch, seconds
        sr = int(self.cfg.data.sample_rate)
        self.rep = build_representation(self.cfg.representation)
        torch.manual_seed(0)
        self.model = build_score_model(self.cfg.model, self.rep.channels).to(device)
        self.model.sigma_data.fill_(SIGMAS["sigma_data"])
        self.params = count_parameters(self.model)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, betas=(0.9, 0.999))
        self.ema = EMA(self.model, 100.0)
        self.eager_model = self.model
        self.compiled = torch.compile(self.model) if compile else None
        self.train_model = self.model
        self.wav = audio_batch(batch, int(round(seconds * sr)), device)
        self.n = 0
        self.host_sums: Dict[str, float] = {}

    def use(self, compiled: bool) -> None:
        self.train_model = self.compiled if compiled else self.eager_model

    def __call__(self, *, bookkeeping: str = "none") -> None:
        """One step. ``bookkeeping='trainpy'`` adds train.py's per-step host reads (isfinite check,
        float(loss), per-example tolist for the sigma buckets); 'none' keeps everything on the device."""
        from scoreaudio.train_step import sigma_bucket, train_step

        # The trainer's own step (scoreaudio/train_step.py), so what is timed is what trains.
        result = train_step(
            model=self.model,
            train_model=self.train_model,
            optimizer=self.opt,
            ema=self.ema,
            batches=iter([{"clean": self.wav}]),
            representation=self.rep,
            sigmas=SIGMAS,
            cfg=self.cfg,
            step=self.n,
            device=self.device,
        )
        self.n += 1
        if bookkeeping == "trainpy":
            self.host_sums["loss"] = self.host_sums.get("loss", 0.0) + float(result.losses.mean())
            for sg, lo in zip(result.sigmas.tolist(), result.losses.tolist(), strict=True):
                b = sigma_bucket(sg)
                self.host_sums[b] = self.host_sums.get(b, 0.0) + lo
