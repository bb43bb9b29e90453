"""scoreaudio: score-based (diffusion) models of speech — train, generate, denoise.

Public API::

    from scoreaudio import SpeechDenoiser            # denoise speech in Python
    from scoreaudio import generate                  # sample speech from a checkpoint
    from scoreaudio import load_checkpoint           # model + representation + sigmas from a .pt
    from scoreaudio import compose                   # configs (training: scoreaudio.train.train)
    from scoreaudio import dsm_loss, ssm_loss, exact_sm_loss
    from scoreaudio import langevin, annealed_langevin, pc_sampler, heun, SAMPLERS
"""
from __future__ import annotations

__version__ = "0.1.0"

from .config import compose
from .denoise import SpeechDenoiser
# The function shadows the submodule attribute on purpose: `scoreaudio.generate(...)` samples;
# the module stays importable as `from scoreaudio.generate import draw_samples`.
from .generate import generate
from .losses import dsm_loss, exact_sm_loss, ssm_loss
from .pretrained import load_pretrained as load_checkpoint
from .sampling import SAMPLERS, annealed_langevin, heun, langevin, pc_sampler

__all__ = ["SpeechDenoiser", "generate", "load_checkpoint", "compose", "dsm_loss", "ssm_loss",
           "exact_sm_loss", "langevin", "annealed_langevin", "pc_sampler", "heun", "SAMPLERS", "__version__"]
