"""U-Net backbone for (B, C, F, T) spectrograms (compressed complex STFTs as re/im channels).

A DDPM++ / NCSN++-style U-Net (Ho et al. 2020; Song et al., ICLR 2021) without the FIR resampling
and progressive-growing options:

    conv3x3 -> [ResBlock x num_res_blocks -> Down] per level       # encoder; every output kept as a skip
            -> ResBlock -> Attention -> ResBlock                   # middle, lowest resolution
            -> [ResBlock(cat skip) x (num_res_blocks + 1) -> Up]   # decoder
            -> GroupNorm -> SiLU -> conv3x3 (zero-initialised)

    ResBlock:  GroupNorm -> SiLU -> conv3x3 -> FiLM(emb) -> SiLU -> dropout -> conv3x3 (zero-init),
               out = (skip(x) + h) / sqrt(2), skip = conv1x1 when the channel count changes
    FiLM:      h = GroupNorm(h) * (1 + scale) + shift, (scale, shift) = Linear(SiLU(emb))
    Down:      conv3x3 stride 2 (both frequency and time);  Up: nearest x2 -> conv3x3
    Attention: multi-head self-attention at the lowest level only, over the F positions of each
               frame (norm="frame") or over all F*T positions (norm="global").

Locality in time (``norm="frame"``, the default): GroupNorm statistics are taken over (C/G, F) per
frame and the attention runs within frames, so an output frame depends only on the input frames
inside the convolutional receptive field. The output is then independent of the input's length:
a spectrogram can be processed in chunks longer than the training crops with the same result away
from the chunk edges (chunk starts at multiples of 2^(levels-1)). The frequency axis stays global:
its size is fixed by the STFT. ``norm="global"`` (statistics over F x T and attention over all
positions) is the behaviour of checkpoints trained before this option; it has the same parameters.

Any F, T: the input is padded on the high-frequency side (zeros) and the late-time side (the last
frame repeated; zeros with norm="global") up to a multiple of 2^(levels-1) and the output cropped
back to the input size.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.tensor import append_dims
from .embeddings import SigmaEmbedding

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


#: ``norm=`` values: per-frame statistics and attention (local in time), or over all F x T.
NORMS = ("frame", "global")


def _norm(channels: int, groups: int, norm: str) -> nn.GroupNorm:
    if channels % groups:
        raise ValueError(f"GroupNorm: {channels} channels are not divisible into {groups} groups")
    cls = FrameGroupNorm if norm == "frame" else nn.GroupNorm
    return cls(groups, channels, eps=1e-6)


def frame_group_norm(
    x: torch.Tensor, groups: int, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> torch.Tensor:
    """Group normalisation with statistics per frame: over (C/G, F) at every t, not over (C/G, F, T).

    Args:
        x: (B, C, F, T), any memory layout.
        groups: G, dividing C.
        weight, bias: the affine, (C,), or (B, C) for a per-example one (FiLM folded in).
        eps: added to the variance.

    Returns:
        (B, C, F, T) in x's memory layout; float32 where x is of lower precision (as autocast's
        group_norm), so the statistics never round to bf16.
    """
    # Work on a view whose dims are in memory order: (B, F, T, C) for channels-last x, else
    # (B, C, F, T). The sums over F and the broadcasts of the per-(B, C, T) coefficients (and
    # autograd's reductions for them in the backward) then run along memory; on the logical
    # (B, C, F, T) view of a channels-last tensor they are 5-10x slower on the CPU.
    channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    order = (0, 2, 3, 1) if channels_last else (0, 1, 2, 3)
    xv = x.permute(order)
    c_dim, f_dim = order.index(1), order.index(2)
    n_freq, channels = x.shape[2], x.shape[1]

    def per_group(t: torch.Tensor) -> torch.Tensor:  # C -> (G, C/G) at c_dim
        return t.unflatten(c_dim, (groups, channels // groups))

    def affine(p: torch.Tensor) -> torch.Tensor:  # (C,) or (B, C) -> broadcastable to per_group(xv)
        shape = [p.shape[0] if p.ndim == 2 else 1, 1, 1, 1]
        shape[c_dim] = channels
        return per_group(p.reshape(shape))

    # Sum and sum of squares over (C/G, F), at least in float32; var = E[x^2] - E[x]^2 (clamped
    # at 0), as the CPU's channels-last group_norm kernel computes it.
    xs = xv if xv.dtype in (torch.float32, torch.float64) else xv.float()
    s1 = per_group(xs.sum(f_dim, keepdim=True)).sum(c_dim + 1, keepdim=True)  # (.., G, 1) per (B, t)
    # (Not linalg.vecdot(x, x): autocast runs it in bf16.)
    s2 = per_group(xs.square().sum(f_dim, keepdim=True)).sum(c_dim + 1, keepdim=True)
    count = n_freq * (channels // groups)
    mean = s1 / count
    rstd = (s2 / count - mean.square()).clamp_min(0.0).add(eps).rsqrt()
    scale = rstd * affine(weight)  # (.., G, C/G): every channel's coefficient per (B, t)
    offset = affine(bias) - mean * scale
    scale, offset = scale.flatten(c_dim, c_dim + 1), offset.flatten(c_dim, c_dim + 1)
    y = torch.addcmul(offset, xv, scale)  # (x - mean) * rstd * weight + bias, one pass
    return y.permute(tuple(order.index(d) for d in range(4)))


class FrameGroupNorm(nn.GroupNorm):
    """:class:`nn.GroupNorm` with statistics per frame (:func:`frame_group_norm`), so an output frame
    does not depend on the other frames through them; the same parameters and state_dict keys."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, F, T) -> (B, C, F, T)."""
        return frame_group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


