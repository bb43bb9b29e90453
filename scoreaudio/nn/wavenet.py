"""WaveNet backbone for (B, C, T) waveforms, after DiffWave (Kong et al., ICLR 2021, Sec. 3, Fig. 2).

    x (B, C_in, T) -> Conv1x1 -> ReLU                                   # (B, R, T)
    L residual blocks, block i:
        y = h + Linear_i(SiLU(emb))                                     # sigma embedding, added
        y = DilatedConv(y), dilation 2^(i mod cycle), "same" padding    # (B, 2R, T), non-causal
        y = tanh(y_a) * sigmoid(y_b)                                    # gated activation
        r, s = Conv1x1(y).chunk(2)                                      # residual and skip
        h = (h + r) / sqrt(2)
    sum(s) / sqrt(L) -> Conv1x1 -> ReLU -> Conv1x1 (zero-initialised)   # (B, C_out, T)

Differences from DiffWave: the embedding is of c_noise = log(sigma)/4 instead of an integer step,
and there is no per-layer mel conditioner: conditioning channels (the noisy input, for conditional
denoising) are concatenated to the input by :class:`~scoreaudio.nn.score_model.ScoreModel`.
Fully convolutional: any T.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.tensor import append_dims
from .embeddings import SigmaEmbedding


def _conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """Apply a Conv1d to (B, C, T), or to (B, C, 1, T) in channels-last layout as the equal 2-D
    convolution of height 1 (same weights, viewed (out, in, 1, k))."""
    if x.ndim == 3:
        return conv(x)
    return F.conv2d(
        x,
        conv.weight.unsqueeze(2),
        conv.bias,
        stride=(1, conv.stride[0]),
        padding=(0, conv.padding[0]),
        dilation=(1, conv.dilation[0]),
    )


class ResidualBlock(nn.Module):
    """One DiffWave residual block; returns (residual output, skip)."""

    def __init__(self, channels: int, emb_dim: int, kernel_size: int, dilation: int):
        super().__init__()
        self.emb_proj = nn.Linear(emb_dim, channels)
        self.dilated_conv = nn.Conv1d(
            channels, 2 * channels, kernel_size, padding=dilation * (kernel_size - 1) // 2, dilation=dilation
        )
        self.output_proj = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, h: torch.Tensor, emb: torch.Tensor, emb_out: Optional[torch.Tensor] = None):
        """h: (B, R, T) or, channels-last, (B, R, 1, T); emb: (B, 4E). ``emb_out``: this block's
        ``emb_proj(emb)`` when the caller computed it already, (B, R)."""
        if emb_out is None:
            emb_out = self.emb_proj(emb)
        y = h + append_dims(emb_out, h.ndim)  # (B, R, T)
        gate, filt = _conv(self.dilated_conv, y).chunk(2, dim=1)  # 2 x (B, R, T)
        y = torch.sigmoid(gate) * torch.tanh(filt)
        residual, skip = _conv(self.output_proj, y).chunk(2, dim=1)
        return (h + residual) / math.sqrt(2.0), skip


class WaveNet(nn.Module):
    """DiffWave-style non-causal dilated residual network: F(x, c_noise) for x of shape (B, C, T).

    Args:
        in_channels: input channels (the representation's channels plus any conditioning channels).
        out_channels: output channels (the representation's channels).
        residual_channels: R, channels inside every residual block.
        residual_layers: L, number of residual blocks.
        dilation_cycle: dilations 1, 2, ..., 2^(cycle-1), repeated.
        kernel_size: dilated convolution kernel (odd).
        embedding: ``"fourier"`` or ``"sinusoidal"`` features of c_noise.
        embedding_dim: width of those features; the embedding MLP is 4x as wide (DiffWave: 128 -> 512).

    Memory layout (performance only; results agree to float rounding): with ``channels_last=True``
    the stack runs on (B, R, 1, T) activations in channels-last layout, each Conv1d applied as the
    equal 2-D convolution of height 1. oneDNN runs those convolutions faster on the CPU, but the
    channel splits of the gated activation cost more in that layout, and a whole training step came
    out slower (plain / channels-last step time 0.88 for wavenet_tiny and 0.94 for wavenet_small at
    one thread; 1.05 with two threads on a loaded machine; ``tools/benchmark.py train --ab layout``),
    so ``None`` (the default) keeps the plain layout on every device. Parameters and state_dict are
    the same either way.
    """

    #: True forces channels-last activations, False / None (default) the plain (B, R, T) layout.
    channels_last: Optional[bool] = None

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        residual_channels: int = 64,
        residual_layers: int = 30,
        dilation_cycle: int = 10,
        kernel_size: int = 3,
        embedding: str = "fourier",
        embedding_dim: int = 128,
    ):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        if residual_layers < 1 or dilation_cycle < 1:
            raise ValueError("residual_layers and dilation_cycle must be >= 1")
        emb_dim = 4 * embedding_dim
        self.kernel_size = kernel_size
        self.dilations = [2 ** (i % dilation_cycle) for i in range(residual_layers)]
        self.embed = SigmaEmbedding(embedding, embedding_dim, emb_dim)
        self.input_proj = nn.Conv1d(in_channels, residual_channels, 1)
        self.blocks = nn.ModuleList(
            ResidualBlock(residual_channels, emb_dim, kernel_size, d) for d in self.dilations
        )
        self.skip_proj = nn.Conv1d(residual_channels, residual_channels, 1)
        self.output_proj = nn.Conv1d(residual_channels, out_channels, 1)
        nn.init.zeros_(self.output_proj.weight)  # DiffWave: the network starts at F = 0
        nn.init.zeros_(self.output_proj.bias)

    @property
    def receptive_field(self) -> int:
        """Input samples that one output sample depends on: 1 + (k - 1) * sum(dilations)."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, T), c_noise: (B,) -> (B, C_out, T)."""
        if x.ndim != 3:
            raise ValueError(f"WaveNet expects (B, C, T), got shape {tuple(x.shape)}")
        emb = F.silu(self.embed(c_noise))  # (B, 4E); SiLU once here, a Linear per block
        use_cl = bool(self.channels_last)
        h = F.relu(_conv(self.input_proj, x.unsqueeze(2) if use_cl else x))  # (B, R, T)
        if use_cl:  # (B, R, 1, T), NHWC (set here: a 1-channel input's layout is ambiguous)
            h = h.contiguous(memory_format=torch.channels_last)
        # Every block's sigma projection in one matrix product instead of L tiny ones (same weights:
        # the blocks' emb_proj Linears, concatenated).
        proj = F.linear(
            emb,
            torch.cat([b.emb_proj.weight for b in self.blocks]),
            torch.cat([b.emb_proj.bias for b in self.blocks]),
        )  # (B, L * R)
        skip = torch.zeros_like(h)
        for block, emb_out in zip(self.blocks, proj.chunk(len(self.blocks), dim=1), strict=True):
            h, s = block(h, emb, emb_out)
            skip = skip + s
        out = F.relu(_conv(self.skip_proj, skip / math.sqrt(len(self.blocks))))
        out = _conv(self.output_proj, out)  # (B, C_out, T)
        return out.squeeze(2) if use_cl else out
