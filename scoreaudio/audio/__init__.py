"""Audio in and out of the package: file I/O and the representations the models see."""

from __future__ import annotations

from .features import log_mel, spectrogram_png
from .io import AUDIO_EXTS, audio_info, find_audio_files, load, resample, save
from .representation import (
    CompressedSTFT,
    Representation,
    Waveform,
    build_representation,
    estimate_model_noise_std,
    representation_from_dict,
)

__all__ = [
    "load",
    "save",
    "audio_info",
    "resample",
    "find_audio_files",
    "AUDIO_EXTS",
    "Representation",
    "Waveform",
    "CompressedSTFT",
    "build_representation",
    "representation_from_dict",
    "estimate_model_noise_std",
    "log_mel",
    "spectrogram_png",
]
