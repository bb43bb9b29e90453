"""Locality in time: a network's output frame depends only on the input inside its receptive field,
so processing a window of a long input gives the long run's output away from the window's edges
(and the output does not depend on how long the input is). CPU, tiny networks.

* UNet2d with ``norm="frame"`` (per-frame GroupNorm statistics, attention within frames) is local;
  with ``norm="global"`` (the old behaviour) it is not, which shows the check can fail;
* so is the ScoreModel around it (EDM preconditioning), as built from a preset config;
* WaveNet (dilated convolutions only) and STFTUNet (a frame-local U-Net between STFT and iSTFT);
* old checkpoint configs (no ``model.unet2d.norm``) rebuild the global network they trained.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from scoreaudio.config import compose
from scoreaudio.info import describe_model
from scoreaudio.nn import ScoreModel, build_score_model
from scoreaudio.nn.stft_unet import STFTUNet
from scoreaudio.nn.unet2d import UNet2d, frame_group_norm
from scoreaudio.nn.wavenet import WaveNet
from scoreaudio.pretrained import checkpoint_config

#: Relative tolerance of "matches the long run": float32 rounding of differently sized convolutions.
RTOL = 1e-5

#: A small U-Net with four levels (multiple 8) and attention at the lowest one.
SMALL_UNET = {
    "channels": 8,
    "channel_mult": (1, 2, 2, 2),
    "attention": True,
    "attention_heads": 2,
    "groups": 4,
    "embedding_dim": 8,
    "norm": "frame",
}


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values for every parameter (the zero-initialised output convolutions too, without
    which the output is 0 everywhere), at a scale that keeps activations O(1); eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else 4
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
    return model.eval()


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def long_spectrogram(channels: int = 2, frames: int = 400, loud: slice = slice(0, 48)) -> torch.Tensor:
    """(2, channels, 32, frames) noise, 5x louder in the ``loud`` frames: a window without them has
    very different statistics over all frames, not over any one frame."""
    x = randn(2, channels, 32, frames)
    x[..., loud] *= 5.0
    return x


def unet_context(net: UNet2d) -> int:
    """Frames on either side of an output frame that it can depend on: half the receptive field,
    plus up to ``multiple - 1`` on one side, as the window shifts with the frame's position
    modulo ``multiple`` (the stride-2 grids are anchored at frame 0)."""
    return (net.receptive_field[1] - 1) // 2 + net.multiple - 1


def window_mismatch(fn, x: torch.Tensor, start: int, width: int, margin: int) -> float:
    """max |fn(x) - fn(x[..., window])| / max |fn(x)| over the window's frames farther than
    ``margin`` from both its edges. x: (..., T); fn maps (..., T) to (..., T)."""
    assert width > 2 * margin, "window too short to leave an interior"
    with torch.no_grad():
        full = fn(x)[..., start + margin : start + width - margin]
        part = fn(x[..., start : start + width])[..., margin : width - margin]
    return ((full - part).abs().max() / full.abs().max()).item()


# ---------------------------------------------------------------------------------------------
# UNet2d
# ---------------------------------------------------------------------------------------------
def test_unet2d_output_frame_depends_only_on_its_context():
    """Through gradients, for every phase modulo ``multiple``: the input frames an output frame
    depends on span exactly the receptive field and lie within unet_context of it."""
    net = randomise(UNet2d(2, 2, **SMALL_UNET)).double()
    context, widths = unet_context(net), set()
    for t in range(200, 200 + net.multiple):
        x = randn(1, 2, 16, 400).double().requires_grad_(True)
        net(x, torch.zeros(1, dtype=torch.float64))[..., t].sum().backward()
        frames = x.grad[0].abs().sum((0, 1)).nonzero().squeeze(1)
        lo, hi = int(frames.min()), int(frames.max())
        assert t - context <= lo and hi <= t + context, (t, lo, hi, context)
        widths.add(hi - lo + 1)
    assert widths == {net.receptive_field[1]}


@pytest.mark.parametrize("width", [336, 331])  # 331: the window's end is padded (replicated)
def test_unet2d_frame_norm_is_local_in_time(width):
    net = randomise(UNet2d(2, 2, **SMALL_UNET))
    assert net.norm == "frame" and not net.global_context
    x, c_noise = long_spectrogram(), torch.tensor([-1.0, 0.5])
    start = 6 * net.multiple  # windows start on the multiple's grid (here just after the loud part)
    mismatch = window_mismatch(lambda v: net(v, c_noise), x, start, width, unet_context(net))
    assert mismatch < RTOL


def test_unet2d_global_norm_is_not_local():
    """The same check fails for the old behaviour (GroupNorm statistics and attention over all
    frames): the test can fail."""
    net = randomise(UNet2d(2, 2, **{**SMALL_UNET, "norm": "global"}))
    assert net.global_context
    x, c_noise = long_spectrogram(), torch.tensor([-1.0, 0.5])
    mismatch = window_mismatch(lambda v: net(v, c_noise), x, 6 * net.multiple, 336, unet_context(net))
    assert mismatch > 1e-2


def test_unet2d_norm_keeps_the_parameters():
    """Old checkpoints load into either mode: the same state_dict keys and shapes."""
    frame, global_ = UNet2d(2, 2, **SMALL_UNET), UNet2d(2, 2, **{**SMALL_UNET, "norm": "global"})
    assert {k: v.shape for k, v in frame.state_dict().items()} == {
        k: v.shape for k, v in global_.state_dict().items()
    }
    with pytest.raises(ValueError, match="norm"):
        UNet2d(2, 2, **{**SMALL_UNET, "norm": "batch"})


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_frame_norm_matches_group_norm_of_each_frame(layout):
    """Per-frame statistics equal nn.GroupNorm applied to every frame alone, in either layout."""
    net = randomise(UNet2d(2, 2, **SMALL_UNET))
    norm = net.enc[1][0].norm1  # 8 channels, 4 groups
    x = (3 * randn(2, 8, 16, 5) + 1).contiguous(memory_format=layout)
    out = norm(x)
    for t in range(5):
        expected = F.group_norm(x[..., t], norm.num_groups, norm.weight, norm.bias, norm.eps)
        torch.testing.assert_close(out[..., t], expected, rtol=1e-5, atol=1e-5)
    assert out.is_contiguous(memory_format=layout)


def test_frame_norm_statistics_stay_float32_under_autocast():
    """bf16 activations (autocast) are normalised with float32 statistics, to a float32 output."""
    x = (3 * randn(2, 8, 16, 5) + 1).bfloat16().contiguous(memory_format=torch.channels_last)
    weight, bias = randn(8, seed=1), randn(8, seed=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = frame_group_norm(x, 4, weight, bias, 1e-6)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, frame_group_norm(x.float(), 4, weight, bias, 1e-6))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_frame_norm_gradients_and_second_derivatives(layout):
    """Exact first and second derivatives (sliced score matching and energy models differentiate
    the score again), with a per-example affine as the ResBlocks' fused FiLM passes it."""
    x = (2 * randn(2, 4, 3, 5) + 1).double().contiguous(memory_format=layout).requires_grad_(True)
    weight, bias = (randn(2, 4, seed=s).double().requires_grad_(True) for s in (1, 2))

    def fn(x, weight, bias):
        return frame_group_norm(x, 2, weight, bias, 1e-6)

    assert torch.autograd.gradcheck(fn, (x, weight, bias))
    assert torch.autograd.gradgradcheck(fn, (x, weight, bias))


