"""Score-matching objectives against analytic Gaussian targets.

Gaussian data x0 ~ N(mu, Sigma) perturbed by sigma has the score
``-(Sigma + sigma^2 I)^-1 (x - mu)`` and the posterior mean ``mu + Sigma (Sigma + sigma^2 I)^-1 (y - mu)``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scoreaudio.losses import dsm_loss, exact_sm_loss, ssm_loss
from scoreaudio.nn.energy import EnergyScoreModel
from scoreaudio.nn.mlp import EnergyMLP, ScoreMLP

D = 3


class LinearScore(nn.Module):
    """s(x) = A x + b on (B, D) data; ignores sigma (it is fitted at one sigma)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a.clone())
        self.b = nn.Parameter(b.clone())

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        assert sigma.shape == (x.shape[0],)
        return x @ self.a.T + self.b


def _gaussian(dtype=torch.float64):
    mu = torch.tensor([1.0, -2.0, 0.5], dtype=dtype)
    m = torch.tensor([[1.0, 0.3, 0.0], [0.0, 0.8, -0.4], [0.2, 0.0, 0.6]], dtype=dtype)
    cov = m @ m.T + 0.1 * torch.eye(D, dtype=dtype)
    return mu, cov


def _true_score(mu, cov, sigma):
    a = -torch.linalg.inv(cov + sigma**2 * torch.eye(D, dtype=cov.dtype))
    return a, -a @ mu  # s(x) = A x + b with b = -A mu


def _data(n, mu, cov, gen):
    chol = torch.linalg.cholesky(cov)
    return mu + torch.randn(n, D, generator=gen, dtype=cov.dtype) @ chol.T


def test_dsm_and_exact_sm_are_lowest_at_the_true_score():
    g = torch.Generator().manual_seed(0)
    mu, cov = _gaussian()
    sigma = 0.7
    a, b = _true_score(mu, cov, sigma)
    x0 = _data(40000, mu, cov, g)
    z = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    sig = torch.full((x0.shape[0],), sigma, dtype=x0.dtype)
    true = LinearScore(a, b)
    with torch.no_grad():
        dsm_true = float(dsm_loss(true, x0, sig, noise=z).mean())
        esm_true = float(exact_sm_loss(true, x0 + sigma * z, sig).mean())
    for da, db in [
        (0.2 * torch.eye(D), torch.zeros(D)),
        (torch.zeros(D, D), torch.full((D,), 0.3)),
        (torch.tensor([[0.0, 0.3, 0], [0.0, 0, 0], [0, 0, -0.2]]), torch.zeros(D)),
    ]:
        other = LinearScore(a + da.double(), b + db.double())
        with torch.no_grad():
            assert float(dsm_loss(other, x0, sig, noise=z).mean()) > dsm_true + 1e-3
            assert float(exact_sm_loss(other, x0 + sigma * z, sig).mean()) > esm_true + 1e-3


def test_dsm_minimiser_of_a_linear_model_is_the_true_score():
    g = torch.Generator().manual_seed(1)
    mu, cov = _gaussian(torch.float32)
    sigma = 0.5
    x0 = _data(16384, mu, cov, g)
    z = torch.randn(x0.shape, generator=g)
    sig = torch.full((x0.shape[0],), sigma)
    model = LinearScore(torch.zeros(D, D), torch.zeros(D))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(400):
        loss = dsm_loss(model, x0, sig, noise=z).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    # least squares on the same sample: regress -z / sigma on [x, 1]
    feats = torch.cat([x0 + sigma * z, torch.ones(len(x0), 1)], dim=1).double()
    sol = torch.linalg.lstsq(feats, (-z / sigma).double()).solution  # (D + 1, D)
    a_ls = sol[:D].T
    a_true, b_true = _true_score(mu.double(), cov.double(), sigma)
    assert torch.allclose(model.a.detach().double(), a_ls, atol=0.02)
    assert torch.allclose(model.a.detach().double(), a_true, atol=0.1)
    assert torch.allclose(model.b.detach().double(), b_true, atol=0.15)


