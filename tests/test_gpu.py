"""CUDA checks, run with ``pytest -m gpu`` on a machine with a GPU (tools/gpu_check.sh does);
skipped cleanly without CUDA.

* a training step on CUDA under bf16 autocast gives a finite loss and finite gradients;
* the samplers on CUDA match their CPU results in distribution (exact Gaussian scores) and shape;
* a tiny model's forward on the CPU and on CUDA agree within float32 tolerance.
"""

from __future__ import annotations

import math

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on a GPU machine)"),
]

MU = torch.tensor([1.5, -0.5])
STD = torch.tensor([0.5, 2.0])


def gaussian_score(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact score of N(MU, diag(STD^2)) perturbed by sigma, x: (B, 2)."""
    var = STD.to(x) ** 2 + sigma[:, None] ** 2
    return -(x - MU.to(x)) / var


@pytest.fixture
def no_tf32():
    """Strict float32 on CUDA (TF32 would add ~1e-3 relative error to the comparisons)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def build(preset: str):
    from scoreaudio.audio.representation import build_representation
    from scoreaudio.config import compose
    from scoreaudio.nn.build import build_score_model

    rep = "waveform" if preset.startswith("wavenet") else "stft"
    cfg = compose("quickstart", [f"model={preset}", f"representation={rep}"])
    representation = build_representation(cfg.representation)
    torch.manual_seed(0)
    return cfg, representation, build_score_model(cfg.model, representation.channels)


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere (the zero-initialised output layers too), so every layer matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
    return model


@pytest.mark.parametrize("preset", ["unet2d_tiny", "wavenet_tiny"])
def test_training_step_bf16_autocast_is_finite(preset):
    from scoreaudio.losses import dsm_loss
    from scoreaudio.noise import sample_sigmas_log_uniform

    dev = torch.device("cuda")
    cfg, rep, model = build(preset)
    model = randomise(model).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator(device=dev).manual_seed(0)
    wav = 0.1 * torch.randn(4, 1, 8000, device=dev, generator=g)
    before = [p.detach().clone() for p in model.parameters()]
    x0 = rep.encode(wav)
    sigma = sample_sigmas_log_uniform(4, 0.002, 20.0, generator=g, device=dev)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = dsm_loss(model, x0, sigma, generator=g)
    assert loss.shape == (4,)
    loss = loss.float()
    assert torch.isfinite(loss).all(), loss
    loss.mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("preset,shape", [("unet2d_tiny", (2, 2, 256, 33)), ("wavenet_tiny", (2, 1, 4000))])
def test_cpu_and_cuda_forward_agree(preset, shape, no_tf32):
    _, _, model = build(preset)
    model = randomise(model).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=g)
    sigma = torch.tensor([0.05, 2.0])
    with torch.inference_mode():
        out_cpu = model(x, sigma)
        out_gpu = model.cuda()(x.cuda(), sigma.cuda()).cpu()
    assert out_gpu.shape == out_cpu.shape
    rel = ((out_gpu - out_cpu).norm() / out_cpu.norm()).item()
    assert rel < 1e-4, rel


@pytest.mark.parametrize("name,nfe", [("ald", 301), ("pc", 201), ("heun", 41)])
def test_samplers_on_cuda_match_cpu_in_distribution(name, nfe):
    from scoreaudio.sampling import get_sampler, sampler_ladder

    sigma_min, sigma_max = 0.01, 20.0
    plan = sampler_ladder(name, nfe, sigma_min, sigma_max)
    results = {}
    for dev in ("cpu", "cuda"):
        g = torch.Generator(device=dev).manual_seed(0)
        x_init = MU.to(dev) + (STD.to(dev) ** 2 + sigma_max**2).sqrt() * torch.randn(
            20000, 2, generator=g, device=dev
        )
        with torch.inference_mode():
            x = get_sampler(name)(gaussian_score, x_init, plan.sigmas.to(dev), generator=g, **plan.kwargs)
        assert x.device.type == dev and x.shape == (20000, 2) and torch.isfinite(x).all()
        results[dev] = x.cpu()
    # Different random streams: compare moments (standard error of a mean ~ 2/sqrt(20000) = 0.014).
    for stat in (lambda t: t.mean(0), lambda t: t.std(0)):
        assert torch.allclose(stat(results["cuda"]), stat(results["cpu"]), rtol=0.05, atol=0.06)
    assert torch.allclose(results["cuda"].mean(0), MU, atol=0.06)


@pytest.mark.parametrize("sampler", ["ald", "pc", "heun"])
def test_generation_on_cuda_has_the_cpu_shape(sampler):
    from types import SimpleNamespace

    from scoreaudio.generation import draw_samples

    cfg, rep, model = build("unet2d_tiny")
    sigmas = {"sigma_min": 0.002, "sigma_max": 10.0, "num_levels": 50, "sigma_data": 0.5}
    sampler_cfg = SimpleNamespace(name=sampler, steps=12, snr=0.16, final_denoise=True)
    shapes = {}
    for dev in ("cpu", "cuda"):
        m = model.to(dev).eval()
        wavs = draw_samples(
            m,
            rep,
            sigmas,
            sampler_cfg,
            num=2,
            seconds=0.25,
            sample_rate=16000,
            device=torch.device(dev),
            generator=torch.Generator(device=dev).manual_seed(0),
        )
        assert torch.isfinite(wavs).all() and wavs.abs().max() <= 0.99 + 1e-6
        shapes[dev] = tuple(wavs.shape)
    assert shapes["cpu"] == shapes["cuda"] == (2, 1, math.ceil(0.25 * 16000))
