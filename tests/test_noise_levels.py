"""NoiseLevels: the run's noise-level settings and the dict checkpoints store them as."""

from __future__ import annotations

import dataclasses
import json

import pytest

from scoreaudio.errors import CheckpointError
from scoreaudio.noise import NoiseLevels

# what choose_sigmas wrote, then store_calibration appended: the on-disk dict, in its key order
STORED = {
    "sigma_min": 0.002,
    "sigma_max": 3.0,
    "num_levels": 615,
    "sigma_data": 0.11850833892822266,
    "dim": 32000,
    "noise_map_scale": 0.8,
}


def test_round_trip_keeps_the_stored_dict_byte_for_byte():
    levels = NoiseLevels.from_dict(STORED)
    assert levels == NoiseLevels(0.002, 3.0, 615, 0.11850833892822266, dim=32000, noise_map_scale=0.8)
    assert isinstance(levels.num_levels, int) and isinstance(levels.sigma_max, float)
    out = levels.to_dict()
    assert out == STORED and list(out) == list(STORED)
    assert json.dumps(out, indent=2) == json.dumps(STORED, indent=2)  # sigmas.json, weights-file metadata
    assert NoiseLevels.from_dict(out) == levels
    assert NoiseLevels.coerce(levels) is levels and NoiseLevels.coerce(STORED) == levels


def test_an_old_checkpoint_without_the_calibration_loads_and_writes_back_unchanged():
    old = {k: v for k, v in STORED.items() if k != "noise_map_scale"}
    levels = NoiseLevels.from_dict(old)
    assert levels.noise_map_scale is None and levels.to_dict() == old
    assert "noise_map_scale" not in levels.to_dict()
    no_dim = {k: v for k, v in old.items() if k != "dim"}
    assert NoiseLevels.from_dict(no_dim).to_dict() == no_dim


def test_calibration_returns_a_new_object_with_the_scale_as_the_last_key():
    levels = NoiseLevels.from_dict({k: v for k, v in STORED.items() if k != "noise_map_scale"})
    calibrated = levels.with_noise_map_scale(0.8)
    assert levels.noise_map_scale is None and calibrated.to_dict() == STORED
    assert list(calibrated.to_dict()) == list(STORED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        levels.sigma_max = 1.0  # type: ignore[misc]


def test_a_dict_missing_a_required_key_is_a_one_line_checkpoint_error():
    bad = {k: v for k, v in STORED.items() if k != "num_levels"}
    with pytest.raises(CheckpointError, match=r"^run/last.pt: sigmas lacks 'num_levels' \(") as info:
        NoiseLevels.from_dict(bad, source="run/last.pt: sigmas")
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="unknown keys sigma_typo"):
        NoiseLevels.from_dict({**STORED, "sigma_typo": 1.0})
    with pytest.raises(CheckpointError, match=r"sigma_max='big' is not a number"):
        NoiseLevels.from_dict({**STORED, "sigma_max": "big"})
    with pytest.raises(CheckpointError, match="must be a dict"):
        NoiseLevels.from_dict(None)  # type: ignore[arg-type]


def test_the_builtin_models_metadata_reads_back_to_the_same_json():
    from safetensors import safe_open

    from scoreaudio.pretrained import META_KEY, builtin_path

    with safe_open(str(builtin_path("default")), framework="pt") as f:
        raw = f.metadata()[META_KEY]
    stored = json.loads(raw)["sigmas"]
    assert json.dumps(NoiseLevels.from_dict(stored).to_dict()) == json.dumps(stored)
