"""SpeechDenoiser: Tweedie vs closed forms, a small trained model, shapes, chunking, bad inputs, the CLI."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from scoreaudio.audio.representation import Waveform
from scoreaudio.data.datasets import mix_at_snr, white_noise
from scoreaudio.data.synthetic import synthesize_utterance
from scoreaudio.denoise import SpeechDenoiser, chunk_starts, estimate_noise_std, noise_std_from_snr, tweedie
from scoreaudio.errors import AudioError, ScoreAudioError
from scoreaudio.losses import dsm_loss
from scoreaudio.metrics import si_sdr
from scoreaudio.nn.score_model import ScoreModel
from scoreaudio.noise import NoiseLevels

SR = 16000
LEVELS = NoiseLevels(sigma_min=0.002, sigma_max=5.0, num_levels=100, sigma_data=1.0)  # num_levels: unused


def _sdr(est, ref) -> float:
    est, ref = (torch.as_tensor(np.asarray(a, np.float64)) for a in (est, ref))
    return float(si_sdr(est, ref))


def _noisy(seconds=2.0, snr_db=5.0, seed=1, index=5000, speaker=1):
    clean = synthesize_utterance(speaker, index, seconds, SR).astype(np.float64)
    noisy = mix_at_snr(clean, white_noise(len(clean), np.random.default_rng(seed)), snr_db)
    return clean, noisy.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Analytic: Gaussian data with the exact score
# --------------------------------------------------------------------------------------------
class GaussianScore(nn.Module):
    """Exact score of x ~ N(mu, diag(var)) perturbed at sigma: -(y - mu) / (var + sigma^2)."""

    def __init__(self, mu, var):
        super().__init__()
        self.register_buffer("mu", torch.as_tensor(mu, dtype=torch.float32))
        self.register_buffer("var", torch.as_tensor(var, dtype=torch.float32))

    def forward(self, y, sigma, cond=None):
        s2 = sigma.reshape(-1, *([1] * (y.ndim - 1))) ** 2
        return -(y - self.mu) / (self.var + s2)


def test_tweedie_is_the_exact_mmse_estimate_for_gaussian_data():
    g = torch.Generator().manual_seed(0)
    D, n = 6, 20000
    mu = torch.linspace(-1, 1, D)
    var = torch.linspace(0.2, 2.0, D)
    sigma = torch.tensor([0.3, 0.7, 1.5]).repeat_interleave(n // 3 + 1)[:n]
    x = mu + var.sqrt() * torch.randn(n, D, generator=g)
    y = x + sigma[:, None] * torch.randn(n, D, generator=g)
    est = tweedie(GaussianScore(mu, var), y, sigma)
    closed = mu + var / (var + sigma[:, None] ** 2) * (y - mu)  # E[x | y] for Gaussians
    torch.testing.assert_close(est, closed, rtol=1e-5, atol=1e-5)
    # ... and its mean squared error is the posterior variance var sigma^2 / (var + sigma^2)
    for s in (0.3, 0.7, 1.5):
        m = sigma == s
        mse = (est[m] - x[m]).square().mean(0)
        torch.testing.assert_close(mse, var * s * s / (var + s * s), rtol=0.06, atol=0.0)
    # a float sigma and a conditioning tensor pass straight through
    torch.testing.assert_close(
        tweedie(lambda a, b, c: -a / (1 + b[:, None] ** 2) + 0 * c, y[:4], 0.5, y[:4]), y[:4] / 1.25
    )


@pytest.mark.parametrize("channels", [1, 2])
def test_denoiser_with_exact_gaussian_score_is_the_wiener_gain_through_chunks(channels):
    """White Gaussian 'speech' of variance v, given noise level: every sample must come out
    exactly v / (v + sigma^2) * y, including at chunk seams (the overlap-add weights sum to 1)."""
    v, s = 0.04, 0.1
    den = SpeechDenoiser(
        GaussianScore(0.0, v),
        Waveform(),
        LEVELS,
        SR,
        normalize="none",
        chunk_seconds=0.1,
        overlap_seconds=0.02,
        batch_size=3,
    )  # the smallest chunk
    rng = np.random.default_rng(0)
    y = rng.normal(0.0, math.sqrt(v + s * s), size=(channels, 8642)).astype(np.float32)
    y = y[0] if channels == 1 else y
    out = den(y, SR, noise_std=s)
    np.testing.assert_allclose(out, v / (v + s * s) * y, rtol=1e-4, atol=1e-6)


def test_chunk_starts_cover_the_signal():
    assert chunk_starts(100, 200, 150) == [0]
    starts = chunk_starts(1000, 256, 192, unit=64)
    assert starts[0] == 0 and starts[-1] % 64 == 0 and starts[-1] + 256 >= 1000
    assert all(b - a <= 192 for a, b in zip(starts, starts[1:]))


# --------------------------------------------------------------------------------------------
# Noise level
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("snr_db", [0.0, 5.0, 10.0, 20.0])
def test_noise_estimate_within_2db_at_known_snr(snr_db):
    errs = []
    for k in range(3):
        clean, noisy = _noisy(2.5, snr_db, seed=10 + k, index=7000 + k, speaker=k)
        true = float(np.std(noisy - clean))
        errs.append(20 * math.log10(estimate_noise_std(noisy, SR) / true))
    assert max(abs(e) for e in errs) < 2.0, errs


def test_noise_from_snr_and_silence():
    clean, noisy = _noisy(2.0, 10.0)
    true = float(np.std(noisy - clean))
    assert noise_std_from_snr(noisy, 10.0) == pytest.approx(true, rel=0.05)
    assert estimate_noise_std(np.zeros(16000), SR) == 0.0
    assert estimate_noise_std(np.full(10, 0.1), SR) >= 0.0  # shorter than a frame: no crash


# --------------------------------------------------------------------------------------------
# A small model trained here: does denoising actually work?
# --------------------------------------------------------------------------------------------
class TinyConv(nn.Module):
    """F(x, c_noise) for waveforms: conv -> sigma-dependent gain/bias -> tanh -> conv (61-sample field)."""

    def __init__(self, in_channels: int = 1, channels: int = 16, kernel: int = 31):
        super().__init__()
        self.inp = nn.Conv1d(in_channels, channels, kernel, padding=kernel // 2)
        self.film = nn.Linear(1, 2 * channels)
        self.out = nn.Conv1d(channels, 1, kernel, padding=kernel // 2)

    def forward(self, x, c_noise):
        a, b = self.film(c_noise[:, None]).chunk(2, dim=1)
        return self.out(torch.tanh(self.inp(x) * (1 + a[..., None]) + b[..., None]))


def train_tiny_waveform_model(steps: int = 150, seed: int = 0) -> ScoreModel:
    """DSM (the package's loss, EDM preconditioning) on peak-normalised synthetic speech; ~10 s on a CPU."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    clips = [synthesize_utterance(i % 6, 10 + i, 1.5, SR) for i in range(12)]
    data = torch.stack([torch.from_numpy(0.9 * c / np.abs(c).max()).float() for c in clips])[:, None]
    model = ScoreModel(TinyConv(), sigma_data=float(data.std()))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch, seg = 8, 2000
    for _ in range(steps):
        idx = torch.randint(0, data.shape[0], (batch,), generator=g).tolist()
        off = torch.randint(0, data.shape[-1] - seg, (batch,), generator=g).tolist()
        x0 = torch.stack([data[i, :, o : o + seg] for i, o in zip(idx, off)])
        sigma = torch.exp(torch.empty(batch).uniform_(math.log(0.005), math.log(0.5), generator=g))
        loss = dsm_loss(model, x0, sigma).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def trained():
    return SpeechDenoiser(train_tiny_waveform_model(), Waveform(), LEVELS, SR)


def test_trained_model_improves_si_sdr_at_5db(trained):
    """The real check: with a learned score, Tweedie must beat the noisy input by a margin the
    untrained network (F random, D ~ c_skip y: a pure gain, SI-SDR unchanged) cannot reach.
    A posterior sample loses to the posterior mean (its error is about twice the MMSE), so it is only
    asked to beat the input."""
    untrained = SpeechDenoiser(ScoreModel(TinyConv(), sigma_data=0.2).eval(), Waveform(), LEVELS, SR)
    for k in range(2):
        clean, noisy = _noisy(2.0, 5.0, seed=20 + k, index=5100 + k, speaker=k)
        base = _sdr(noisy, clean)
        assert _sdr(trained(noisy, SR), clean) > base + 4.0
        assert _sdr(untrained(noisy, SR), clean) < base + 1.0
        g = torch.Generator().manual_seed(0)
        lang = trained(noisy, SR, method="posterior", generator=g)
        assert _sdr(lang, clean) > base
        lang2 = trained(noisy, SR, method="posterior", generator=torch.Generator().manual_seed(0))
        np.testing.assert_array_equal(lang, lang2)  # seeded: reproducible
    # the true noise level, given either way, works as well as the estimate
    true = float(np.std(noisy - clean))
    assert _sdr(trained(noisy, SR, noise_std=true), clean) > base + 4.0
    assert _sdr(trained(noisy, SR, snr_db=5.0), clean) > base + 4.0


@pytest.mark.parametrize("kind", ["numpy32", "numpy64", "torch32", "torch16", "stereo_numpy", "stereo_torch"])
def test_shape_dtype_and_type_are_preserved(trained, kind):
    _, noisy = _noisy(0.6)
    if kind.startswith("stereo"):
        noisy = np.stack([noisy, 0.5 * noisy[::-1]])
    if kind == "numpy64":
        noisy = noisy.astype(np.float64)
    x = torch.from_numpy(noisy) if "torch" in kind else noisy
    if kind == "torch16":
        x = x.half()
    out = trained(x, SR)
    assert type(out) is type(x) and out.shape == x.shape and out.dtype == x.dtype
    if isinstance(out, torch.Tensor):
        assert out.device == x.device
        out = out.float().numpy()
    assert np.isfinite(out).all()
    # loudness is restored: same order of magnitude as the input, not the normalised level
    assert 0.2 < np.abs(out).max() / np.abs(np.asarray(x, np.float32)).max() < 2.0


@pytest.mark.parametrize("rate", [8000, 48000])
def test_other_sample_rates_are_resampled_in_and_out(trained, rate):
    from scoreaudio.audio.io import resample

    clean, noisy = _noisy(1.0)
    y = resample(noisy, SR, rate)
    out = trained(y, rate)
    assert out.shape == y.shape and out.dtype == y.dtype
    ref = resample(clean.astype(np.float32), SR, rate)
    if rate == 48000:  # band-limited clean speech: the gain must survive the round trip
        assert _sdr(out, ref) > _sdr(y, ref) + 2.0
    else:
        assert np.isfinite(out).all()


def test_chunked_matches_whole_at_the_seams(trained):
    _, noisy = _noisy(3.0)
    whole = SpeechDenoiser(trained.model, Waveform(), LEVELS, SR, chunk_seconds=10.0)(noisy, SR)
    chunked = SpeechDenoiser(
        trained.model, Waveform(), LEVELS, SR, chunk_seconds=0.5, overlap_seconds=0.1, batch_size=3
    )(noisy, SR)
    assert _sdr(chunked, whole) > 30.0
    hop = int(0.4 * SR)
    for seam in range(hop, len(noisy) - hop, hop):  # around every overlap region
        sl = slice(seam - 200, seam + int(0.1 * SR) + 200)
        rel = np.linalg.norm(chunked[sl] - whole[sl]) / np.linalg.norm(whole[sl])
        assert rel < 0.05, (seam, rel)


def test_chunked_stft_model(tiny_run):
    den = SpeechDenoiser.from_pretrained(tiny_run, device="cpu", chunk_seconds=0.5, overlap_seconds=0.1)
    whole = SpeechDenoiser.from_pretrained(tiny_run, device="cpu", chunk_seconds=10.0)
    _, noisy = _noisy(1.5)
    a, b = den(noisy, SR), whole(noisy, SR)
    assert a.shape == noisy.shape and np.isfinite(a).all()
    assert _sdr(a, b) > 20.0  # global attention sees different context per chunk; the seams must not click
    short = den(noisy[:160], SR)  # 10 ms: padded past the STFT's reflect-padding limit
    assert short.shape == (160,) and np.isfinite(short).all()


# --------------------------------------------------------------------------------------------
# Odd inputs
# --------------------------------------------------------------------------------------------
def test_silent_input_is_returned_unchanged_with_a_warning(trained):
    with pytest.warns(UserWarning, match="silent"):
        out = trained(np.zeros(8000, np.float32), SR)
    assert np.array_equal(out, np.zeros(8000, np.float32))
    _, noisy = _noisy(0.5)
    stereo = np.stack([noisy, np.zeros_like(noisy)])
    with pytest.warns(UserWarning, match=r"channel\(s\) \[1\]"):
        out = trained(stereo, SR)
    assert np.isfinite(out).all() and np.array_equal(out[1], stereo[1]) and not np.array_equal(out[0], noisy)


def test_bad_inputs_are_clear_errors(trained):
    _, noisy = _noisy(0.5)
    bad = noisy.copy()
    bad[100] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        trained(bad, SR)
    with pytest.raises(AudioError, match="no samples"):
        trained(np.zeros(0, np.float32), SR)
    with pytest.raises(AudioError, match="floating-point"):
        trained((noisy * 32767).astype(np.int16), SR)
    with pytest.raises(AudioError, match="shape"):
        trained(noisy.reshape(1, 1, -1), SR)
    with pytest.raises(ScoreAudioError, match="unknown method"):
        trained(noisy, SR, method="wiener")
    with pytest.raises(ScoreAudioError, match="does not fit this checkpoint.*tweedie, posterior"):
        trained(noisy, SR, method="conditional")
    with pytest.raises(ScoreAudioError, match="steps"):
        trained(noisy, SR, method="posterior", steps=1)
    with pytest.raises(ScoreAudioError, match="replaced by 'posterior'"):
        trained(noisy, SR, method="langevin")
    with pytest.raises(ScoreAudioError, match="not both"):
        trained(noisy, SR, noise_std=0.1, snr_db=5)
    with pytest.raises(ScoreAudioError, match="sample_rate"):
        trained(noisy, 0)


def test_tiny_and_clipped_inputs_work(trained):
    clean, noisy = _noisy(1.0)
    out = trained(noisy[:160], SR)  # 10 ms
    assert out.shape == (160,) and np.isfinite(out).all()
    clipped = np.clip(4.0 * noisy, -1.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings for a loud input
        out = trained(clipped, SR)
    assert out.shape == clipped.shape and np.isfinite(out).all() and np.abs(out).max() < 2.0


def test_conditional_model_is_the_default_and_uses_the_noisy_input_as_cond():
    calls = []

    class Cond(nn.Module):
        def forward(self, x, sigma, cond=None):
            calls.append(cond is not None and cond.shape == x.shape)
            return -(x - 0.8 * cond) / (sigma.reshape(-1, 1, 1) ** 2 + 0.01)

    den = SpeechDenoiser(Cond(), Waveform(), LEVELS, SR, conditional=True)
    assert den.default_method == "predictive"
    _, noisy = _noisy(0.5)
    # predictive: D(sigma_max z, sigma_max, y) = x (1 - s^2/(s^2+0.01)) + 0.8 y s^2/(s^2+0.01) ~ 0.8 y at s = 5
    one = den(noisy, SR)
    assert np.abs(one - 0.8 * noisy).max() < 0.01 * np.abs(noisy).max()
    assert np.array_equal(one, den(noisy, SR))  # deterministic without a generator
    for method in ("refined", "conditional"):
        a = den(noisy, SR, method=method, steps=6, generator=torch.Generator().manual_seed(1))
        b = den(noisy, SR, method=method, steps=6, generator=torch.Generator().manual_seed(1))
        assert np.array_equal(a, b) and np.isfinite(a).all()
    assert calls and all(calls)
    with pytest.raises(ScoreAudioError, match="does not fit this checkpoint.*predictive"):
        den(noisy, SR, method="tweedie")
    with pytest.raises(ScoreAudioError, match="exactly one network call"):
        den(noisy, SR, method="predictive", steps=3)


# --------------------------------------------------------------------------------------------
# Files and the command line
# --------------------------------------------------------------------------------------------
def test_denoise_file_keeps_rate_channels_and_subtype(trained, tmp_path):
    _, noisy = _noisy(0.5)
    src = tmp_path / "in.wav"
    sf.write(src, np.stack([noisy, 0.5 * noisy], axis=1) * 0.5, 22050, subtype="PCM_24")
    dst = trained.denoise_file(src, tmp_path / "out" / "in.flac")
    info = sf.info(dst)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (22050, 2, "PCM_24", len(noisy))


def test_cli_denoises_a_folder_tree_and_refuses_to_overwrite(tiny_run, tmp_path, capsys):
    from scoreaudio.cli import main

    src = tmp_path / "noisy"
    _, noisy = _noisy(0.4)
    for rel in ("a.wav", "sub/b.flac", "sub/deeper/c.wav"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(src / rel, noisy, SR)
    (src / "notes.txt").write_text("not audio")
    out = tmp_path / "clean"
    args = ["denoise", str(src), "-o", str(out), "--checkpoint", str(tiny_run), "--device", "cpu"]
    assert main(args) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.wav", "sub/b.flac", "sub/deeper/c.wav"]
    before = (out / "a.wav").stat().st_mtime_ns
    assert main(args) == 2  # exists: refused before any compute
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "a.wav").stat().st_mtime_ns == before
    assert main(args + ["--overwrite", "--method", "tweedie", "--snr-db", "5"]) == 0
    # a single file to a file name, and a missing input
    assert (
        main(
            [
                "denoise",
                str(src / "a.wav"),
                "-o",
                str(tmp_path / "one.wav"),
                "--checkpoint",
                str(tiny_run),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert sf.info(tmp_path / "one.wav").frames == len(noisy)
    missing = str(tmp_path / "missing.wav")
    assert main(["denoise", missing, "-o", str(out), "--checkpoint", str(tiny_run)]) == 2


@pytest.mark.slow
def test_trained_checkpoint_improves_si_sdr(tmp_path):
    """The same check through the project's training loop and from_pretrained (minutes on a CPU):
    wavenet_tiny on waveforms, 150 steps; measured about +3.5 dB (tweedie) at 5 dB white noise."""
    from conftest import train_tiny

    run = train_tiny(
        tmp_path / "wave",
        "model=wavenet_tiny",
        "representation=waveform",
        "train.steps=150",
        "train.val_every=150",
        "train.ckpt_every=150",
        "train.log_every=50",
    )
    den = SpeechDenoiser.from_pretrained(run, device="cpu")
    clean, noisy = _noisy(2.0, 5.0, seed=20, index=5100, speaker=0)
    assert _sdr(den(noisy, SR), clean) > _sdr(noisy, clean) + 2.0


def test_chunk_defaults_to_the_training_crop_unless_the_network_is_local(tiny_run):
    """tiny_run: unet2d_tiny with GroupNorm over the whole input, trained on 0.5 s crops."""
    from omegaconf import OmegaConf

    from scoreaudio.denoise import LOCAL_CHUNK_SECONDS
    from scoreaudio.nn.build import is_length_independent

    den = SpeechDenoiser.from_pretrained(tiny_run, device="cpu")
    assert den.chunk_seconds == 0.5 and den.overlap_seconds == pytest.approx(0.125)
    assert SpeechDenoiser.from_pretrained(tiny_run, device="cpu", chunk_seconds=3.0).chunk_seconds == 3.0
    local = OmegaConf.create({"backbone": "stft_unet", "unet2d": {"norm": "frame"}})
    assert is_length_independent(local) and LOCAL_CHUNK_SECONDS == 4.0
    assert not is_length_independent(OmegaConf.create({"backbone": "unet2d", "unet2d": {}}))  # old: global
    assert is_length_independent(OmegaConf.create({"backbone": "wavenet"}))


def test_a_chunk_too_short_for_the_model_is_refused_in_the_api():
    with pytest.raises(
        ScoreAudioError, match=r"chunk_seconds=0.001 is too short.*smallest usable value is 0.1 s"
    ):
        SpeechDenoiser(
            GaussianScore(0.0, 0.04), Waveform(), LEVELS, SR, chunk_seconds=0.001, overlap_seconds=0.0
        )


def test_a_noise_level_above_the_model_range_is_said_not_silently_clamped():
    den = SpeechDenoiser(GaussianScore(0.0, 0.04), Waveform(), LEVELS, SR, normalize="none")
    y = np.random.default_rng(0).normal(0.0, 0.2, 4000).astype(np.float32)
    with pytest.warns(UserWarning, match="above what this model was trained for"):
        den(y, SR, noise_std=1e6)
