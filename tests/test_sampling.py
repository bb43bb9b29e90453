"""Samplers with exact Gaussian scores: moments, determinism, shapes, budgets and bad input."""

from __future__ import annotations

import pytest
import torch

from scoreaudio.nn.energy import EnergyScoreModel
from scoreaudio.sampling import (
    SAMPLERS,
    annealed_langevin,
    get_sampler,
    heun,
    langevin,
    pc_sampler,
    sampler_ladder,
)

MU = torch.tensor([1.5, -0.5])
STD = torch.tensor([0.5, 2.0])


def gaussian_score(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact score of N(MU, diag(STD^2)) perturbed by sigma, for x of shape (B, 2)."""
    assert sigma.shape == (x.shape[0],)
    var = STD.to(x) ** 2 + sigma[:, None] ** 2
    return -(x - MU.to(x)) / var


def _start(n: int, sigma_max: float, g: torch.Generator) -> torch.Tensor:
    """Exact samples of p_{sigma_max}, so that only the sampler's error is measured."""
    return MU + (STD**2 + sigma_max**2).sqrt() * torch.randn(n, 2, generator=g)


@pytest.mark.parametrize("name,nfe", [("ald", 301), ("pc", 201), ("heun", 41)])
def test_samplers_reproduce_gaussian_moments(name, nfe):
    sigma_min, sigma_max = 0.01, 20.0
    plan = sampler_ladder(name, nfe, sigma_min, sigma_max)
    g = torch.Generator().manual_seed(0)
    x_init = _start(20000, sigma_max, g)
    with torch.inference_mode():
        x = get_sampler(name)(gaussian_score, x_init, plan.sigmas, generator=g, **plan.kwargs)
    assert x.shape == x_init.shape and torch.isfinite(x).all()
    assert torch.allclose(x.mean(0), MU, atol=0.06), x.mean(0)
    # ALD with the NCSNv2 eps rule leaves every level's variance a few % above target (the rule's
    # ratio is > 1, see noise.langevin_eps) and the data-scale spread freezes once sigma << STD.
    rtol = 0.12 if name == "ald" else 0.05
    assert torch.allclose(x.std(0), STD, rtol=rtol), x.std(0)


def test_one_dimensional_gaussian_with_annealed_langevin():
    g = torch.Generator().manual_seed(1)
    sigmas = torch.tensor([10.0, 5.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    x_init = 2.0 + (0.3**2 + 100.0) ** 0.5 * torch.randn(20000, 1, 1, generator=g)  # (B, C, T) with T = 1

    def score(x, s):
        return -(x - 2.0) / (0.09 + s[:, None, None] ** 2)

    x = annealed_langevin(score, x_init, sigmas, n_steps_each=30, eps=0.02, generator=g)
    assert float(x.mean()) == pytest.approx(2.0, abs=0.02)
    assert float(x.std()) == pytest.approx(0.3, rel=0.05)


def test_plain_langevin_at_fixed_sigma():
    g = torch.Generator().manual_seed(2)
    x = langevin(gaussian_score, torch.zeros(20000, 2), 0.0, n_steps=1000, step_size=0.05, generator=g)
    assert torch.allclose(x.mean(0), MU, atol=0.05)
    # stationary variance of the discretised chain: var / (1 - alpha / (4 var)), +2.6 % in std on the narrow axis
    assert torch.allclose(x.std(0), STD * (1 - 0.05 / (4 * STD**2)) ** -0.5, rtol=0.03)


def _run(name, score_fn, x, sigmas, seed, **kw):
    g = torch.Generator().manual_seed(seed)
    return SAMPLERS[name](score_fn, x, sigmas, generator=g, **kw)


KW = {"ald": {"n_steps_each": 3, "eps": 1e-3}, "pc": {"snr": 0.16, "corrector_steps": 2}, "heun": {}}


@pytest.mark.parametrize("name", ["ald", "pc", "heun"])
def test_same_generator_same_result(name):
    sigmas = torch.tensor([5.0, 2.0, 0.7, 0.1])
    x = 5.0 * torch.randn(64, 2, generator=torch.Generator().manual_seed(9))
    a = _run(name, gaussian_score, x, sigmas, 123, **KW[name])
    b = _run(name, gaussian_score, x, sigmas, 123, **KW[name])
    assert torch.equal(a, b)
    if name != "heun":
        assert not torch.equal(a, _run(name, gaussian_score, x, sigmas, 124, **KW[name]))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(
        langevin(gaussian_score, x, 1.0, n_steps=5, step_size=0.1, generator=g1),
        langevin(gaussian_score, x, 1.0, n_steps=5, step_size=0.1, generator=g2),
    )


def _shape_checking_score(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    assert sigma.shape == (x.shape[0],) and sigma.dtype == x.dtype and sigma.device == x.device
    return -x / (1.0 + sigma.reshape(-1, *([1] * (x.ndim - 1))) ** 2)


DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")],
    ),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(2, 1, 64), (2, 2, 9, 16)])
@pytest.mark.parametrize("name", ["ald", "pc", "heun"])
def test_audio_shapes_and_devices(name, shape, device):
    sigmas = torch.tensor([3.0, 1.0, 0.3])
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(shape, generator=g, device=device)
    with torch.inference_mode():
        out = SAMPLERS[name](_shape_checking_score, x, sigmas, generator=g, **KW[name])
    assert out.shape == shape and out.device == x.device and out.dtype == x.dtype
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["ald", "pc", "heun"])
@pytest.mark.parametrize("nfe", [9, 37, 100])
def test_budget_helper_spends_the_same_nfe(name, nfe):
    plan = sampler_ladder(name, nfe, 0.05, 10.0)
    calls = []

    def counting(x, s):
        calls.append(1)
        return _shape_checking_score(x, s)

    infos = []
    get_sampler(plan.name)(
        counting,
        torch.zeros(2, 1, 8),
        plan.sigmas,
        generator=torch.Generator().manual_seed(0),
        callback=infos.append,
        **plan.kwargs,
    )
    assert len(calls) == plan.nfe <= nfe
    assert plan.nfe >= nfe - {"ald": 5, "pc": 2, "heun": 1}[name]  # only the remainder is left unspent
    assert [info["i"] for info in infos] == list(range(len(infos)))
    assert all(info["total"] == len(infos) for info in infos)
    assert all({"i", "total", "x", "sigma", "level", "stage"} <= set(info) for info in infos)
    assert bool((plan.sigmas[:-1] > plan.sigmas[1:]).all())


