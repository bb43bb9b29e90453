"""Sigma ladders, training-time sigma samplers and the NCSNv2 selection rules."""

from __future__ import annotations

import math

import pytest
import torch

from scoreaudio.noise import (
    gamma_from_dim,
    geometric_sigmas,
    karras_sigmas,
    langevin_eps,
    langevin_variance_ratio,
    num_levels_from_dim,
    sample_sigmas_discrete,
    sample_sigmas_log_uniform,
    sigma_max_from_data,
)
from scoreaudio.sampling import langevin


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


# ---------------------------------------------------------------------------------- ladders
def test_geometric_ladder():
    s = geometric_sigmas(10, 0.01, 50.0)
    assert s.shape == (10,) and s.dtype == torch.float32
    assert float(s[0]) == pytest.approx(50.0) and float(s[-1]) == pytest.approx(0.01)
    assert bool((s[:-1] > s[1:]).all())
    ratios = (s[:-1] / s[1:]).double()
    assert torch.allclose(ratios, ratios.mean().expand_as(ratios), rtol=1e-5)
    assert geometric_sigmas(1, 0.5, 2.0).tolist() == [2.0]
    assert geometric_sigmas(4, 1.0, 8.0, dtype=torch.float64).dtype == torch.float64


def test_karras_ladder():
    n, lo, hi, rho = 12, 0.002, 80.0, 7.0
    s = karras_sigmas(n, lo, hi, rho=rho).double()
    assert s.shape == (n,)
    assert float(s[0]) == pytest.approx(hi) and float(s[-1]) == pytest.approx(lo)
    assert bool((s[:-1] > s[1:]).all())
    i = 5  # EDM Eq. (5)
    expect = (hi ** (1 / rho) + i / (n - 1) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    assert float(s[i]) == pytest.approx(expect, rel=1e-5)
    # large rho tends to the geometric ladder
    assert torch.allclose(
        karras_sigmas(n, lo, hi, rho=1e4).double(), geometric_sigmas(n, lo, hi).double(), rtol=1e-2
    )


@pytest.mark.parametrize("fn", [geometric_sigmas, karras_sigmas])
def test_ladder_bad_input(fn):
    with pytest.raises(ValueError, match="positive integer"):
        fn(0, 0.1, 1.0)
    with pytest.raises(ValueError, match="positive integer"):
        fn(-3, 0.1, 1.0)
    with pytest.raises(ValueError, match="sigma_min"):
        fn(5, 0.0, 1.0)
    with pytest.raises(ValueError, match="sigma_min"):
        fn(5, 2.0, 1.0)
    with pytest.raises(ValueError, match="distinct"):
        fn(5, 1.0, 1.0)


# ---------------------------------------------------------------------------------- samplers
def test_log_uniform_sampler():
    g = torch.Generator().manual_seed(0)
    s = sample_sigmas_log_uniform(20000, 0.01, 100.0, generator=g)
    assert s.shape == (20000,) and s.dtype == torch.float32
    assert float(s.min()) >= 0.01 * (1 - 1e-6) and float(s.max()) <= 100.0 * (1 + 1e-6)
    logs = s.double().log()
    # log sigma uniform on [log 0.01, log 100]: mean 0, std = range / sqrt(12)
    assert abs(float(logs.mean())) < 0.05
    assert float(logs.std()) == pytest.approx(math.log(1e4) / math.sqrt(12), rel=0.02)
    again = sample_sigmas_log_uniform(20000, 0.01, 100.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, again)
    with pytest.raises(ValueError, match="batch"):
        sample_sigmas_log_uniform(0, 0.1, 1.0)


def test_discrete_sampler():
    ladder = geometric_sigmas(8, 0.1, 10.0)
    g = torch.Generator().manual_seed(1)
    s = sample_sigmas_discrete(16000, ladder, generator=g)
    assert s.shape == (16000,)
    counts = torch.stack([(s == v).sum() for v in ladder]).double()
    assert int(counts.sum()) == 16000  # only ladder values
    assert float((counts / 16000 - 1 / 8).abs().max()) < 0.02  # uniform over levels (NCSN Eq. 6)
    with pytest.raises(ValueError, match="batch"):
        sample_sigmas_discrete(0, ladder)
    with pytest.raises(ValueError, match="1-D"):
        sample_sigmas_discrete(4, ladder[None])


# ---------------------------------------------------------------------------------- NCSNv2 rules
def test_sigma_max_from_data_known_distance():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 2, 5, generator=g)  # (N, C, T): points in the unit cube of R^10
    x[17] = 0.0
    x[211] = 1.0  # opposite corners: the largest possible distance, sqrt(10)
    assert sigma_max_from_data(x, chunk=64) == pytest.approx(math.sqrt(10.0), rel=1e-9)
    two = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert sigma_max_from_data(two) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="at least 2"):
        sigma_max_from_data(torch.zeros(1, 3))


def test_gamma_rule_satisfies_criterion_and_levels_grow_with_dim():
    for dim in (10, 100, 3072, 16000):
        gamma = gamma_from_dim(dim)
        a = math.sqrt(2 * dim) * (gamma - 1)
        assert _phi(a + 3 * gamma) - _phi(a - 3 * gamma) == pytest.approx(0.5, abs=1e-9)
    levels = [num_levels_from_dim(d, 0.01, 50.0) for d in (10, 100, 1000, 3072, 16000)]
    assert levels == sorted(levels) and len(set(levels)) == len(levels)
    # the ladder with that many levels has ratio <= gamma, and one level fewer would exceed it
    L, gamma = levels[3], gamma_from_dim(3072)
    assert (50.0 / 0.01) ** (1 / (L - 1)) <= gamma < (50.0 / 0.01) ** (1 / (L - 2))
    # CIFAR-10 (D = 3072, sigma 50 -> 0.01): the NCSNv2 config uses 232 levels
    assert abs(L - 232) / 232 < 0.1


