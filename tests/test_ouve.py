"""SGMSE+'s OUVE diffusion on the VE model: closed forms against the SDE, the sampler on a Gaussian."""

import math

import pytest
import torch

from scoreaudio.ouve import OUVE, ouve_one_call, ouve_sampler, sample_sigmas_ouve

PROCESS = OUVE(gamma=1.5, sigma_min=0.1, sigma_max=5.0, t_eps=0.03)


def test_kernel_std_solves_the_variance_ode():
    # dV/dt = -2 gamma V + g(t)^2, V(0) = 0 (the OU SDE's variance), integrated finely
    n = 200_000
    dt = 1.0 / n
    v, checks = 0.0, {}
    for i in range(n):
        t = i * dt
        g = float(PROCESS.g(torch.tensor(t + dt / 2, dtype=torch.float64)))
        v += dt * (-2 * PROCESS.gamma * v + g * g)
        if i + 1 in (n // 4, n // 2, n):
            checks[(i + 1) * dt] = v
    for t, var in checks.items():
        assert float(PROCESS.std(torch.tensor(t, dtype=torch.float64))) == pytest.approx(
            math.sqrt(var), rel=1e-3
        )
    assert float(PROCESS.std(torch.tensor(0.0))) == pytest.approx(0.0, abs=1e-6)


def test_to_ve_turns_the_kernel_into_ve_noise():
    g = torch.Generator().manual_seed(0)
    x0, y, z = (torch.randn(4, 1, 64, generator=g) for _ in range(3))
    t = torch.tensor([0.03, 0.3, 0.7, 1.0])
    decay = torch.exp(-PROCESS.gamma * t)[:, None, None]
    x_t = decay * x0 + (1 - decay) * y + PROCESS.std(t)[:, None, None] * z
    expected = x0 + PROCESS.sigma_eff(t)[:, None, None] * z
    torch.testing.assert_close(PROCESS.to_ve(x_t, y, t), expected, rtol=1e-5, atol=1e-5)


def test_training_levels_follow_uniform_time():
    s = sample_sigmas_ouve(20_000, PROCESS, generator=torch.Generator().manual_seed(1))
    lo, hi = PROCESS.sigma_eff(torch.tensor(PROCESS.t_eps)), PROCESS.sigma_eff(torch.tensor(1.0))
    assert float(s.min()) >= float(lo) * (1 - 1e-6) and float(s.max()) <= float(hi) * (1 + 1e-6)
    mid = PROCESS.sigma_eff(torch.tensor((1 + PROCESS.t_eps) / 2))  # sigma_eff is increasing in t
    assert float(s.median()) == pytest.approx(float(mid), rel=0.03)


def test_sampler_draws_the_gaussian_posterior():
    # x0 ~ N(0, a^2), y = x0 + N(0, b^2): x0 | y ~ N(m y, v); the VE score given y is exact
    a, b = 1.0, 0.5
    m, v = a * a / (a * a + b * b), a * a * b * b / (a * a + b * b)
    y = torch.full((1, 1, 20_000), 1.2)

    def score_ve(x, sigma):
        return -(x - m * y) / (v + sigma[:, None, None] ** 2)

    def denoise_ve(x, sigma):
        return x + sigma[:, None, None] ** 2 * score_ve(x, sigma)

    # the last Tweedie step returns E[x0 | x_eps]: its spread is v minus the share left at t_eps
    s_end = float(PROCESS.sigma_eff(torch.tensor(PROCESS.t_eps)))
    exact_var = v * v / (v + s_end**2)
    for corrector in (False, True):
        out = ouve_sampler(
            score_ve,
            denoise_ve,
            y,
            PROCESS,
            steps=301,
            corrector=corrector,
            snr=0.5,
            generator=torch.Generator().manual_seed(2),
        )
        assert float(out.mean()) == pytest.approx(m * 1.2, abs=0.02)
        if not corrector:
            assert float(out.var()) == pytest.approx(exact_var, rel=0.03)
        else:  # unadjusted Langevin at step 2 r^2 V keeps the variance V / (1 - r^2): at most 4/3 here
            assert exact_var * 1.1 < float(out.var()) < exact_var / (1 - 0.5**2) * 1.03


def test_one_call_denoises_the_prior_start_at_its_ve_level():
    """x_1 = y + sigma(1) z in VE coordinates is e^gamma (e^-gamma y + sigma(1) z) = y + sigma_eff(1) z:
    the one-call estimate hands D exactly that state and level, and returns D's output."""
    process = OUVE(gamma=1.5, sigma_min=0.05, sigma_max=0.5)
    y = torch.randn(3, 1, 64, generator=torch.Generator().manual_seed(1))
    seen = {}

    def denoise_ve(x, sigma):
        seen["x"], seen["sigma"] = x, sigma
        return x * 0 + 7.0

    out = ouve_one_call(denoise_ve, y, process, generator=torch.Generator().manual_seed(2))
    z = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    top = float(process.sigma_eff(torch.tensor(1.0)))
    assert torch.allclose(seen["x"], y + top * z, atol=1e-5)
    assert torch.allclose(seen["sigma"], torch.full((3,), top))
    assert torch.equal(out, torch.full_like(y, 7.0))


def test_bad_constants_and_steps_are_refused():
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        OUVE(sigma_min=0.5, sigma_max=0.1)
    with pytest.raises(ValueError, match="steps >= 2"):
        ouve_sampler(lambda x, s: x, lambda x, s: x, torch.zeros(1, 1, 8), PROCESS, steps=1)