def test_budget_helper_rules():
    p = sampler_ladder("ald", 1001, 0.01, 50.0, n_steps_each=100)
    assert len(p.sigmas) == 10 and p.kwargs["n_steps_each"] == 100 and p.nfe == 1001
    # NCSNv2 rules: CIFAR-10 sized data, 1161 NFE -> about the paper's 232 levels x 5 steps
    p = sampler_ladder("ald", 1161, 0.01, 50.0, dim=3072)
    assert p.kwargs["n_steps_each"] == 5 and abs(len(p.sigmas) - 232) <= 10
    assert 0 < p.kwargs["eps"] < 1e-4
    p = sampler_ladder("pc", 2001, 0.01, 50.0)
    assert len(p.sigmas) == 1001 and p.nfe == 2001
    p = sampler_ladder("heun", 35, 0.002, 80.0)
    assert len(p.sigmas) == 18 and p.nfe == 35 and p.kwargs == {}


def test_energy_model_with_annealed_langevin():
    """An energy-parameterised score (autograd inside) works in the sampler, even under inference_mode."""

    class GaussianEnergy(torch.nn.Module):
        def forward(self, x, sigma):
            var = STD**2 + sigma[:, None] ** 2
            return ((x - MU) ** 2 / (2 * var)).sum(1)

    model = EnergyScoreModel(GaussianEnergy())
    sigmas = torch.tensor([10.0, 3.0, 1.0, 0.3, 0.1])
    x_init = _start(4000, 10.0, torch.Generator().manual_seed(3))
    kw = {"n_steps_each": 20, "eps": 5e-4}
    with torch.inference_mode():
        x = annealed_langevin(model, x_init, sigmas, generator=torch.Generator().manual_seed(4), **kw)
    exact = annealed_langevin(
        gaussian_score, x_init, sigmas, generator=torch.Generator().manual_seed(4), **kw
    )
    assert torch.allclose(x, exact, atol=1e-4)
    with torch.no_grad():
        y = annealed_langevin(model, x_init, sigmas, generator=torch.Generator().manual_seed(4), **kw)
    assert not y.requires_grad and torch.allclose(y, exact, atol=1e-4)


def test_heun_last_step_is_the_tweedie_denoise():
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    out = heun(gaussian_score, x, [0.4])  # one level: Euler step 0.4 -> 0
    assert torch.allclose(out, x + 0.4**2 * gaussian_score(x, torch.full((8,), 0.4)))