def test_tweedie_gives_the_exact_posterior_mean():
    g = torch.Generator().manual_seed(2)
    mu, cov = _gaussian()
    sigma = 0.8
    a, b = _true_score(mu, cov, sigma)
    y = _data(1000, mu, cov, g) + sigma * torch.randn(1000, D, generator=g, dtype=torch.float64)
    tweedie = y + sigma**2 * (y @ a.T + b)
    # Gaussian conditioning: E[x0 | y] = mu + Cov(x0, y) Cov(y)^-1 (y - mu) = mu + Sigma (Sigma + s^2 I)^-1 (y - mu)
    gain = cov @ torch.linalg.inv(cov + sigma**2 * torch.eye(D, dtype=torch.float64))
    posterior_mean = mu + (y - mu) @ gain.T
    assert torch.allclose(tweedie, posterior_mean, atol=1e-10)
    # and the x0-parameterised DSM loss is smallest for this denoiser
    x0 = _data(20000, mu, cov, g)
    z = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    sig = torch.full((len(x0),), sigma, dtype=x0.dtype)

    def denoiser(shift):
        return lambda x, s: mu + (x - mu) @ gain.T + shift

    best = float(dsm_loss(denoiser(0.0), x0, sig, noise=z, target="x0").mean())
    assert float(dsm_loss(denoiser(0.1), x0, sig, noise=z, target="x0").mean()) > best


def test_score_noise_and_x0_targets_are_one_objective():
    g = torch.Generator().manual_seed(3)
    torch.manual_seed(0)
    net = ScoreMLP(4, hidden=16, layers=2)
    for p in net.parameters():
        nn.init.normal_(p, std=0.3)
    x0 = torch.randn(64, 4, generator=g)
    sig = torch.exp(torch.randn(64, generator=g))
    z = torch.randn(x0.shape, generator=g)
    x = x0 + sig[:, None] * z

    def eps_model(x, s):
        return -s[:, None] * net(x, s)  # eps_hat = -sigma * s

    def x0_model(x, s):
        return x + s[:, None] ** 2 * net(x, s)  # D = x + sigma^2 s (Tweedie)

    with torch.no_grad():
        l_score = dsm_loss(net, x0, sig, noise=z)
        l_noise = dsm_loss(eps_model, x0, sig, noise=z, target="noise")
        l_x0 = dsm_loss(x0_model, x0, sig, noise=z, target="x0")
        assert torch.allclose(l_score, l_noise, rtol=1e-4, atol=1e-6)
        assert torch.allclose(l_score, l_x0, rtol=1e-3, atol=1e-6)
        # the plain MSEs of each form, with their known weights
        mse_noise = 0.5 * (eps_model(x, sig) - z).square().mean(1)
        mse_x0 = 0.5 * (x0_model(x, sig) - x0).square().mean(1)
        assert torch.allclose(l_score, mse_noise, rtol=1e-4, atol=1e-6)
        assert torch.allclose(sig**2 * l_score, mse_x0, rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="valid: score, noise, x0"):
        dsm_loss(net, x0, sig, target="eps")


def _per_example_estimates(model, x0, sig, z, seeds, **kw):
    return torch.stack(
        [
            ssm_loss(
                model, x0, sig, noise=z, generator=torch.Generator().manual_seed(s), create_graph=False, **kw
            ).detach()
            for s in seeds
        ]
    )  # (R, B)


@pytest.mark.parametrize("projection", ["rademacher", "gaussian"])
def test_ssm_and_ssm_vr_agree_with_exact_sm_and_vr_has_lower_variance(projection):
    g = torch.Generator().manual_seed(4)
    mu, cov = _gaussian()
    sigma = 0.6
    a, b = _true_score(mu, cov, sigma)
    # a linear score model that is not the true one (non-symmetric, to make the slices matter)
    model = LinearScore(
        a + torch.tensor([[0.0, 0.5, 0.0], [-0.3, 0.2, 0.0], [0.0, 0.4, -0.1]], dtype=a.dtype), b
    )
    x0 = _data(2000, mu, cov, g)
    z = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    sig = torch.full((len(x0),), sigma, dtype=x0.dtype)
    exact = exact_sm_loss(model, x0 + sigma * z, sig, create_graph=False).detach()  # (B,)
    seeds = range(50)
    vr = _per_example_estimates(model, x0, sig, z, seeds, projection=projection)
    plain = _per_example_estimates(model, x0, sig, z, seeds, projection=projection, variance_reduction=False)
    for est in (vr, plain):
        diff = est.mean(0) - exact  # per-example Monte-Carlo error over projections
        stderr = float(diff.std() / len(diff) ** 0.5)
        assert abs(float(diff.mean())) < 4 * stderr + 1e-12
    var_vr, var_plain = float(vr.var(0).mean()), float(plain.var(0).mean())
    print(
        f"\n[{projection}] per-example variance over projections: SSM {var_plain:.4g}, "
        f"SSM-VR {var_vr:.4g}, ratio SSM/SSM-VR {var_plain / var_vr:.2f}"
    )
    assert var_vr < var_plain
    # E[dsm] = E[exact sm] + 1/2 with this normalisation
    with torch.no_grad():
        dsm = dsm_loss(model, x0, sig, noise=z)
    d = dsm - 0.5 - exact
    assert abs(float(d.mean())) < 4 * float(d.std()) / len(d) ** 0.5


