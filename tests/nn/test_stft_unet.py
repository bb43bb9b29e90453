"""stft_unet: a spectrogram U-Net whose diffusion state is the waveform (scoreaudio/nn/stft_unet.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, TINY

from scoreaudio.config import compose, config_dir
from scoreaudio.errors import ConfigError
from scoreaudio.info import describe_model
from scoreaudio.nn import ScoreModel, build_score_model, count_parameters
from scoreaudio.nn.build import check_representation
from scoreaudio.nn.stft_unet import STFTUNet
from scoreaudio.utils.checkpoint import load_checkpoint_dict

#: A U-Net small enough for milliseconds per call (not a preset: the presets are tested below).
TINY_UNET = {
    "channels": 8,
    "channel_mult": (1, 2, 4),
    "attention": True,
    "attention_heads": 2,
    "groups": 4,
    "embedding_dim": 16,
}
TINY_MODEL = [
    "model.backbone=stft_unet",
    "model.embedding_dim=16",
    "model.unet2d.channels=8",
    "model.unet2d.channel_mult=[1,2,4]",
    "model.unet2d.attention_heads=2",
    "model.unet2d.groups=4",
    "representation.kind=waveform",
]


class _Identity(torch.nn.Module):
    """Stands in for the U-Net: returns its input (the spectrogram) unchanged."""

    def forward(self, z: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        return z


def _perturb(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Small random weights for the zero-initialised output convolutions, so F depends on x."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if not p.abs().sum():
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return net


def _speechlike(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    """(B, 1, T) harmonics with a silent gap (exact zeros: |X| = 0 bins) and a little noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 16000.0
    f0 = 100.0 + 100.0 * torch.rand(batch, 1, 1, generator=g)
    wav = sum(torch.sin(2 * torch.pi * k * f0 * t) / k for k in range(1, 6))
    wav = wav + 0.01 * torch.randn(batch, 1, length, generator=g)
    wav[..., length // 3 : length // 2] = 0.0
    return wav


# ---------------------------------------------------------------------------------------------
# The module
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [16001, 12345, 300, 100])
@pytest.mark.parametrize("output", ["linear", "compressed"])
def test_any_length_in_gives_the_same_length_out(length, output):
    net = STFTUNet(2, 1, output=output, **TINY_UNET)  # 2 in: a state channel and a cond channel
    with torch.no_grad():
        out = _perturb(net)(torch.randn(3, 2, length), torch.zeros(3))
    assert out.shape == (3, 1, length) and torch.isfinite(out).all()


@pytest.mark.parametrize("output,alpha", [("compressed", 0.5), ("compressed", 0.3), ("linear", 1.0)])
def test_identity_unet_reconstructs_the_waveform(output, alpha):
    """STFT -> compress -> (identity) -> decompress -> iSTFT is the identity, edges included."""
    net = STFTUNet(1, 1, output=output, alpha=alpha, **TINY_UNET)
    net.unet = _Identity()
    x = _speechlike(2, 12345)
    with torch.no_grad():
        err = (net(x, torch.zeros(2)) - x).abs().max()
    assert err < 1e-4


def test_compression_is_inverted_and_has_the_documented_scale():
    net = STFTUNet(1, 1, **TINY_UNET)
    z = torch.randn(4, 1, 2, 256, 100)
    torch.testing.assert_close(net._decompress(net._compress(z)), z, atol=1e-4, rtol=1e-4)
    # Unit-variance white noise: normalised STFT of unit power, compressed to Gamma(1.5) = 0.886.
    power = net.analyse(torch.randn(4, 1, 32000)).pow(2).sum(dim=1).mean()
    assert power == pytest.approx(0.886, rel=0.05)


def test_linear_output_of_a_consistent_spectrogram_is_its_waveform():
    """The U-Net's target in linear mode is the normalised STFT of F's waveform target."""
    net = STFTUNet(1, 1, output="linear", alpha=1.0, **TINY_UNET)
    x = torch.randn(2, 1, 4000)
    torch.testing.assert_close(net.synthesise(net.analyse(x), 4000), x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("output", ["linear", "compressed"])
def test_gradients_reach_the_output_layer_from_zero_init(output):
    """Zero-initialised last conv: the first step must still have a gradient (compressed output
    would be dead without the eps inside its |Y|^(1/alpha))."""
    net = STFTUNet(1, 1, output=output, **TINY_UNET)
    out = net(torch.randn(2, 1, 4000), torch.zeros(2))
    assert not out.abs().any()  # F = 0 at init
    (out - torch.randn_like(out)).pow(2).mean().backward()
    assert net.unet.conv_out.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("output", ["linear", "compressed"])
def test_gradients_are_finite_through_silence(output):
    """Exact zeros in the input (|X| = 0): the eps keeps d|X|^alpha/dX bounded, for every
    parameter and for the input (sliced score matching and guidance differentiate through x)."""
    net = _perturb(STFTUNet(1, 1, output=output, **TINY_UNET))
    x = _speechlike(2, 8000)
    x[1] = 0.0  # one example entirely silent
    x.requires_grad_(True)
    net(x, torch.tensor([-1.0, 0.5])).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert all(p.grad.abs().sum() > 0 for p in net.parameters())


def test_receptive_field_bounds_the_convolutions():
    """Through gradients, with GroupNorm and attention (global by design) taken out."""
    net = _perturb(
        STFTUNet(
            1,
            1,
            n_fft=64,
            hop_length=16,
            channels=8,
            channel_mult=(1, 1),
            attention=False,
            groups=4,
            embedding_dim=8,
        )
    )
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.GroupNorm):
                setattr(module, name, torch.nn.Identity())
    x = torch.randn(1, 1, 4096, requires_grad=True)
    net(x, torch.zeros(1))[0, 0, 2048].backward()
    support = x.grad[0, 0].nonzero().squeeze(1)
    width = int(support.max() - support.min() + 1)
    assert width <= net.receptive_field
    assert width >= net.receptive_field - 2 * net.hop_length - net.n_fft  # and is not loose