def test_bad_input():
    x = torch.zeros(2, 1, 4)
    with pytest.raises(ValueError, match="valid: ald, heun, pc"):
        get_sampler("ddim")
    with pytest.raises(ValueError, match="valid: ald, heun, pc"):
        sampler_ladder("euler", 10, 0.1, 1.0)
    for bad, msg in [
        ([1.0, 2.0], "descending"),
        ([1.0, 1.0], "descending"),
        ([1.0, 0.0], "positive"),
        ([1.0, -0.5], "positive"),
        ([], "empty"),
        (torch.ones(2, 2), "1-D"),
    ]:
        for name in ("ald", "pc", "heun"):
            with pytest.raises(ValueError, match=msg):
                SAMPLERS[name](_shape_checking_score, x, bad, **KW[name])
    with pytest.raises(ValueError, match="n_steps_each"):
        annealed_langevin(_shape_checking_score, x, [1.0], n_steps_each=0, eps=0.1)
    with pytest.raises(ValueError, match="eps"):
        annealed_langevin(_shape_checking_score, x, [1.0], n_steps_each=1, eps=0.0)
    with pytest.raises(ValueError, match="snr"):
        pc_sampler(_shape_checking_score, x, [1.0], snr=0.0)
    with pytest.raises(ValueError, match="n_steps"):
        langevin(_shape_checking_score, x, 1.0, n_steps=0, step_size=0.1)
    with pytest.raises(ValueError, match="nfe"):
        sampler_ladder("heun", 0, 0.1, 1.0)
    with pytest.raises(ValueError, match="too small"):
        sampler_ladder("ald", 2, 0.1, 1.0)


def test_reverse_diffusion_from_the_observation_samples_the_posterior_and_langevin_does_not():
    """Two-mode prior 1/2 N(-1, 0.3^2) + 1/2 N(1, 0.3^2), y = x + 1.0 z, the exact score of p_sigma.

    The share of samples in the mode x came from must equal the posterior's E_y[P(mode | y)] (0.764
    here). Reverse diffusion from y matches it; annealed Langevin from y mixes toward the marginal
    at each level and lands near 1/2 as its steps per level grow (measured: 0.70 / 0.58 / 0.53 at
    1 / 5 / 50 steps per level), which is why the denoiser uses the former.
    """
    from scoreaudio.sampling import annealed_langevin, pc_sampler, posterior_ladder

    mu, s0, sy, n = 1.0, 0.3, 1.0, 20000
    g = torch.Generator().manual_seed(0)
    k = (torch.rand(n, generator=g) < 0.5).float() * 2 - 1  # the true mode's sign
    y = (k * mu + s0 * torch.randn(n, generator=g) + sy * torch.randn(n, generator=g)).view(n, 1)

    def score(x, sigma):
        v = s0**2 + sigma.view(-1, 1) ** 2
        w = torch.softmax(torch.stack([-((x - mu) ** 2) / (2 * v), -((x + mu) ** 2) / (2 * v)]), 0)
        return (w[0] * (mu - x) + w[1] * (-mu - x)) / v

    exact = float(torch.sigmoid(2 * mu * y.view(-1) * k / (s0**2 + sy**2)).mean())
    x = pc_sampler(score, y, posterior_ladder(50, 0.01, sy), corrector_steps=0, generator=g)
    reverse = float(((x.view(-1) * k) > 0).float().mean())
    plan = sampler_ladder("ald", 101, 0.01, sy, n_steps_each=5)
    x = annealed_langevin(score, y, plan.sigmas, generator=g, **plan.kwargs)
    ald = float(((x.view(-1) * k) > 0).float().mean())
    assert abs(exact - 0.764) < 0.01
    assert abs(reverse - exact) < 0.015
    assert ald < exact - 0.1


def test_posterior_ladder_spends_the_budget_and_refuses_a_start_below_sigma_min():
    from scoreaudio.sampling import posterior_ladder

    lad = posterior_ladder(8, 0.01, 0.5)
    assert lad.shape == (8,) and float(lad[0]) == pytest.approx(0.5) and float(lad[-1]) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="must exceed sigma_min"):
        posterior_ladder(8, 0.5, 0.5)
    with pytest.raises(ValueError, match="nfe must be >= 2"):
        posterior_ladder(1, 0.01, 0.5)