def _modulated_norm(
    norm: nn.GroupNorm, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """``norm``'s normalisation of x (B, C, F, T) with a per-example affine (B, C) in place of its own."""
    if isinstance(norm, FrameGroupNorm):
        return frame_group_norm(x, norm.num_groups, weight, bias, norm.eps)
    normed = F.group_norm(x, norm.num_groups, eps=norm.eps)
    return torch.addcmul(append_dims(bias, x.ndim), normed, append_dims(weight, x.ndim))


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """Residual block with FiLM conditioning on the sigma embedding; ``norm`` as :class:`UNet2d`'s."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int, dropout: float, norm: str):
        super().__init__()
        self.norm1 = _norm(in_ch, groups, norm)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = _norm(out_ch, groups, norm)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(out_ch, out_ch, 3, padding=1))  # the block starts as its skip
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(
        self, x: torch.Tensor, emb: torch.Tensor, film: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """x: (B, in, F, T), emb: (B, E); ``film``: ``self.film(emb)`` if the caller has it, (B, 2 out)."""
        h = self.conv1(F.silu(self.norm1(x)))  # (B, out, F, T)
        film = self.film(emb) if film is None else film
        scale, shift = append_dims(film, h.ndim).chunk(2, dim=1)  # 2 x (B, out, 1, 1)
        # FiLM after GroupNorm, norm2(h) * (1 + scale) + shift, with norm2's affine folded into the
        # per-example coefficients: GN(h) * (w (1 + scale)) + (b (1 + scale) + shift), so the full-size
        # tensor is read once by one addcmul instead of by GroupNorm's affine, a mul and an add.
        # (A norm2 swapped for another module, as tests do, is called as a module.)
        gain, norm = 1 + scale, self.norm2
        if type(norm) in (nn.GroupNorm, FrameGroupNorm) and norm.affine:
            gain, shift = gain.flatten(1), shift.flatten(1)  # (B, out)
            weight, bias = norm.weight * gain, torch.addcmul(shift, norm.bias, gain)  # (B, out)
            h = _modulated_norm(norm, h, weight, bias)
        else:
            h = norm(h) * gain + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return torch.add(self.skip(x), h).mul_(_INV_SQRT2)  # (skip(x) + h) / sqrt(2)


class Attention(nn.Module):
    """Multi-head self-attention, residual with 1/sqrt(2).

    ``norm="global"``: over all F*T positions. ``norm="frame"``: over the F positions of each frame
    separately (a batch of B*T sequences), with per-frame GroupNorm statistics, so no output frame
    sees another frame through it; the frequency axis, of fixed size, stays global.
    """

    def __init__(self, channels: int, heads: int, groups: int, norm: str):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention: {channels} channels are not divisible into {heads} heads")
        self.heads = heads
        self.per_frame = norm == "frame"
        self.norm = _norm(channels, groups, norm)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = _zero(nn.Linear(channels, channels))

    def _attend(self, h: torch.Tensor) -> torch.Tensor:
        """(N, L, C) sequences -> (N, L, C): attention over L, then the output projection."""
        n, length, c = h.shape
        # Head dim last with stride 1, so CPU and CUDA pick their fused (flash) kernels.
        q, k, v = self.qkv(h).reshape(n, length, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v)  # (N, heads, L, C/heads)
        return self.proj(h.transpose(1, 2).reshape(n, length, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, F, T) -> (B, C, F, T)."""
        b, c, f, t = x.shape
        h = self.norm(x)
        if self.per_frame:
            h = self._attend(h.permute(0, 3, 2, 1).reshape(b * t, f, c))  # (B*T, F, C)
            h = h.reshape(b, t, f, c).permute(0, 3, 2, 1)
        else:
            h = self._attend(h.flatten(2).transpose(1, 2))  # (B, F*T, C)
            h = h.transpose(1, 2).reshape(b, c, f, t)
        return (x + h) / math.sqrt(2.0)


class Downsample(nn.Module):
    """Halve F and T with a stride-2 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double F and T: nearest-neighbour then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet2d(nn.Module):
    """U-Net F(x, c_noise) for x of shape (B, C, F, T).

    Args:
        in_channels: input channels (the representation's channels plus any conditioning channels).
        out_channels: output channels (the representation's channels).
        channels: channels at the top resolution; level i has ``channels * channel_mult[i]``.
        channel_mult: one multiplier per resolution level; the spatial size halves between levels.
        num_res_blocks: residual blocks per level on the encoder side (the decoder has one more).
        attention: self-attention (between two residual blocks) at the lowest resolution.
        attention_heads: heads of that attention.
        dropout: dropout inside the residual blocks.
        groups: GroupNorm groups (every level's channel count must be divisible by it).
        embedding: ``"fourier"`` or ``"sinusoidal"`` features of c_noise.
        embedding_dim: width of those features; the embedding MLP is 4x as wide (DDPM++: 4 * nf).
        norm: ``"frame"`` (default): local in time. GroupNorm statistics over (C/G, F) per frame,
            attention over the frequency positions of each frame, and T padded by repeating the
            last frame; an output frame then depends only on the input frames within
            :attr:`receptive_field`, so the output does not depend on how long the input is
            (given a start at a multiple of :attr:`multiple`). ``"global"``: statistics over
            (C/G, F, T), attention over all F*T positions, zero padding: every output depends on
            the whole input (checkpoints trained before ``norm`` existed; same parameters).

    Memory layout (performance only; results agree to float rounding): ``channels_last`` runs the
    network on channels-last (NHWC) activations. ``None`` (the default) does so on the CPU, where
    oneDNN's NHWC convolutions are markedly faster than NCHW ones (forward and backward; see
    ``tools/benchmark.py``), and keeps the plain layout elsewhere. Set it on the class or an
    instance to force either layout.
    """

    #: True / False forces the activation layout; None = channels-last on the CPU only.
    channels_last: Optional[bool] = None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: int = 32,
        channel_mult: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 1,
        attention: bool = True,
        attention_heads: int = 4,
        dropout: float = 0.0,
        groups: int = 8,
        embedding: str = "fourier",
        embedding_dim: int = 128,
        norm: str = "global",
    ):
        super().__init__()
        channel_mult = tuple(int(m) for m in channel_mult)
        if not channel_mult or num_res_blocks < 1:
            raise ValueError("channel_mult needs at least one level and num_res_blocks must be >= 1")
        if norm not in NORMS:
            raise ValueError(f"unknown norm '{norm}'; valid: {', '.join(NORMS)}")
        self.norm = norm
        emb_dim = 4 * embedding_dim
        self.levels = len(channel_mult)
        self.num_res_blocks = num_res_blocks
        self.attention = attention
        self.embed = SigmaEmbedding(embedding, embedding_dim, emb_dim)

        def block(i, o):
            return ResBlock(i, o, emb_dim, groups, dropout, norm)

        widths = [channels * m for m in channel_mult]
        self.conv_in = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        # Encoder: a skip is kept after conv_in, after every block and after every Down.
        self.enc, self.downs = nn.ModuleList(), nn.ModuleList()
        skip_widths, ch = [widths[0]], widths[0]
        for level, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(block(ch, width))
                ch = width
                skip_widths.append(ch)
            self.enc.append(blocks)
            if level < self.levels - 1:
                self.downs.append(Downsample(ch))
                skip_widths.append(ch)
        # Middle, at the lowest resolution.
        self.mid1 = block(ch, ch)
        self.mid_attn = Attention(ch, attention_heads, groups, norm) if attention else nn.Identity()
        self.mid2 = block(ch, ch)
        # Decoder, listed from the top level down like the encoder but run bottom-up; every block
        # consumes one skip (concatenated on channels); ups[level - 1] leaves level for level - 1.
        dec = {}
        for level in reversed(range(self.levels)):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                blocks.append(block(ch + skip_widths.pop(), widths[level]))
                ch = widths[level]
            dec[level] = blocks
        self.dec = nn.ModuleList(dec[level] for level in range(self.levels))
        self.ups = nn.ModuleList(Upsample(widths[level]) for level in range(1, self.levels))
        self.norm_out = _norm(ch, groups, norm)
        self.conv_out = _zero(nn.Conv2d(ch, out_channels, 3, padding=1))

    @property
    def multiple(self) -> int:
        """F and T are padded up to a multiple of this (2^(levels-1))."""
        return 2 ** (self.levels - 1)

    @property
    def global_context(self) -> bool:
        """True when every output depends on every input frame (``norm="global"``)."""
        return self.norm == "global"

    @property
    def receptive_field(self) -> Tuple[int, int]:
        """(frequency bins, frames) of the convolutional receptive field through the deepest path.

        1 + sum over the 3x3 convolutions on that path of 2 * (downsampling factor at that conv):
        the width of the input that one output position reads through the convolutions (at most;
        measured through gradients it is reached in time). The window is not centred on the
        output: as the stride-2 grids are anchored at position 0, it extends up to
        ``(rf - 1) // 2 + multiple - 1`` positions to one side, depending on the position modulo
        :attr:`multiple`.

        With ``norm="frame"`` this is the whole dependence in time: an output frame depends on
        no input frame outside it (no global context). In frequency every output also sees all
        bins of the frames it reads, through the per-frame GroupNorm statistics and the
        attention. With ``norm="global"`` every output depends on every input position through
        the GroupNorm statistics and the attention (global context).
        """
        rf = 1 + 2  # conv_in
        for level in range(self.levels):
            factor = 2**level
            rf += 2 * 2 * factor * self.num_res_blocks  # encoder blocks, two 3x3 convs each
            rf += 2 * 2 * factor * (self.num_res_blocks + 1)  # decoder blocks
            if level < self.levels - 1:
                rf += 2 * factor  # Down: stride-2 conv reading the finer level
                rf += 2 * factor  # Up: conv after upsampling back to this level
        rf += 2 * 2 * 2 * 2 ** (self.levels - 1)  # two middle blocks
        rf += 2  # conv_out
        return rf, rf

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, F, T), c_noise: (B,) -> (B, C_out, F, T)."""
        if x.ndim != 4:
            raise ValueError(f"UNet2d expects (B, C, F, T), got shape {tuple(x.shape)}")
        n_freq, n_frames = x.shape[-2:]
        m = self.multiple
        # Round up with floor division (not %): symbolic shapes under torch.compile handle it.
        pad_f, pad_t = (n_freq + m - 1) // m * m - n_freq, (n_frames + m - 1) // m * m - n_frames
        if pad_f:
            x = F.pad(x, (0, 0, 0, pad_f))  # zeros at high frequencies
        if pad_t:
            # norm="frame": the last frame repeated, so the frames near the end see a continuation
            # of the signal rather than a drop to silence (replicate, unlike reflect, works for
            # any T >= 1). norm="global" keeps the zeros it was trained with.
            x = F.pad(x, (0, pad_t, 0, 0), mode="replicate" if self.norm == "frame" else "constant")
        use_cl = self.channels_last if self.channels_last is not None else x.device.type == "cpu"
        if use_cl:
            x = x.contiguous(memory_format=torch.channels_last)  # every layer below keeps NHWC
        emb = F.silu(self.embed(c_noise))  # (B, 4E); SiLU once here, a Linear per block
        # Every block's FiLM Linear in one matrix product instead of one tiny product per block
        # (the same weights, concatenated in the order the blocks run).
        order = (
            [blk for level in range(self.levels) for blk in self.enc[level]]
            + [self.mid1, self.mid2]
            + [blk for level in reversed(range(self.levels)) for blk in self.dec[level]]
        )
        weight, bias = torch.cat([b.film.weight for b in order]), torch.cat([b.film.bias for b in order])
        films = iter(F.linear(emb, weight, bias).split([b.film.out_features for b in order], dim=1))

        h = self.conv_in(x)
        skips = [h]
        for level in range(self.levels):
            for blk in self.enc[level]:
                h = blk(h, emb, next(films))
                skips.append(h)
            if level < self.levels - 1:
                h = self.downs[level](h)
                skips.append(h)
        h = self.mid1(h, emb, next(films))
        h = self.mid2(self.mid_attn(h), emb, next(films))
        for level in reversed(range(self.levels)):
            for blk in self.dec[level]:
                h = blk(torch.cat([h, skips.pop()], dim=1), emb, next(films))
            if level > 0:
                h = self.ups[level - 1](h)
        h = self.conv_out(F.silu(self.norm_out(h)))
        return h[..., :n_freq, :n_frames]  # (B, C_out, F, T)
