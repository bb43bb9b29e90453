"""The training step's mathematics and schedules: EDM weighting, sigma distributions, LR, EMA length."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from scoreaudio.config import compose
from scoreaudio.losses import dsm_loss
from scoreaudio.nn.score_model import ScoreModel
from scoreaudio.noise import NoiseLevels, sample_sigmas_mixture, sample_training_sigmas
from scoreaudio.train_step import (
    NonFiniteStep,
    compute_loss,
    ema_half_life,
    loss_weight,
    lr_at,
    train_step,
    weighting_for,
)
from scoreaudio.utils.ema import EMA


class Affine(torch.nn.Module):
    """F(x_in, c_noise) = a * x_in + b: a backbone whose raw output is known in closed form."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.3))
        self.b = torch.nn.Parameter(torch.tensor(-0.1))

    def forward(self, x, c_noise):
        return self.a * x + self.b


def _edm_f_target(x0, x, sigma, sd):
    """EDM's target for the raw output: (x0 - c_skip x) / c_out (Karras et al. 2022, Eq. (8))."""
    s = sigma.view(-1, 1, 1)
    c_skip = sd**2 / (s**2 + sd**2)
    c_out = s * sd / (s**2 + sd**2).sqrt()
    return (x0 - c_skip * x) / c_out


@pytest.mark.parametrize("sigma_value", [0.002, 0.02, 0.07, 0.5, 5.0, 40.0])
def test_edm_weighting_puts_unit_weight_on_the_raw_output(sigma_value):
    torch.manual_seed(0)
    sd = 0.0625  # exact in float32, like the buffer that stores it
    model = ScoreModel(Affine(), parameterisation="edm", sigma_data=sd)
    x0, z = sd * torch.randn(3, 1, 64, dtype=torch.float64), torch.randn(3, 1, 64, dtype=torch.float64)
    model = model.double()
    sigma = torch.full((3,), sigma_value, dtype=torch.float64)
    cfg = OmegaConf.create({"loss": {"objective": "dsm"}})
    loss = compute_loss(model, x0, sigma, None, z, cfg, weighting="edm", sigma_data=sd)
    x = x0 + sigma.view(-1, 1, 1) * z
    c_in = 1 / (sigma.view(-1, 1, 1) ** 2 + sd**2).sqrt()
    f = model.backbone(c_in * x, None)
    expected = 0.5 * (f - _edm_f_target(x0, x, sigma, sd)).square().flatten(1).mean(1)
    torch.testing.assert_close(loss, expected, rtol=1e-9, atol=1e-12)
    # and NCSN's sigma^2 weighting is the unweighted DSM loss, whose weight on F is sd^2/(sigma^2+sd^2)
    plain = compute_loss(model, x0, sigma, None, z, cfg, weighting="sigma2", sigma_data=sd)
    torch.testing.assert_close(plain, dsm_loss(model, x0, sigma, noise=z))
    torch.testing.assert_close(plain, expected * sd**2 / (sigma_value**2 + sd**2), rtol=1e-9, atol=1e-12)


def test_weighting_auto_follows_the_parameterisation():
    cfg = OmegaConf.create({"loss": {"weighting": "auto"}})
    assert weighting_for(cfg, "edm") == "edm" and weighting_for(cfg, "ncsnv2") == "sigma2"
    assert weighting_for(OmegaConf.create({"loss": {"weighting": "sigma2"}}), "edm") == "sigma2"
    torch.testing.assert_close(loss_weight("sigma2", torch.tensor([0.1, 3.0]), 0.5), torch.ones(2))
    with pytest.raises(ValueError, match="unknown loss weighting"):
        loss_weight("uniform", torch.ones(1), 1.0)