# ---------------------------------------------------------------------------------------------
# Through the score model, from a preset config
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["score", "denoise"])
def test_score_model_with_edm_is_local(method):
    cfg = compose("quickstart", ["model=unet2d_tiny", "representation=stft", "model.unet2d.norm=frame"])
    assert cfg.model.unet2d.norm == "frame" and cfg.model.parameterisation == "edm"
    model = randomise(build_score_model(cfg.model, 2, cond_channels=2))
    assert isinstance(model, ScoreModel)
    assert not describe_model(model, cfg.model, 2, 16000, 128)["global_context"]
    net = model.backbone
    # x and cond as one (B, 4, F, T) tensor, so the window of cond goes with the window of x.
    xc, sigma = long_spectrogram(channels=4), torch.tensor([0.05, 2.0])
    call = model if method == "score" else model.denoise
    mismatch = window_mismatch(
        lambda v: call(v[:, :2], sigma, cond=v[:, 2:]), xc, 4 * net.multiple, 320, unet_context(net)
    )
    assert mismatch < RTOL


# ---------------------------------------------------------------------------------------------
# WaveNet and STFTUNet (waveform backbones)
# ---------------------------------------------------------------------------------------------
def test_wavenet_is_local():
    net = randomise(
        WaveNet(
            1, 1, residual_channels=8, residual_layers=6, dilation_cycle=3, kernel_size=3, embedding_dim=8
        )
    )
    x, c_noise = randn(2, 1, 600), torch.tensor([-1.0, 0.5])
    margin = (net.receptive_field - 1) // 2  # "same" padding: centred
    assert window_mismatch(lambda v: net(v, c_noise), x, 101, 300, margin) < RTOL  # any start


def test_stft_unet_is_local():
    """Windows on the grid of hop * multiple samples: the same STFT frames, on the U-Net's grid."""
    net = randomise(
        STFTUNet(
            1,
            1,
            n_fft=62,
            hop_length=16,
            channels=8,
            channel_mult=(1, 2),
            attention=True,
            attention_heads=2,
            groups=4,
            embedding_dim=8,
            norm="frame",
        )
    )
    assert not net.unet.global_context
    x, c_noise = randn(2, 1, 4000), torch.tensor([-1.0, 0.5])
    unit = net.hop_length * net.unet.multiple
    margin = net.receptive_field // 2 + unit  # plus the window's partial first / last frames
    assert window_mismatch(lambda v: net(v, c_noise), x, 20 * unit, 2000, margin) < RTOL


# ---------------------------------------------------------------------------------------------
# Old checkpoints
# ---------------------------------------------------------------------------------------------
def test_checkpoint_config_without_norm_is_global():
    stored = OmegaConf.to_container(
        compose("quickstart", ["model=unet2d_tiny", "representation=stft", "model.unet2d.norm=frame"]),
        resolve=True,
    )
    assert checkpoint_config(stored).model.unet2d.norm == "frame"  # a new checkpoint keeps its own
    del stored["model"]["unet2d"]["norm"]  # as written before the option existed
    cfg = checkpoint_config(stored)
    assert cfg.model.unet2d.norm == "global" and "norm" not in stored["model"]["unet2d"]
    model = build_score_model(cfg.model, 2)
    assert model.backbone.norm == "global"
    assert describe_model(model, cfg.model, 2, 16000, 128)["global_context"]