def test_autocast_bf16_keeps_a_float32_finite_output():
    net = _perturb(STFTUNet(1, 1, **TINY_UNET))
    x = torch.randn(2, 1, 4000)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x, torch.zeros(2))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="output"):
        STFTUNet(1, 1, output="mel", **TINY_UNET)
    with pytest.raises(ValueError, match="hop_length"):
        STFTUNet(1, 1, n_fft=64, hop_length=64, **TINY_UNET)
    with pytest.raises(ValueError, match="alpha"):
        STFTUNet(1, 1, alpha=0.0, **TINY_UNET)


# ---------------------------------------------------------------------------------------------
# Config, builder, preset, recipe
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cond", [0, 1])
def test_score_model_on_the_waveform_state(cond):
    cfg = compose(None, TINY_MODEL)
    model = build_score_model(cfg.model, 1, cond_channels=cond)
    assert isinstance(model, ScoreModel) and isinstance(model.backbone, STFTUNet)
    _perturb(model.backbone)
    x, sigma = torch.randn(2, 1, 12345), torch.tensor([0.01, 5.0])
    with torch.no_grad():
        score = model(x, sigma, torch.randn(2, 1, 12345) if cond else None)
        denoised = model.denoise(x, sigma, torch.randn(2, 1, 12345) if cond else None)
    assert score.shape == denoised.shape == (2, 1, 12345) and torch.isfinite(score).all()


def test_representation_must_be_the_waveform():
    cfg = compose(None, TINY_MODEL)
    check_representation(cfg.model, "waveform")
    with pytest.raises(ConfigError, match="stft_unet.*representation.kind=waveform") as err:
        check_representation(cfg.model, "stft")
    assert "\n" not in str(err.value)
    check_representation(compose().model, "stft")  # the default unet2d on the default stft


def test_output_mapping_is_a_checked_choice():
    assert compose(None, TINY_MODEL).model.stft_unet.output == "linear"
    with pytest.raises(ConfigError, match="model.stft_unet.output"):
        compose(None, [*TINY_MODEL, "model.stft_unet.output=mel"])


def test_preset_is_unet2d_small_inside_and_states_its_facts():
    wave = compose(REPO / "recipes/quickstart.yaml")
    spec = compose(REPO / "recipes/quickstart_stft.yaml")
    assert wave.representation.kind == "waveform" and wave.model.backbone == "stft_unet"
    assert wave.model.preset == "stft_unet_small" and wave.model.unet2d == spec.model.unet2d
    assert wave.model.embedding_dim == spec.model.embedding_dim
    for key in ("data", "noise", "loss", "sampler", "train"):  # the quickstart otherwise
        assert wave[key] == spec[key], key
    model = build_score_model(wave.model, 1)
    text = (config_dir() / "model" / "stft_unet_small.yaml").read_text()
    stated = re.search(r"([\d,]+) parameters", text).group(1).replace(",", "")
    assert count_parameters(model) == int(stated)
    assert f"{model.receptive_field:,} samples" in text
    info = describe_model(model, wave.model, 1, 16000, 128)
    assert info["receptive_field_samples"] == model.receptive_field and info["global_context"]
    assert info["input_shape"].startswith("(B, 1, T) waveform")


def test_quickstart_trains_two_steps_on_its_waveform_state(tmp_path, synthetic_cache):
    """The recipe through the CLI (its own model; the corpus and crops shrunk by TINY)."""
    run = tmp_path / "run"
    tiny = [o for o in TINY if not o.startswith(("model=", "representation="))]
    cmd = [
        sys.executable,
        "-m",
        "scoreaudio.train",
        str(REPO / "recipes/quickstart.yaml"),
        *tiny,
        "train.steps=2",
        "train.precision=fp32",
        f"train.run_dir={run}",
    ]
    env = {**os.environ, "SCOREAUDIO_CACHE": str(synthetic_cache), "OMP_NUM_THREADS": "1"}
    start = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.time() - start < 120
    ckpt = load_checkpoint_dict(run / "last.pt")
    assert ckpt["step"] == 2 and ckpt["config"]["model"]["backbone"] == "stft_unet"
    assert ckpt["sigmas"]["dim"] == 8000  # 0.5 s at 16 kHz: the state is the waveform
