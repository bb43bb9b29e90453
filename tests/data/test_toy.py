"""The 2-D mixture of NCSN Sec. 3.2: exact scores, Langevin vs annealed Langevin, and trained MLPs."""

from __future__ import annotations

import pytest
import torch

from scoreaudio.data.toy import GaussianMixture, ncsn_mixture
from scoreaudio.losses import dsm_loss, ssm_loss
from scoreaudio.nn.mlp import ScoreMLP
from scoreaudio.noise import geometric_sigmas, sample_sigmas_log_uniform
from scoreaudio.sampling import annealed_langevin, langevin

TRUE_W = 0.2  # weight of the component at (-5, -5)
# NCSN Sec. 3.2 / Fig. 3 settings: uniform starts on [-8, 8]^2, eps = 0.1; plain Langevin T = 1000;
# annealed: 10 geometric levels 20 -> 1, T = 100 per level.
N_SAMPLES = 4000


def _uniform_starts(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, 2, generator=g) * 16.0 - 8.0


def test_mixture_score_is_the_gradient_of_log_prob():
    mix = ncsn_mixture()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * 6
    for sigma in (0.0, 0.5, torch.linspace(0.1, 10.0, 64)):
        xr = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(mix.log_prob(xr, sigma).sum(), xr)
        assert torch.allclose(mix.score(x, sigma), grad, atol=1e-4)
    # log_prob integrates to 1 (grid over [-12, 12]^2)
    t = torch.linspace(-12, 12, 241)
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), dim=-1).reshape(-1, 2)
    mass = mix.log_prob(grid).exp().sum() * (t[1] - t[0]) ** 2
    assert float(mass) == pytest.approx(1.0, abs=1e-3)


def test_mixture_sampling_and_weights():
    mix = ncsn_mixture()
    x = mix.sample(20000, torch.Generator().manual_seed(1))
    w = mix.recovered_weights(x)
    assert float(w[0]) == pytest.approx(TRUE_W, abs=0.01) and float(w.sum()) == pytest.approx(1.0)
    again = mix.sample(20000, torch.Generator().manual_seed(1))
    assert torch.equal(x, again)
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture(torch.zeros(2, 2), torch.tensor([0.5, 0.6]))


def test_ncsn_experiment_langevin_fails_annealed_langevin_recovers_weights():
    mix = ncsn_mixture()
    g = torch.Generator().manual_seed(2)
    x0 = _uniform_starts(N_SAMPLES, g)
    plain = langevin(mix.score, x0, 0.0, n_steps=1000, step_size=0.1, generator=g)
    annealed = annealed_langevin(
        mix.score,
        x0,
        geometric_sigmas(10, 1.0, 20.0),
        n_steps_each=100,
        eps=0.1,
        final_denoise=False,
        generator=g,
    )
    w_plain, w_ald = float(mix.recovered_weights(plain)[0]), float(mix.recovered_weights(annealed)[0])
    print(f"\nweight of (-5,-5) (true {TRUE_W}): plain Langevin {w_plain:.3f}, annealed Langevin {w_ald:.3f}")
    # plain Langevin keeps the ~1/2 : 1/2 split of the uniform starts (the basins' border is the anti-diagonal)
    assert abs(w_plain - TRUE_W) > 0.2
    assert abs(w_ald - TRUE_W) < 0.05


def _train(loss_name: str, steps: int, batch: int, seed: int) -> ScoreMLP:
    torch.manual_seed(seed)  # parameter init (tests may seed; library code never does)
    g = torch.Generator().manual_seed(seed)
    mix = ncsn_mixture()
    model = ScoreMLP(2, hidden=64, layers=3, sigma_data=5.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 - k / steps)
    for _ in range(steps):
        x0 = mix.sample(batch, g)
        sigma = sample_sigmas_log_uniform(batch, 0.5, 25.0, generator=g)
        if loss_name == "dsm":
            loss = dsm_loss(model, x0, sigma, generator=g).mean()
        else:
            loss = ssm_loss(model, x0, sigma, variance_reduction=True, generator=g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model


@pytest.mark.parametrize("loss_name,steps,batch", [("dsm", 800, 512), ("ssm_vr", 1200, 256)])
def test_trained_mlp_recovers_mixture_weights(loss_name, steps, batch):
    mix = ncsn_mixture()
    model = _train(loss_name, steps, batch, seed=0)
    g = torch.Generator().manual_seed(3)
    with torch.inference_mode():
        x = annealed_langevin(
            model,
            _uniform_starts(2000, g),
            geometric_sigmas(10, 1.0, 20.0),
            n_steps_each=100,
            eps=0.1,
            final_denoise=False,
            generator=g,
        )
    w = float(mix.recovered_weights(x)[0])
    print(f"\n{loss_name}-MLP ({steps} steps x {batch}): weight of (-5,-5) {w:.3f} (true {TRUE_W})")
    assert abs(w - TRUE_W) < 0.1
