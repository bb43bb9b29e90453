"""Build the score network named by ``model.backbone``."""

from __future__ import annotations

from typing import Any, Callable, Dict

from torch import nn

from ..errors import ConfigError
from .score_model import ScoreModel
from .stft_unet import STFTUNet
from .unet2d import UNet2d
from .wavenet import WaveNet

#: Used when ``model.sigma_data`` is None (to be measured from data): EDM's image default. The
#: trainer overwrites the buffer with ``model.sigma_data.fill_(measured)`` before training starts.
DEFAULT_SIGMA_DATA = 0.5


def _wavenet(model_cfg: Any, in_channels: int, out_channels: int) -> nn.Module:
    c = model_cfg.wavenet
    return WaveNet(
        in_channels,
        out_channels,
        residual_channels=c.residual_channels,
        residual_layers=c.residual_layers,
        dilation_cycle=c.dilation_cycle,
        kernel_size=c.kernel_size,
        embedding=model_cfg.embedding,
        embedding_dim=model_cfg.embedding_dim,
    )


def _unet2d_kwargs(model_cfg: Any) -> Dict[str, Any]:
    """UNet2d settings from ``model.unet2d`` (shared by unet2d and stft_unet, so presets reuse them)."""
    c = model_cfg.unet2d
    return {
        "channels": c.channels,
        "channel_mult": tuple(c.channel_mult),
        "num_res_blocks": c.num_res_blocks,
        "attention": c.attention,
        "attention_heads": c.attention_heads,
        "dropout": c.dropout,
        "groups": c.groups,
        "norm": c.norm,
        "embedding": model_cfg.embedding,
        "embedding_dim": model_cfg.embedding_dim,
    }


def _unet2d(model_cfg: Any, in_channels: int, out_channels: int) -> nn.Module:
    return UNet2d(in_channels, out_channels, **_unet2d_kwargs(model_cfg))


def _stft_unet(model_cfg: Any, in_channels: int, out_channels: int) -> nn.Module:
    c = model_cfg.stft_unet
    return STFTUNet(
        in_channels,
        out_channels,
        n_fft=c.n_fft,
        hop_length=c.hop_length,
        alpha=c.alpha,
        beta=c.beta,
        output=c.output,
        **_unet2d_kwargs(model_cfg),
    )


def _mlp(model_cfg: Any, in_channels: int, out_channels: int) -> nn.Module:
    from .mlp import ScoreMLP  # toy data only; imported when asked for

    return ScoreMLP(
        in_channels,
        hidden=model_cfg.mlp.hidden,
        layers=model_cfg.mlp.layers,
        sigma_data=_sigma_data(model_cfg),
    )


def _sigma_data(model_cfg: Any) -> float:
    return float(model_cfg.sigma_data) if model_cfg.sigma_data is not None else DEFAULT_SIGMA_DATA


#: model.backbone -> constructor(model_cfg, in_channels incl. cond, out_channels) of the backbone.
BACKBONES: Dict[str, Callable[[Any, int, int], nn.Module]] = {
    "unet2d": _unet2d,
    "wavenet": _wavenet,
    "mlp": _mlp,
    "stft_unet": _stft_unet,
}

#: model.backbone -> the representation.kind it takes (the toy MLP has no audio representation).
BACKBONE_REPRESENTATIONS: Dict[str, str] = {"unet2d": "stft", "wavenet": "waveform", "stft_unet": "waveform"}


def check_representation(model_cfg: Any, representation_kind: str) -> None:
    """Fail fast, before data or compute, when the backbone cannot take the representation's state.

    Raises:
        ConfigError: e.g. ``stft_unet`` (which STFTs internally) on ``representation.kind=stft``.
    """
    name = model_cfg.backbone
    wanted = BACKBONE_REPRESENTATIONS.get(name)
    if wanted is not None and representation_kind != wanted:
        raise ConfigError(
            f"model.backbone={name} takes representation.kind={wanted}, got "
            f"representation.kind={representation_kind}; set representation={wanted}"
        )


def build_score_model(model_cfg: Any, in_channels: int, cond_channels: int = 0) -> ScoreModel:
    """The score model described by ``model_cfg`` (the ``model:`` section of a config).

    Args:
        model_cfg: a :class:`~scoreaudio.config.ModelConfig`-shaped config.
        in_channels: channels of x (the representation's; for the toy MLP, the data dimension).
        cond_channels: channels of ``cond`` (conditional denoising); 0 for an unconditional model.

    Raises:
        ConfigError: unknown backbone (naming the valid ones), or a setting the backbone cannot do.
    """
    name = model_cfg.backbone
    if name not in BACKBONES:
        raise ConfigError(f"unknown model.backbone '{name}'; valid: {', '.join(BACKBONES)}")
    sigma_data = _sigma_data(model_cfg)
    if name == "mlp":
        # ScoreMLP returns the score itself (its output is already divided by sigma, NCSNv2-style).
        if model_cfg.parameterisation != "ncsnv2":
            raise ConfigError(
                "the mlp backbone returns F(x, sigma)/sigma itself: set "
                "model.parameterisation=ncsnv2 (configs/model/mlp.yaml does)"
            )
        if cond_channels:
            raise ConfigError("the mlp backbone takes no conditioning (cond_channels must be 0)")
        return ScoreModel(
            _mlp(model_cfg, in_channels, in_channels), parameterisation="score", sigma_data=sigma_data
        )
    backbone = BACKBONES[name](model_cfg, in_channels + cond_channels, in_channels)
    cond_skip = bool(model_cfg.get("cond_skip", False)) and cond_channels > 0
    if cond_skip and cond_channels != in_channels:
        raise ConfigError(
            f"model.cond_skip needs the conditioning in the state's space ({in_channels} channels), "
            f"got {cond_channels}"
        )
    model = ScoreModel(
        backbone,
        parameterisation=model_cfg.parameterisation,
        sigma_data=sigma_data,
        cond_channels=cond_channels,
        cond_skip=cond_skip,
    )
    if model_cfg.get("energy", False):
        from .energy import EnergyFromDenoiser

        return EnergyFromDenoiser(model)  # type: ignore[return-value]
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; buffers are not counted."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def is_length_independent(model_cfg) -> bool:
    """Whether a network's output at a frame depends only on the input in its receptive field
    (tests/nn/test_locality.py): the WaveNet, and U-Nets with per-frame normalisation and attention."""
    if model_cfg.backbone == "wavenet":
        return True
    if model_cfg.backbone in ("unet2d", "stft_unet"):
        return model_cfg.unet2d.get("norm", "global") == "frame"
    return False
