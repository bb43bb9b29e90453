"""Weights files (safetensors) and the built-in model: export, safe loading, bad files."""

from __future__ import annotations

import pytest
import torch

from scoreaudio.errors import CheckpointError
from scoreaudio.pretrained import export_weights, load_pretrained


def test_exported_weights_rebuild_the_same_model(tiny_run, tmp_path):
    full = load_pretrained(tiny_run, device="cpu")
    f32 = load_pretrained(
        export_weights(tiny_run, tmp_path / "m32.safetensors", dtype=torch.float32), device="cpu"
    )
    f16 = load_pretrained(export_weights(tiny_run, tmp_path / "m16.safetensors"), device="cpu")
    for name, t in full.model.state_dict().items():
        assert torch.equal(f32.model.state_dict()[name], t), name
        assert f16.model.state_dict()[name].dtype == t.dtype  # computed in fp32 after loading
    x = torch.randn(2, *full.model(torch.zeros(1, 2, 64, 32), 0.1).shape[1:])
    with torch.no_grad():
        a, b = full.model(x, 0.3), f16.model(x, 0.3)
    assert float((a - b).abs().max()) < 2e-3 * float(a.abs().max())
    assert f16.levels == full.levels and f16.step == full.step and f16.cfg.model == full.cfg.model
    assert f16.cfg.train.run_dir is None and full.cfg.train.run_dir is not None  # no machine paths travel
    assert (tmp_path / "m16.safetensors").stat().st_size < 0.6 * (tmp_path / "m32.safetensors").stat().st_size


def test_bad_weights_files_are_refused_without_unpickling(tiny_run, tmp_path):
    from safetensors.torch import save_file

    pickled = tmp_path / "evil.safetensors"
    torch.save({"x": torch.zeros(2)}, pickled)  # a pickle under the right extension
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_pretrained(pickled)
    bare = tmp_path / "bare.safetensors"
    save_file({"x": torch.zeros(2)}, str(bare))
    with pytest.raises(CheckpointError, match="no 'scoreaudio' metadata"):
        load_pretrained(bare)
    with pytest.raises(CheckpointError, match="weights file not found"):
        load_pretrained(tmp_path / "missing.safetensors")


def test_export_command_writes_a_loadable_file(tiny_run, tmp_path, capsys):
    from scoreaudio.cli import main

    out = tmp_path / "tiny.safetensors"
    assert main(["export", str(tiny_run), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and load_pretrained(out).step == load_pretrained(tiny_run).step
    assert main(["export", str(tiny_run), str(tmp_path / "tiny.pt")]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err
    before = out.read_bytes()
    assert main(["export", str(tiny_run), str(out)]) == 2  # never replaced without asking
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["export", str(tiny_run), str(out), "--overwrite"]) == 0


def test_conditional_is_a_property_of_the_model_and_old_checkpoints_still_load(tmp_path):
    from conftest import train_tiny

    from scoreaudio.utils.checkpoint import load_checkpoint_dict, save_checkpoint

    run = train_tiny(tmp_path / "cdsm", "loss=cdsm", "data.noise_mix.enabled=true")
    ckpt = load_checkpoint_dict(run / "last.pt")
    assert ckpt["cond_channels"] == 2  # the STFT state's two channels
    del ckpt["cond_channels"]  # as written before conditional became a property of the model
    old = save_checkpoint(
        tmp_path / "old.pt", {k: v for k, v in ckpt.items() if k not in ("format", "format_version")}
    )
    pre = load_pretrained(old)
    assert pre.conditional and pre.model.cond_channels == 2
    # a dsm config with model.conditional=true is conditional too
    run2 = train_tiny(tmp_path / "cond", "model.conditional=true", "data.noise_mix.enabled=true")
    assert load_pretrained(run2).conditional
