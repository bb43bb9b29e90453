"""Score networks: shapes, sigma broadcasting, preconditioning identities, presets (tiny, CPU)."""

from __future__ import annotations

import io
import re

import pytest
import torch

from scoreaudio.config import compose, config_dir
from scoreaudio.errors import ConfigError
from scoreaudio.info import describe_model
from scoreaudio.nn import ScoreModel, build_score_model, count_parameters
from scoreaudio.nn.build import BACKBONES
from scoreaudio.nn.embeddings import FourierFeatures, SigmaEmbedding, SinusoidalFeatures
from scoreaudio.nn.mlp import ScoreMLP
from scoreaudio.nn.unet2d import UNet2d
from scoreaudio.nn.wavenet import WaveNet
from scoreaudio.utils.tensor import append_dims

CHANNELS = {"wavenet": 1, "unet2d": 2, "mlp": 2}  # x's channels (waveform, re/im STFT, toy dim)

#: preset -> (min, max) parameters.
PRESET_RANGES = {
    "wavenet_tiny": (20_000, 200_000),
    "wavenet_small": (1_000_000, 3_000_000),
    "wavenet_base": (10_000_000, 40_000_000),
    "unet2d_tiny": (20_000, 200_000),
    "unet2d_small": (1_000_000, 3_000_000),
    "unet2d_base": (30_000_000, 65_000_000),
}


@pytest.fixture(scope="module")
def recipes(tmp_path_factory):
    """A recipe file per model preset: ``defaults: [{model: NAME}]``."""
    root = tmp_path_factory.mktemp("recipes")
    paths = {}
    for path in (config_dir() / "model").glob("*.yaml"):
        paths[path.stem] = root / f"{path.stem}.yaml"
        paths[path.stem].write_text(f"defaults:\n  - model: {path.stem}\n")
    return paths


def build(recipes, preset, cond_channels=0, overrides=()):
    cfg = compose(recipes[preset], overrides)
    return build_score_model(cfg.model, CHANNELS[cfg.model.backbone], cond_channels), cfg


def perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give the zero-initialised layers (output projections) small random weights, so the network's
    output depends on its inputs and 'changes the output' tests can fail."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1 / p[0].numel() ** 0.5)
    return model.eval()


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [16000, 16001, 12345])
def test_wavenet_shape_any_length(recipes, length):
    model, _ = build(recipes, "wavenet_tiny")
    x = randn(2, 1, length)
    with torch.no_grad():
        assert model(x, torch.tensor([0.1, 1.0])).shape == x.shape


@pytest.mark.parametrize("size", [(256, 101), (256, 63), (129, 37)])
def test_unet2d_shape_any_size(recipes, size):
    model, _ = build(recipes, "unet2d_tiny")
    x = randn(2, 2, *size)
    with torch.no_grad():
        assert model(x, torch.tensor([0.1, 1.0])).shape == x.shape


def test_sigma_may_be_a_float_but_not_a_wrong_shape(recipes):
    model, _ = build(recipes, "wavenet_tiny")
    x = randn(2, 1, 100)
    with torch.no_grad():
        assert torch.equal(model(x, 0.5), model(x, torch.tensor([0.5, 0.5])))
        with pytest.raises(ValueError, match="sigma"):
            model(x, torch.ones(3))