def test_mixture_puts_the_asked_share_in_the_denoising_band():
    g = torch.Generator().manual_seed(0)
    s = sample_sigmas_mixture(40000, math.log(0.05), 1.2, (0.002, 0.1), 0.5, 0.002, 40.0, generator=g)
    in_band = ((s >= 0.002) & (s <= 0.1)).float().mean()
    # half the draws are in the band by construction, plus the log-normal's own mass there:
    # P(ln s < ln 0.1) for N(ln 0.05, 1.2^2) = Phi(ln 2 / 1.2) = 0.718 (its mass below 0.002 is clamped in)
    expected = 0.5 + 0.5 * 0.5 * (1 + math.erf(math.log(2) / 1.2 / math.sqrt(2)))
    assert abs(float(in_band) - expected) < 0.01
    assert float(s.min()) >= 0.002 and float(s.max()) <= 40.0


def test_training_sigmas_are_relative_to_sigma_data_and_reject_unknown_names():
    g = torch.Generator().manual_seed(1)
    s = sample_training_sigmas(
        "log_normal",
        50000,
        sigma_min=1e-6,
        sigma_max=1e6,
        sigma_data=0.08,
        log_normal_mean=-0.5,
        log_normal_std=1.2,
        generator=g,
    )
    assert abs(float(s.log().mean()) - (math.log(0.08) - 0.5)) < 0.02
    assert abs(float(s.log().std()) - 1.2) < 0.02
    with pytest.raises(ValueError, match="unknown train_distribution 'gamma'"):
        sample_training_sigmas("gamma", 2, sigma_min=0.1, sigma_max=1.0, sigma_data=0.5)
    with pytest.raises(ValueError, match="needs the ladder"):
        sample_training_sigmas("discrete", 2, sigma_min=0.1, sigma_max=1.0, sigma_data=0.5)


def _train_cfg(**kw):
    base = {
        "lr": 1e-3,
        "warmup_steps": 10,
        "steps": 110,
        "lr_schedule": "cosine",
        "lr_min_ratio": 0.1,
        "lr_ref_steps": 20,
        "ema_half_life": None,
        "ema_fraction": 0.1,
    }
    return OmegaConf.create({**base, **kw})


