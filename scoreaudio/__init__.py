"""scoreaudio: score-based (diffusion) models of speech — train, generate, denoise.

Public API::

    from scoreaudio import SpeechDenoiser            # denoise speech in Python
    from scoreaudio import generate                  # sample speech from a checkpoint
    from scoreaudio import load_pretrained           # model + representation + noise levels from a run
    from scoreaudio import compose                   # configs (training: scoreaudio.train.train)
    from scoreaudio import dsm_loss, ssm_loss, exact_sm_loss
    from scoreaudio import langevin, annealed_langevin, pc_sampler, heun, SAMPLERS

``scoreaudio.generate`` is the function; its module is :mod:`scoreaudio.generation`
(``draw_samples``, ``sample_checkpoint``, the ``scoreaudio generate`` command).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import compose
from .denoise import SpeechDenoiser
from .generation import generate
from .losses import dsm_loss, exact_sm_loss, ssm_loss
from .pretrained import load_pretrained
from .sampling import SAMPLERS, annealed_langevin, heun, langevin, pc_sampler

__all__ = [
    "SpeechDenoiser",
    "generate",
    "load_pretrained",
    "compose",
    "dsm_loss",
    "ssm_loss",
    "exact_sm_loss",
    "langevin",
    "annealed_langevin",
    "pc_sampler",
    "heun",
    "SAMPLERS",
    "__version__",
]
