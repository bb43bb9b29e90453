"""Toy 2-D demonstration of score matching and (annealed) Langevin dynamics (NCSN, Sec. 3.2, Fig. 3).

Data: p(x) = 1/5 N((-5,-5), I) + 4/5 N((5,5), I). The script draws one figure with
  (a) the true density, (b) its score field, (c) plain Langevin samples with the exact score,
  (d) annealed Langevin samples with the exact score, (e)/(f) annealed Langevin samples from a small
  MLP trained with DSM and with SSM-VR,
and prints the mixture weights each sampler recovers (plain Langevin keeps the ~1/2 : 1/2 split of
its uniform starts; annealing recovers 1/5 : 4/5).

    python tools/toy2d.py --out toy2d.png [--steps 1500] [--samples 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

try:
    import scoreaudio  # noqa: F401
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoreaudio.data.toy import GaussianMixture, ncsn_mixture
from scoreaudio.losses import dsm_loss, ssm_loss
from scoreaudio.nn.mlp import ScoreMLP
from scoreaudio.noise import geometric_sigmas, sample_sigmas_log_uniform
from scoreaudio.sampling import annealed_langevin, langevin

# NCSN Sec. 3.2 sampling settings (NCSN step convention: x += eps_i/2 * s + sqrt(eps_i) z)
LANGEVIN = {"n_steps": 1000, "step_size": 0.1}
ALD_SIGMAS = geometric_sigmas(10, 1.0, 20.0)  # sigma_1 = 20 ... sigma_10 = 1
ALD = {"n_steps_each": 100, "eps": 0.1, "final_denoise": False}
BOX = 8.0  # uniform starts on [-8, 8]^2


def train(mix: GaussianMixture, loss_name: str, steps: int, batch: int, seed: int) -> tuple[ScoreMLP, float]:
    """Fit a ScoreMLP with DSM or SSM-VR, sigma log-uniform on [0.5, 25], Adam with linear decay."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = ScoreMLP(2, hidden=64, layers=3, sigma_data=5.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 - k / steps)
    recent: list[float] = []
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
        recent = (recent + [float(loss.detach())])[-100:]
    return model, sum(recent) / len(recent)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="toy2d.png", help="output PNG path")
    p.add_argument("--steps", type=int, default=1500, help="training steps for each MLP")
    p.add_argument("--batch", type=int, default=256, help="training batch size")
    p.add_argument("--samples", type=int, default=2000, help="samples per panel")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.steps <= 0 or args.samples <= 0 or args.batch <= 0:
        p.error("--steps, --batch and --samples must be positive")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    torch.set_num_threads(1)  # (B, 2) tensors and a 64-wide MLP: extra threads only add overhead
    mix = ncsn_mixture()
    g = torch.Generator().manual_seed(args.seed)
    starts = torch.rand(args.samples, 2, generator=g) * 2 * BOX - BOX
    panels: dict[str, torch.Tensor] = {}
    t0 = time.time()
    panels["Langevin, exact score"] = langevin(mix.score, starts, 0.0, generator=g, **LANGEVIN)
    panels["annealed Langevin, exact score"] = annealed_langevin(
        mix.score, starts, ALD_SIGMAS, generator=g, **ALD
    )
    for loss_name, label in (("dsm", "DSM"), ("ssm_vr", "SSM-VR")):
        t = time.time()
        model, final_loss = train(mix, loss_name, args.steps, args.batch, args.seed)
        print(
            f"trained {label}-MLP: {args.steps} steps in {time.time() - t:.1f}s, final loss {final_loss:.4f}"
        )
        with torch.inference_mode():
            panels[f"annealed Langevin, {label}-MLP"] = annealed_langevin(
                model, starts, ALD_SIGMAS, generator=g, **ALD
            )

    print(f"recovered mixture weights, (-5,-5) : (5,5), true {mix.weights[0]:.2f} : {mix.weights[1]:.2f}")
    weights = {}
    for name, x in panels.items():
        w = mix.recovered_weights(x)
        weights[name] = w
        print(f"  {name:34s} {float(w[0]):.3f} : {float(w[1]):.3f}")

    # --- figure ---------------------------------------------------------------------------
    lim = 11.0
    t = torch.linspace(-lim, lim, 300)
    xx, yy = torch.meshgrid(t, t, indexing="xy")
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    dens = mix.log_prob(grid).exp().reshape(xx.shape)
    tq = torch.linspace(-lim, lim, 23)
    qx, qy = torch.meshgrid(tq, tq, indexing="xy")
    qgrid = torch.stack([qx.reshape(-1), qy.reshape(-1)], dim=1)
    sc = mix.score(qgrid)
    mag = sc.norm(dim=1, keepdim=True)
    unit = sc / mag.clamp_min(1e-12)

    fig, axes = plt.subplots(2, 3, figsize=(13, 8.6))
    ax = axes[0, 0]
    ax.imshow(dens.numpy(), extent=(-lim, lim, -lim, lim), origin="lower", cmap="viridis")
    ax.set_title("(a) data density p(x)")
    ax = axes[0, 1]
    levels = (float(dens.max()) * torch.tensor([0.02, 0.1, 0.3, 0.6])).tolist()
    ax.contour(xx.numpy(), yy.numpy(), dens.numpy(), levels=levels, colors="0.7", linewidths=0.8)
    ax.quiver(
        qx.numpy(),
        qy.numpy(),
        unit[:, 0].reshape(qx.shape).numpy(),
        unit[:, 1].reshape(qx.shape).numpy(),
        mag.log1p().reshape(qx.shape).numpy(),
        cmap="magma",
        scale=30,
        width=0.004,
    )
    ax.set_title(r"(b) score $\nabla_x \log p(x)$ (direction; colour: log |s|)")
    letters = "cdef"
    for k, (ax, (name, x)) in enumerate(zip(axes.reshape(-1)[2:], panels.items())):
        ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=2, alpha=0.4)
        w = weights[name]
        ax.set_title(
            f"({letters[k]}) {name}\nweights {float(w[0]):.2f} : {float(w[1]):.2f} (true 0.20 : 0.80)",
            fontsize=10,
        )
    for ax in axes.reshape(-1):
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    fig.suptitle(
        "1/5 N((-5,-5), I) + 4/5 N((5,5), I): Langevin vs annealed Langevin (NCSN Sec. 3.2)\n"
        "Langevin: eps 0.1, 1000 steps; annealed: sigma 20 -> 1 (10 levels, 100 steps each), "
        "samples shown at sigma = 1"
    )
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"wrote {out} ({time.time() - t0:.1f}s)")


if __name__ == "__main__":
    main()