def test_lr_schedules_warm_up_then_decay():
    c = _train_cfg()
    assert lr_at(0, c) == pytest.approx(1e-4) and lr_at(9, c) == pytest.approx(1e-3)
    assert lr_at(59, c) == pytest.approx(1e-4 + 0.9e-3 * 0.5)  # half-way: the cosine's mid point
    assert lr_at(109, c) == pytest.approx(1e-4)  # the floor at the last step
    lrs = [lr_at(k, c) for k in range(9, 110)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    inv = _train_cfg(lr_schedule="inv_sqrt")
    assert lr_at(19, inv) == pytest.approx(1e-3) and lr_at(79, inv) == pytest.approx(1e-3 / 2)
    const = _train_cfg(lr_schedule="constant")
    assert lr_at(100, const) == pytest.approx(1e-3)


def test_ema_half_life_is_a_share_of_the_run_unless_given():
    assert ema_half_life(_train_cfg()) == pytest.approx(11.0)
    assert ema_half_life(_train_cfg(steps=10000)) == pytest.approx(1000.0)
    assert ema_half_life(_train_cfg(ema_half_life=7)) == 7.0


def _step_setup(tmp_path):
    cfg = compose(
        "quickstart",
        ["representation=stft", "model=unet2d_tiny", "train.batch_size=2", "data.segment_seconds=0.25"],
    )
    from scoreaudio.audio.representation import build_representation
    from scoreaudio.nn.build import build_score_model

    rep = build_representation(cfg.representation)
    torch.manual_seed(0)
    model = build_score_model(cfg.model, rep.channels)
    model.sigma_data.fill_(0.08)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ema = EMA(model, 5.0)
    levels = NoiseLevels(sigma_min=0.002, sigma_max=30.0, num_levels=100, sigma_data=0.08)
    wav = 0.1 * torch.randn(2, 1, 4000)
    return cfg, rep, model, opt, ema, levels, wav


def test_non_finite_gradient_is_refused_and_leaves_the_weights(tmp_path):
    cfg, rep, model, opt, ema, levels, wav = _step_setup(tmp_path)
    before = [p.detach().clone() for p in model.parameters()]
    hook = model.backbone.conv_in.weight.register_hook(lambda g: g * float("nan"))
    with pytest.raises(NonFiniteStep, match="non-finite gradient"):
        train_step(
            model=model,
            train_model=model,
            optimizer=opt,
            ema=ema,
            batches=iter([{"clean": wav}]),
            representation=rep,
            sigmas=levels,
            cfg=cfg,
            step=0,
            device=torch.device("cpu"),
        )
    hook.remove()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    result = train_step(
        model=model,
        train_model=model,
        optimizer=opt,
        ema=ema,
        batches=iter([{"clean": wav}]),
        representation=rep,
        sigmas=levels,
        cfg=cfg,
        step=0,
        device=torch.device("cpu"),
    )
    assert result.losses.shape == (2,) and torch.isfinite(result.grad_norm)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_predictive_draws_see_pure_noise_and_regress_on_the_clean_signal():
    """At sigma_max the conditional training state is sigma_max z (as at inference), and the DSM
    loss equals the regression |D - x0|^2 / (2 sigma^2) per entry."""
    from scoreaudio.losses import dsm_loss
    from scoreaudio.train_step import predictive_noise

    x0 = torch.randn(3, 1, 64)
    sigma = torch.tensor([3.0, 0.05, 3.0])
    z = torch.randn(3, 1, 64)
    noise = predictive_noise(x0, sigma, z, 3.0)
    state = x0 + sigma.reshape(-1, 1, 1) * noise
    assert torch.allclose(state[0], 3.0 * z[0], atol=1e-6) and torch.equal(noise[1], z[1])

    class Denoiser(torch.nn.Module):  # D(x) = 0.5 x: a score (D - x) / sigma^2
        def forward(self, x, s):
            return (0.5 * x - x) / s.reshape(-1, 1, 1) ** 2

    loss = dsm_loss(Denoiser(), x0, sigma, noise=noise)
    want = 0.5 * ((0.5 * state - x0) / sigma.reshape(-1, 1, 1)).square().mean(dim=(1, 2))
    assert torch.allclose(loss, want, rtol=1e-5)


def test_spectral_term_lands_on_the_one_call_draws_only():
    """loss.predictive_spectral_weight adds w x compressed_spectral_loss(D, x0) at sigma_max and
    nothing elsewhere: the refinement band keeps plain DSM (a consistent score)."""
    from scoreaudio.losses import compressed_spectral_loss

    class Denoiser(torch.nn.Module):  # D(x) = 0.5 x, returned as its score
        def forward(self, x, s):
            return (0.5 * x - x) / s.reshape(-1, 1, 1) ** 2

    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 1, 2048, generator=g) * 0.1
    z = torch.randn(3, 1, 2048, generator=g)
    sigma = torch.tensor([3.0, 0.05, 3.0])
    cfg = compose(None, [])
    plain = compute_loss(Denoiser(), x0, sigma, None, z, cfg, weighting="sigma2", sigma_max=3.0)
    cfg.loss.predictive_spectral_weight = 0.5
    with_spec = compute_loss(Denoiser(), x0, sigma, None, z, cfg, weighting="sigma2", sigma_max=3.0)
    state = x0 + sigma.reshape(-1, 1, 1) * z
    spec = compressed_spectral_loss(0.5 * state, x0)
    torch.testing.assert_close(
        with_spec - plain,
        torch.stack([0.5 * spec[0], torch.tensor(0.0), 0.5 * spec[2]]),
        rtol=1e-4,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="sigma_max"):
        compute_loss(Denoiser(), x0, sigma, None, z, cfg)
