"""Score networks: the preconditioning wrapper, the backbones and their builder.

``build_score_model(cfg.model, in_channels, cond_channels)`` -> :class:`ScoreModel`, called as
``model(x, sigma, cond=None) -> score``. Backbones: ``unet2d`` (spectrogram states), ``stft_unet``
(the same U-Net on a waveform state, the STFT inside the network), ``wavenet`` (waveforms), ``mlp``
(toy data; imported only when built).
"""

from __future__ import annotations

from .build import build_score_model, count_parameters
from .score_model import ScoreModel

__all__ = ["ScoreModel", "build_score_model", "count_parameters"]
