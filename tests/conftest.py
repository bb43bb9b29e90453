"""Shared fixtures: a tiny trained run that generation, denoising and benchmark tests reuse."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# Test models are tiny: one thread avoids OpenMP start-up costs and contention on small machines.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]

#: Overrides that make any recipe train in seconds on a CPU: tiny network, tiny synthetic corpus,
#: short crops, two steps, no sampling. Tests add their own on top.
TINY = [
    "representation=stft",  # the spectrogram-state path, whose shapes the tests check
    "model=unet2d_tiny",
    "data.synthetic.train_utterances=12",
    "data.synthetic.valid_utterances=3",
    "data.synthetic.test_utterances=3",
    "data.synthetic.utterance_seconds=1.0",
    "data.segment_seconds=0.5",
    "train.batch_size=2",
    "train.steps=2",
    "train.log_every=1",
    "train.val_every=2",
    "train.val_examples=2",
    "train.ckpt_every=2",
    "train.num_samples=0",
    "train.device=cpu",
    "sampler.steps=6",
]


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory) -> Path:
    """One synthetic-corpus cache for the whole session (the corpus is a pure function of its settings)."""
    return tmp_path_factory.mktemp("synthetic-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch, synthetic_cache):
    monkeypatch.setenv("SCOREAUDIO_CACHE", str(synthetic_cache))


def train_tiny(run_dir: Path, *extra: str, recipe: str = "quickstart") -> Path:
    """Train the quickstart recipe with the TINY overrides into ``run_dir``; returns the run dir."""
    from scoreaudio.config import compose
    from scoreaudio.train import train

    cfg = compose(REPO / "recipes" / f"{recipe}.yaml", [*TINY, f"train.run_dir={run_dir}", *extra])
    return train(cfg)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, synthetic_cache) -> Path:
    """A run directory with a 2-step unet2d_tiny checkpoint (last.pt) on the synthetic corpus."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SCOREAUDIO_CACHE", str(synthetic_cache))
    try:
        return train_tiny(tmp_path_factory.mktemp("runs") / "tiny")
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def tiny_wave_run(tmp_path_factory, synthetic_cache) -> Path:
    """Like tiny_run, for the waveform backbone (wavenet_tiny on raw audio)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SCOREAUDIO_CACHE", str(synthetic_cache))
    try:
        return train_tiny(
            tmp_path_factory.mktemp("runs") / "tiny_wave", "model=wavenet_tiny", "representation=waveform"
        )
    finally:
        mp.undo()