# ---------------------------------------------------------------------------------------------
# Sigma handling
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset,shape", [("wavenet_tiny", (3, 1, 700)), ("unet2d_tiny", (3, 2, 32, 20))])
@pytest.mark.parametrize("parameterisation", ["edm", "ncsnv2"])
def test_per_example_sigma_matches_running_alone(recipes, preset, shape, parameterisation):
    model, _ = build(recipes, preset, overrides=[f"model.parameterisation={parameterisation}"])
    perturb(model)
    x, sigma = randn(*shape), torch.tensor([0.01, 0.3, 20.0])
    with torch.no_grad():
        batched = model(x, sigma)
        alone = torch.cat([model(x[i : i + 1], sigma[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("preset,shape", [("wavenet_tiny", (2, 1, 500)), ("unet2d_tiny", (2, 2, 32, 20))])
def test_changing_sigma_changes_the_network_output(recipes, preset, shape):
    model, _ = build(recipes, preset)
    x = randn(*shape)
    with torch.no_grad():
        assert not model.backbone(x, torch.zeros(2)).any()  # zero-initialised output layer
        perturb(model)
        f1 = model.backbone(x, torch.full((2,), -1.0))
        f2 = model.backbone(x, torch.full((2,), 0.5))
    assert (f1 - f2).abs().max() > 1e-3 * f1.abs().max()


@pytest.mark.parametrize("preset,shape", [("wavenet_tiny", (4, 1, 300)), ("unet2d_tiny", (4, 2, 16, 12))])
@pytest.mark.parametrize("parameterisation", ["edm", "ncsnv2"])
def test_gradients_finite_from_small_to_large_sigma(recipes, preset, shape, parameterisation):
    model, _ = build(recipes, preset, overrides=[f"model.parameterisation={parameterisation}"])
    perturb(model).train()
    sigma = torch.tensor([1e-3, 1e-1, 1.0, 1e2])
    for method in (model, model.denoise):
        model.zero_grad()
        x = (randn(*shape) * append_dims(sigma, len(shape))).requires_grad_(True)
        out = method(x, sigma)
        assert torch.isfinite(out).all()
        out.square().mean().backward()
        assert torch.isfinite(x.grad).all()
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("preset,shape", [("wavenet_tiny", (4, 1, 300)), ("unet2d_tiny", (4, 2, 16, 12))])
@pytest.mark.parametrize("parameterisation", ["edm", "ncsnv2"])
def test_denoise_is_tweedie(recipes, preset, shape, parameterisation):
    model, _ = build(recipes, preset, overrides=[f"model.parameterisation={parameterisation}"])
    perturb(model)
    sigma = torch.tensor([1e-3, 1e-1, 1.0, 1e2])
    x = randn(*shape) * append_dims(sigma, len(shape))
    with torch.no_grad():
        expected = x + append_dims(sigma, len(shape)) ** 2 * model(x, sigma)
        torch.testing.assert_close(model.denoise(x, sigma), expected, rtol=1e-4, atol=1e-4)


def test_edm_with_zero_network_is_the_gaussian_optimum(recipes):
    """F = 0 at init: D = c_skip x, the exact denoiser of N(0, sigma_data^2) data (EDM Eq. 7)."""
    model, _ = build(recipes, "unet2d_tiny")
    model.sigma_data.fill_(0.3)
    x, sigma = randn(2, 2, 8, 8), torch.tensor([0.1, 2.0])
    with torch.no_grad():
        s = append_dims(sigma, 4)
        torch.testing.assert_close(model(x, sigma), -x / (s**2 + 0.09))


# ---------------------------------------------------------------------------------------------
# Conditioning, determinism, state
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset,shape", [("wavenet_tiny", (2, 1, 400)), ("unet2d_tiny", (2, 2, 16, 12))])
def test_conditioning_changes_the_output(recipes, preset, shape):
    channels = shape[1]
    model, _ = build(recipes, preset, cond_channels=channels)
    perturb(model)
    x, sigma = randn(*shape), torch.tensor([0.5, 0.5])
    with torch.no_grad():
        a = model(x, sigma, cond=randn(*shape, seed=1))
        b = model(x, sigma, cond=randn(*shape, seed=2))
        assert (a - b).abs().max() > 1e-4
        with pytest.raises(ValueError, match="conditional"):
            model(x, sigma)
        with pytest.raises(ValueError, match="cond must have shape"):
            model(x, sigma, cond=randn(2, channels + 1, *shape[2:]))
    unconditional, _ = build(recipes, preset)
    with pytest.raises(ValueError, match="unconditional"):
        unconditional(x, sigma, cond=x)


def test_eval_mode_is_deterministic_with_dropout(recipes):
    model, _ = build(recipes, "unet2d_tiny", overrides=["model.unet2d.dropout=0.5"])
    perturb(model)
    x, sigma = randn(2, 2, 16, 12), torch.tensor([0.5, 0.5])
    with torch.no_grad():
        torch.testing.assert_close(model(x, sigma), model(x, sigma), rtol=0, atol=0)
        model.train()
        assert not torch.equal(model(x, sigma), model(x, sigma))  # the dropout is live


@pytest.mark.parametrize("preset,shape", [("wavenet_tiny", (2, 1, 300)), ("unet2d_tiny", (2, 2, 16, 12))])
def test_state_dict_round_trip(recipes, preset, shape):
    model, _ = build(recipes, preset)
    perturb(model, seed=3)
    model.sigma_data.fill_(0.123)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    other, _ = build(recipes, preset)
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer, weights_only=True))
    other.eval()
    x, sigma = randn(*shape), torch.tensor([0.05, 3.0])
    with torch.no_grad():
        assert torch.equal(model(x, sigma), other(x, sigma))
    assert float(other.sigma_data) == pytest.approx(0.123)


def test_autocast_bf16_keeps_a_float32_finite_score(recipes):
    model, _ = build(recipes, "unet2d_tiny")
    perturb(model)
    x, sigma = randn(2, 2, 16, 12), torch.tensor([0.05, 3.0])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, sigma)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    with torch.no_grad():
        torch.testing.assert_close(out, model(x, sigma), rtol=0.05, atol=0.05)


# ---------------------------------------------------------------------------------------------
# Builder and presets
# ---------------------------------------------------------------------------------------------
def stated_parameters(preset: str) -> int:
    text = (config_dir() / "model" / f"{preset}.yaml").read_text()
    match = re.search(r"([\d,]+) parameters", text)
    assert match, f"{preset}.yaml should state its parameter count"
    return int(match.group(1).replace(",", ""))


@pytest.mark.parametrize("preset", sorted(PRESET_RANGES))
def test_preset_parameter_counts(recipes, preset):
    model, cfg = build(recipes, preset)
    assert cfg.model.preset == preset
    n = count_parameters(model)
    low, high = PRESET_RANGES[preset]
    assert low <= n <= high
    assert n == stated_parameters(preset)  # the YAML comment is kept honest


def test_mlp_preset(recipes):
    model, _ = build(recipes, "mlp")
    assert isinstance(model.backbone, ScoreMLP)
    assert count_parameters(model) == stated_parameters("mlp")
    x, sigma = randn(5, 2), torch.full((5,), 0.5)
    with torch.no_grad():
        assert model(x, sigma).shape == x.shape
        torch.testing.assert_close(model.denoise(x, sigma), x + 0.25 * model(x, sigma))


def test_mlp_needs_ncsnv2(recipes):
    cfg = compose(recipes["mlp"], ["model.parameterisation=edm"])
    with pytest.raises(ConfigError, match="ncsnv2"):
        build_score_model(cfg.model, 2)


def test_unknown_backbone_lists_valid_names():
    cfg = compose()
    cfg.model.backbone = "unet3d"  # past compose's choice check, as a hand-made config would be
    with pytest.raises(ValueError) as err:
        build_score_model(cfg.model, 2)
    for name in BACKBONES:
        assert name in str(err.value)


def test_describe_model(recipes):
    model, cfg = build(recipes, "wavenet_tiny")
    info = describe_model(model, cfg.model, 1, 16000, 128)
    assert info["parameters"] == count_parameters(model)
    assert info["receptive_field_samples"] == model.receptive_field
    assert info["receptive_field_ms"] == pytest.approx(1000 * model.receptive_field / 16000)
    model, cfg = build(recipes, "unet2d_tiny", cond_channels=2)
    info = describe_model(model, cfg.model, 2, 16000, 128)
    assert info["receptive_field_samples"] == model.receptive_field[1] * 128
    assert info["global_context"] and "2 + 2 cond" in info["input_shape"]  # norm=global, the default


# ---------------------------------------------------------------------------------------------
# Receptive fields, measured through gradients
# ---------------------------------------------------------------------------------------------
def test_wavenet_receptive_field_is_exact():
    net = perturb(
        WaveNet(
            1, 1, residual_channels=8, residual_layers=6, dilation_cycle=3, kernel_size=3, embedding_dim=8
        )
    )
    assert net.receptive_field == 1 + 2 * (1 + 2 + 4) * 2
    x = randn(1, 1, 101).requires_grad_(True)
    net(x, torch.zeros(1))[0, 0, 50].backward()
    support = x.grad[0, 0].nonzero().squeeze(1)
    assert support.max() - support.min() + 1 == net.receptive_field


def test_unet2d_receptive_field_bounds_the_convolutions():
    net = perturb(UNet2d(1, 1, channels=8, channel_mult=(1, 1), attention=False, groups=4, embedding_dim=8))
    for module in list(net.modules()):  # GroupNorm statistics see everything: take them out
        for name, child in module.named_children():
            if isinstance(child, torch.nn.GroupNorm):
                setattr(module, name, torch.nn.Identity())
    x = randn(1, 1, 64, 64).requires_grad_(True)
    net(x, torch.zeros(1))[0, 0, 32, 32].backward()
    rows, cols = x.grad[0, 0].abs().sum(1).nonzero(), x.grad[0, 0].abs().sum(0).nonzero()
    assert rows.max() - rows.min() + 1 <= net.receptive_field[0]
    assert cols.max() - cols.min() + 1 <= net.receptive_field[1]
    assert rows.max() - rows.min() + 1 >= net.receptive_field[0] - 4  # and is not loose


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("features", [FourierFeatures(16), SinusoidalFeatures(16)])
def test_features_shape_and_range(features):
    out = features(torch.linspace(-2, 2, 5))
    assert out.shape == (5, 16) and out.abs().max() <= 1.0


def test_fourier_features_are_fixed_and_saved():
    a, b = FourierFeatures(8), FourierFeatures(8)
    assert torch.equal(a.freqs, b.freqs) and "freqs" in a.state_dict()
    assert not any(p.requires_grad for p in a.parameters())


def test_sigma_embedding_rejects_unknown_kind():
    with pytest.raises(ValueError, match="fourier"):
        SigmaEmbedding("learned", 8, 16)
    assert SigmaEmbedding("sinusoidal", 8, 16)(torch.zeros(3)).shape == (3, 16)


def test_score_model_rejects_unknown_parameterisation():
    with pytest.raises(ValueError, match="edm"):
        ScoreModel(WaveNet(residual_channels=8, residual_layers=1), parameterisation="vp")


def test_cond_skip_blends_the_state_and_the_noisy_input_by_edm_weights():
    """D = c_skip x + (1 - c_skip) y + c_out F: with F = 0 it is the blend, and D = x + sigma^2 s."""
    from scoreaudio.nn.score_model import ScoreModel

    class Zero(torch.nn.Module):
        def forward(self, x_in, c_noise):
            return torch.zeros_like(x_in[:, :1])

    sd = 0.2
    model = ScoreModel(Zero(), sigma_data=sd, cond_channels=1, cond_skip=True)
    x, y = torch.randn(3, 1, 100), torch.randn(3, 1, 100)
    sigma = torch.tensor([0.01, 0.2, 50.0])
    c_skip = (sd**2 / (sigma**2 + sd**2)).reshape(-1, 1, 1)
    d = model.denoise(x, sigma, y)
    assert torch.allclose(d, c_skip * x + (1 - c_skip) * y, atol=1e-6)
    assert torch.allclose(x + sigma.reshape(-1, 1, 1) ** 2 * model(x, sigma, y), d, atol=1e-4)
    assert torch.allclose(d[2], y[2], atol=1e-4)  # at sigma_max the estimate starts at the noisy input
    with pytest.raises(ValueError, match="cond_skip"):
        model(x, sigma, torch.randn(3, 2, 100))