def test_gamma_rule_bad_input():
    with pytest.raises(ValueError, match="D <= 4"):
        gamma_from_dim(2)
    with pytest.raises(ValueError, match="positive integer"):
        gamma_from_dim(0)
    with pytest.raises(ValueError, match="sigma_min"):
        num_levels_from_dim(100, 1.0, 0.5)


def test_eps_rule_matches_paper_formula_and_cifar10_config():
    T, gamma, s_l = 5, 5000 ** (1 / 231), 0.01
    eps = langevin_eps(T, gamma, s_l)
    # NCSNv2 Proposition 3 ratio in the paper's own convention (eps' = eps / 2 in ours)
    e = eps / 2

    def prop3(e: float) -> float:
        b = 2 * e / (s_l**2 - s_l**2 * (1 - e / s_l**2) ** 2)
        return (1 - e / s_l**2) ** (2 * T) * (gamma**2 - b) + b

    assert langevin_variance_ratio(eps, T, gamma, s_l) == pytest.approx(prop3(e), rel=1e-12)
    # eps is the minimiser: the ratio is as close to 1 as it gets (it is > 1 for every eps)
    best = prop3(e)
    assert best > 1.0
    for f in (0.5, 0.9, 1.1, 2.0):
        assert prop3(e * f) > best
    # the NCSNv2 CIFAR-10 config (T=5, L=232) has step_lr = 6.2e-6 (= eps / 2 here)
    assert e == pytest.approx(6.2e-6, rel=0.02)


def test_eps_rule_gives_the_predicted_variance_in_simulation():
    """One level of Langevin (our convention) on N(0, sigma_L^2), started at N(0, (gamma sigma_L)^2)."""
    T, gamma, s_l = 20, 1.2, 0.5
    eps = langevin_eps(T, gamma, s_l)
    g = torch.Generator().manual_seed(0)
    x0 = gamma * s_l * torch.randn(200000, 1, generator=g, dtype=torch.float64)
    x = langevin(lambda x, s: -x / s_l**2, x0, s_l, n_steps=T, step_size=eps, generator=g)
    ratio = float(x.var()) / s_l**2
    assert ratio == pytest.approx(langevin_variance_ratio(eps, T, gamma, s_l), rel=0.01)
    assert abs(ratio - 1) < 0.1 < gamma**2 - 1  # close to the target, far from the start (1.44)


def test_eps_rule_bad_input():
    with pytest.raises(ValueError, match="n_steps_each"):
        langevin_eps(0, 1.1, 0.01)
    with pytest.raises(ValueError, match="gamma"):
        langevin_eps(5, 1.0, 0.01)
    with pytest.raises(ValueError, match="sigma_min"):
        langevin_eps(5, 1.1, 0.0)


def test_log_normal_sigmas_follow_edm_and_stay_in_range():
    from scoreaudio.noise import sample_sigmas_log_normal

    g = torch.Generator().manual_seed(0)
    s = sample_sigmas_log_normal(20000, -1.2, 1.2, 0.002, 80.0, generator=g)
    assert s.shape == (20000,) and bool((s >= 0.002).all()) and bool((s <= 80.0).all())
    assert abs(float(s.log().mean()) + 1.2) < 0.05 and abs(float(s.log().std()) - 1.2) < 0.05
    clamped = sample_sigmas_log_normal(1000, 0.0, 5.0, 0.5, 2.0, generator=g)
    assert float(clamped.min()) == 0.5 and float(clamped.max()) == 2.0
    with pytest.raises(ValueError):
        sample_sigmas_log_normal(4, 0.0, 0.0, 0.1, 1.0)


def test_conditional_sigmas_put_the_predictive_share_at_sigma_max_and_the_rest_in_band():
    from scoreaudio.noise import sample_sigmas_conditional, sample_training_sigmas

    g = torch.Generator().manual_seed(0)
    s = sample_sigmas_conditional(20000, 0.3, (0.01, 0.5), 0.002, 3.0, generator=g)
    top = s == 3.0
    assert abs(float(top.float().mean()) - 0.3) < 0.015
    rest = s[~top]
    assert float(rest.min()) >= 0.01 and float(rest.max()) <= 0.5
    # log-uniform inside the band: the median of log sigma is the band's log midpoint
    assert abs(float(rest.log().median()) - 0.5 * (math.log(0.01) + math.log(0.5))) < 0.05
    # via the config entry point: band in units of sigma_data
    t = sample_training_sigmas(
        "conditional",
        4000,
        sigma_min=0.002,
        sigma_max=3.0,
        sigma_data=0.1,
        band=(0.1, 1.0),
        predictive_share=0.0,
        generator=torch.Generator().manual_seed(1),
    )
    assert float(t.min()) >= 0.01 - 1e-7 and float(t.max()) <= 0.1 + 1e-7
    with pytest.raises(ValueError, match="predictive_share"):
        sample_sigmas_conditional(4, 1.5, (0.01, 0.5), 0.002, 3.0)
    with pytest.raises(ValueError, match="nothing inside"):
        sample_sigmas_conditional(4, 0.5, (5.0, 9.0), 0.002, 3.0)
