"""The denoising methods as pure functions: closed forms on Gaussian models with exact scores."""

from __future__ import annotations

import pytest
import torch

from scoreaudio.denoise_methods import (
    CONDITIONAL_METHODS,
    METHOD_FUNCTIONS,
    PRIOR_METHODS,
    predictive,
    refined,
    tweedie,
)


class GaussianPosterior(torch.nn.Module):
    """Exact conditional score when x | y ~ N(a y, tau^2 I): s(x, sigma, y) = -(x - a y) / (tau^2 + sigma^2)."""

    def __init__(self, a: float, tau: float):
        super().__init__()
        self.a, self.tau = a, tau

    def forward(self, x, sigma, cond):
        var = self.tau**2 + sigma.reshape(-1, *([1] * (x.ndim - 1))) ** 2
        return -(x - self.a * cond) / var


def _y(n=4, d=20000, seed=0):
    return torch.randn(n, 1, d, generator=torch.Generator().manual_seed(seed))


def test_every_method_is_a_function_in_the_table():
    assert set(METHOD_FUNCTIONS) == set(PRIOR_METHODS) | set(CONDITIONAL_METHODS)
    assert all(callable(f) for f in METHOD_FUNCTIONS.values())


def test_predictive_is_the_posterior_mean_at_sigma_max():
    model, y = GaussianPosterior(0.8, 0.1), _y()
    est = predictive(model, y, cond=y, sigma_max=50.0)
    # D = x tau^2/(tau^2+s^2) + a y s^2/(tau^2+s^2): at s = 50 the state's weight is 4e-6
    assert torch.allclose(est, 0.8 * y, atol=1e-3)
    assert torch.equal(est, predictive(model, y, cond=y, sigma_max=50.0))  # fixed seed without a generator


def test_refined_samples_around_the_posterior_mean_with_at_most_its_variance():
    y = _y()
    # a sharp posterior: refinement must come back to the mean
    sharp = refined(
        GaussianPosterior(0.8, 0.0),
        y,
        cond=y,
        sigma_max=50.0,
        sigma_min=0.002,
        sigma_data=1.0,
        steps=8,
        start=0.3,
        generator=torch.Generator().manual_seed(1),
    )
    assert float((sharp - 0.8 * y).pow(2).mean().sqrt()) < 0.01
    # a broad one: unbiased, with spread below the posterior's (the start has less variance than p(x_s | y))
    tau = 0.2
    out = refined(
        GaussianPosterior(0.8, tau),
        y,
        cond=y,
        sigma_max=50.0,
        sigma_min=0.002,
        sigma_data=1.0,
        steps=8,
        start=0.3,
        generator=torch.Generator().manual_seed(2),
    )
    err = out - 0.8 * y
    assert abs(float(err.mean())) < 0.01
    assert 0.2 * tau**2 < float(err.var()) < 1.05 * tau**2
    # two steps: predictive, then one reverse step ending in the Tweedie step
    two = refined(
        GaussianPosterior(0.8, 0.0),
        y,
        cond=y,
        sigma_max=50.0,
        sigma_min=0.002,
        sigma_data=1.0,
        steps=2,
        start=0.3,
        generator=torch.Generator().manual_seed(3),
    )
    assert float((two - 0.8 * y).abs().max()) < 1e-2


def test_tweedie_takes_sigma_positionally_or_by_name():
    x0 = torch.zeros(2, 1, 8)
    score = lambda x, s: -x / (1.0 + s.reshape(-1, 1, 1) ** 2)  # noqa: E731  data N(0, 1)
    y = torch.ones(2, 1, 8)
    a, b = tweedie(score, y, 0.5), tweedie(score, y, sigma=0.5)
    assert torch.equal(a, b) and torch.allclose(a, y / 1.25)  # E[x | y] = y / (1 + sigma^2)
    assert x0.shape == a.shape


@pytest.mark.parametrize("method", sorted(CONDITIONAL_METHODS))
def test_conditional_methods_are_seeded(method):
    model, y = GaussianPosterior(0.8, 0.1), _y(2, 4000)
    from scoreaudio.ouve import OUVE

    kw = dict(cond=y, sigma=0.3, sigma_min=0.002, sigma_max=5.0, sigma_data=1.0, steps=4, process=OUVE())
    a = METHOD_FUNCTIONS[method](model, y, generator=torch.Generator().manual_seed(7), **kw)
    b = METHOD_FUNCTIONS[method](model, y, generator=torch.Generator().manual_seed(7), **kw)
    assert torch.equal(a, b) and torch.isfinite(a).all()