def test_ssm_n_projections_averages():
    g = torch.Generator().manual_seed(5)
    mu, cov = _gaussian()
    a, b = _true_score(mu, cov, 1.0)
    model = LinearScore(a, b)
    x0 = _data(256, mu, cov, g)
    sig = torch.ones(256, dtype=x0.dtype)
    z = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    one = ssm_loss(
        model, x0, sig, noise=z, generator=torch.Generator().manual_seed(0), variance_reduction=False
    )
    many = ssm_loss(
        model,
        x0,
        sig,
        noise=z,
        n_projections=64,
        generator=torch.Generator().manual_seed(0),
        variance_reduction=False,
    )
    exact = exact_sm_loss(model, x0 + z, sig)
    assert (many - exact).abs().mean() < (one - exact).abs().mean()


class ElementwiseScore(nn.Module):
    """s = -w x / (1 + sigma^2), elementwise, for any rank (B, C, *S)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.7))

    def forward(self, x, sigma, cond=None):
        assert sigma.shape == (x.shape[0],)
        s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        out = -self.w * x / (1 + s**2)
        return out if cond is None else out + 0.0 * cond


@pytest.mark.parametrize("shape", [(4, 2, 16), (3, 2, 5, 7)])
def test_per_example_shapes_for_rank3_and_rank4(shape):
    g = torch.Generator().manual_seed(6)
    model = ElementwiseScore()
    x0 = torch.randn(shape, generator=g)
    sig = torch.rand(shape[0], generator=g) + 0.1
    cond = torch.randn(shape, generator=g)
    for loss in (
        dsm_loss(model, x0, sig, generator=g),
        dsm_loss(model, x0, sig, cond, generator=g),
        ssm_loss(model, x0, sig, generator=g),
        ssm_loss(model, x0, sig, cond, variance_reduction=False, projection="gaussian", generator=g),
    ):
        assert loss.shape == (shape[0],)
        loss.mean().backward()
        assert model.w.grad is not None and torch.isfinite(model.w.grad)
        model.w.grad = None
    small = x0[..., :3]
    assert exact_sm_loss(model, small, sig).shape == (shape[0],)
    # sigma may be a float
    assert dsm_loss(model, x0, 0.5, generator=g).shape == (shape[0],)


def test_dsm_is_a_mean_over_entries_so_length_does_not_matter():
    g = torch.Generator().manual_seed(7)
    model = ElementwiseScore()
    sig = torch.full((64,), 0.5)
    with torch.no_grad():
        short = dsm_loss(model, torch.randn(64, 1, 1000, generator=g), sig, generator=g).mean()
        long = dsm_loss(model, torch.randn(64, 1, 8000, generator=g), sig, generator=g).mean()
    assert float(short) == pytest.approx(float(long), rel=0.02)


def test_loss_bad_input():
    model = ElementwiseScore()
    x0 = torch.randn(2, 1, 8)
    sig = torch.ones(2)
    with pytest.raises(ValueError, match="noise has shape"):
        dsm_loss(model, x0, sig, noise=torch.randn(2, 1, 7))
    with pytest.raises(ValueError, match="valid: rademacher, gaussian"):
        ssm_loss(model, x0, sig, projection="sphere")
    with pytest.raises(ValueError, match="n_projections"):
        ssm_loss(model, x0, sig, n_projections=0)
    with pytest.raises(ValueError, match="sigma"):
        dsm_loss(model, x0, torch.ones(3))
    with pytest.raises(ValueError, match="model returned shape"):
        dsm_loss(lambda x, s: x[:, :, :4], x0, sig)


# ---------------------------------------------------------------------------------- energy model
class QuadraticEnergy(nn.Module):
    """E = |x - m|^2 / (2 (v + sigma^2)): the energy of N(m, v I) perturbed by sigma."""

    def __init__(self) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.tensor(0.3))
        self.v = 1.5

    def forward(self, x, sigma):
        s2 = sigma.reshape(-1, *([1] * (x.ndim - 1))) ** 2
        return ((x - self.m) ** 2 / (2 * (self.v + s2))).flatten(1).sum(1)


def test_energy_model_score_is_minus_grad_energy_in_every_grad_mode():
    g = torch.Generator().manual_seed(8)
    model = EnergyScoreModel(QuadraticEnergy())
    x = torch.randn(5, 2, 6, generator=g)
    sig = torch.rand(5, generator=g) + 0.2
    expect = -(x - 0.3) / (1.5 + sig[:, None, None] ** 2)
    s = model(x, sig)
    assert torch.allclose(s, expect, atol=1e-6) and s.requires_grad  # differentiable when grad is on
    with torch.no_grad():
        s = model(x, sig)
    assert torch.allclose(s, expect, atol=1e-6) and not s.requires_grad
    with torch.inference_mode():
        xi, si = x.clone(), sig.clone()
        s = model(xi, si)
    assert torch.allclose(s, expect, atol=1e-6) and not s.requires_grad
    with pytest.raises(ValueError, match="one energy per example"):
        EnergyScoreModel(lambda x, s: x.sum())(x, sig)


def test_energy_model_trains_with_dsm_ssm_and_exact_sm():
    g = torch.Generator().manual_seed(9)
    torch.manual_seed(0)
    model = EnergyScoreModel(EnergyMLP(2, hidden=16, layers=2))
    x0 = torch.randn(32, 2, generator=g)
    sig = torch.rand(32, generator=g) + 0.1
    for loss in (
        dsm_loss(model, x0, sig, generator=g),
        ssm_loss(model, x0, sig, generator=g),
        ssm_loss(model, x0, sig, variance_reduction=False, generator=g),
        exact_sm_loss(model, x0, sig),
    ):
        assert loss.shape == (32,)
        model.zero_grad()
        loss.mean().backward()
        grads = [p.grad for p in model.parameters()]
        assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
        assert any(float(gr.abs().sum()) > 0 for gr in grads)
    # SSM on an energy model needs the Hessian: check against exact SM on a quadratic energy
    quad = EnergyScoreModel(QuadraticEnergy())
    x0 = torch.randn(4000, 3, generator=g)
    sig = torch.full((4000,), 0.5)
    z = torch.randn(x0.shape, generator=g)
    exact = exact_sm_loss(quad, x0 + 0.5 * z, sig, create_graph=False)
    vr = ssm_loss(quad, x0, sig, noise=z, generator=g, create_graph=False)
    # for a quadratic energy the Hessian is diagonal and constant: Rademacher SSM-VR is exact
    assert torch.allclose(vr.detach(), exact.detach(), atol=1e-5)


def test_ssm_trains_a_network_with_attention():
    """SSM differentiates the Jacobian term again; the fused CPU attention kernel has no double
    backward, so the loss must run attention on the math kernel (a U-Net with attention)."""
    from scoreaudio.nn.score_model import ScoreModel
    from scoreaudio.nn.unet2d import UNet2d

    torch.manual_seed(0)
    net = ScoreModel(
        UNet2d(
            2,
            2,
            channels=8,
            channel_mult=(1, 2),
            attention=True,
            attention_heads=2,
            groups=4,
            embedding_dim=16,
        ),
        sigma_data=0.1,
    )
    x0 = 0.1 * torch.randn(2, 2, 16, 8)
    loss = ssm_loss(net, x0, torch.tensor([0.05, 0.5]), generator=torch.Generator().manual_seed(1))
    loss.mean().backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters() if p.requires_grad
    )


def test_energy_from_a_linear_denoiser_has_the_closed_form_score():
    """D(x) = a x  =>  E = (1 - a)^2 |x|^2 / (2 sigma^2)  =>  s = -(1 - a)^2 x / sigma^2, exactly."""
    from scoreaudio.nn.energy import EnergyFromDenoiser

    class Linear(torch.nn.Module):
        parameterisation, cond_channels, receptive_field = "edm", 0, None

        def __init__(self):
            super().__init__()
            self.a = torch.nn.Parameter(torch.tensor(0.3))
            self.register_buffer("sigma_data", torch.tensor(0.5))

        def denoise(self, x, sigma, cond=None):
            return self.a * x

    model = EnergyFromDenoiser(Linear())
    x = torch.randn(3, 1, 50, dtype=torch.float64)
    sigma = torch.tensor([0.1, 0.5, 2.0], dtype=torch.float64)
    want = -(0.7**2) * x / sigma.reshape(-1, 1, 1) ** 2
    with torch.no_grad():
        assert torch.allclose(model(x, sigma).double(), want, rtol=1e-5)
    assert torch.allclose(
        model.denoise(x, sigma).detach().double(), x + sigma.reshape(-1, 1, 1) ** 2 * want, rtol=1e-5
    )
    # trainable through the double backward: DSM's gradient reaches a
    loss = dsm_loss(model, x.float(), sigma.float()).mean()
    loss.backward()
    assert model.inner.a.grad is not None and torch.isfinite(model.inner.a.grad)
    assert model.parameterisation == "edm" and float(model.sigma_data) == 0.5


def test_energy_switch_builds_a_conservative_audio_model():
    from conftest import REPO

    from scoreaudio.config import compose
    from scoreaudio.nn.build import build_score_model
    from scoreaudio.nn.energy import EnergyFromDenoiser

    cfg = compose(
        REPO / "recipes" / "quickstart.yaml",
        ["model=wavenet_tiny", "representation=waveform", "model.energy=true"],
    )
    model = build_score_model(cfg.model, 1)
    assert isinstance(model, EnergyFromDenoiser)
    x = torch.randn(2, 1, 400)
    with torch.no_grad():
        s = model(x, torch.tensor([0.1, 1.0]))
    assert s.shape == x.shape and torch.isfinite(s).all()


# --------------------------------------------------------------------------------------------
# The compressed spectral loss of the one-call estimate
# --------------------------------------------------------------------------------------------
def _speechlike(seed: int = 0, n: int = 4000) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    tone = torch.sin(2 * torch.pi * 220 * t) + 0.3 * torch.sin(2 * torch.pi * 1760 * t)
    return (tone * (1 + 0.1 * torch.randn(n, generator=g))).reshape(1, 1, n).repeat(2, 1, 1)


def test_spectral_loss_is_zero_at_the_target_and_scale_invariant():
    from scoreaudio.losses import compressed_spectral_loss

    ref = _speechlike()
    est = ref + 0.05 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(compressed_spectral_loss(ref, ref), torch.zeros(2), atol=1e-7)
    base = compressed_spectral_loss(est, ref)
    assert (base > 0).all()
    torch.testing.assert_close(compressed_spectral_loss(10 * est, 10 * ref), base, rtol=1e-3, atol=1e-6)


def test_spectral_loss_of_a_shrunk_estimate_is_the_closed_form():
    # est = k ref: |S_est|^c = k^c |S_ref|^c and the phase is the same, so both terms are
    # (1 - k^c)^2 mean |S_ref|^{2c}, and the normalised loss is (1 - k^c)^2 at every resolution
    from scoreaudio.losses import compressed_spectral_loss

    ref, k, c = _speechlike(), 0.5, 0.3
    loss = compressed_spectral_loss(k * ref, ref, compression=c, eps=1e-14)
    torch.testing.assert_close(loss, torch.full((2,), (1 - k**c) ** 2), rtol=2e-3, atol=0)


def test_spectral_loss_has_finite_gradients_at_silence_and_refuses_bad_shapes():
    from scoreaudio.losses import compressed_spectral_loss

    est = torch.zeros(2, 1, 4000, requires_grad=True)
    compressed_spectral_loss(est, _speechlike()).sum().backward()
    assert torch.isfinite(est.grad).all()
    with pytest.raises(ValueError, match="one shape"):
        compressed_spectral_loss(torch.zeros(2, 1, 100), torch.zeros(2, 1, 99))
    with pytest.raises(ValueError, match="longer than 512"):
        compressed_spectral_loss(torch.zeros(1, 1, 300), torch.zeros(1, 1, 300))
