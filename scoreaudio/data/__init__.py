"""Corpora, manifests, the synthetic corpus and the datasets that cut training examples."""

from __future__ import annotations

from .check import data_check, data_info
from .corpora import READERS, build_manifest
from .datasets import (
    NoiseMixer,
    SegmentDataset,
    brown_noise,
    build_datasets,
    mix_at_snr,
    pink_noise,
    white_noise,
)
from .manifest import AudioMeta, read_manifest, write_manifest
from .synthetic import speaker_params, synthesize_utterance

__all__ = [
    "AudioMeta",
    "read_manifest",
    "write_manifest",
    "READERS",
    "build_manifest",
    "SegmentDataset",
    "NoiseMixer",
    "mix_at_snr",
    "white_noise",
    "pink_noise",
    "brown_noise",
    "build_datasets",
    "data_info",
    "data_check",
    "speaker_params",
    "synthesize_utterance",
]
