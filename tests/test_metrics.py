"""Metrics against known values; missing packages and silent inputs."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from scoreaudio.data.synthetic import synthesize_utterance
from scoreaudio.metrics import (
    MetricUnavailable,
    MetricWarning,
    estoi,
    log_spectral_distance,
    mean_ci95,
    pesq_wb,
    si_sdr,
)

SR = 16000


def _speech(seconds=2.0, index=0):
    return synthesize_utterance(index % 6, 3000 + index, seconds, SR).astype(np.float64)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 30.0])
def test_si_sdr_of_signal_plus_orthogonal_noise_is_the_snr(snr_db):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8000, generator=g, dtype=torch.float64)
    x -= x.mean(-1, keepdim=True)
    n = torch.randn(3, 8000, generator=g, dtype=torch.float64)
    n -= n.mean(-1, keepdim=True)
    n -= (n * x).sum(-1, keepdim=True) / x.square().sum(-1, keepdim=True) * x  # orthogonal to x
    n *= (x.square().sum(-1, keepdim=True) / n.square().sum(-1, keepdim=True) / 10 ** (snr_db / 10)).sqrt()
    expected = torch.full((3,), snr_db, dtype=torch.float64)
    torch.testing.assert_close(si_sdr(x + n, x), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(si_sdr(7.0 * (x + n), x), si_sdr(x + n, x))  # scale-invariant


def test_log_spectral_distance_known_values():
    x = torch.as_tensor(_speech(1.0))
    assert float(log_spectral_distance(x, x, SR)) == 0.0
    # a gain g shifts every bin's log power by 20 log10 g dB (bins above the eps floor)
    d = float(log_spectral_distance(2.0 * x + 1e-3, x + 5e-4, SR))
    assert d == pytest.approx(20 * math.log10(2.0), abs=0.05)
    batch = log_spectral_distance(torch.stack([x, 0.5 * x]), torch.stack([x, x]), SR)
    assert batch.shape == (2,) and batch[0] == 0 and batch[1] > 5.9
    g = torch.Generator().manual_seed(0)
    noisy = x + 0.05 * torch.randn(x.shape[-1], dtype=torch.float64, generator=g)
    assert float(log_spectral_distance(noisy, x, SR)) > 1.0


def test_mean_ci95():
    s = mean_ci95([1.0, 2.0, 3.0, float("nan")])
    assert s["n"] == 3 and s["mean"] == 2.0
    assert s["ci_high"] - 2.0 == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)  # t(0.975, 2)
    assert mean_ci95([])["n"] == 0 and math.isnan(mean_ci95([5.0])["ci_low"])


def test_pesq_and_estoi_order_and_resampling():
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    clean = _speech(3.0)
    rng = np.random.default_rng(0)
    mild = clean + 0.01 * rng.standard_normal(len(clean))
    harsh = clean + 0.1 * rng.standard_normal(len(clean))
    p_self, p_mild, p_harsh = pesq_wb(clean, clean, SR), pesq_wb(mild, clean, SR), pesq_wb(harsh, clean, SR)
    assert p_self > 4.4 and p_self > p_mild > p_harsh >= 1.0
    e_self, e_mild, e_harsh = estoi(clean, clean, SR), estoi(mild, clean, SR), estoi(harsh, clean, SR)
    assert e_self == pytest.approx(1.0, abs=1e-3) and e_self > e_mild > e_harsh
    from scoreaudio.audio.io import resample

    up = resample(clean, SR, 48000), resample(mild, SR, 48000)
    assert pesq_wb(up[1], up[0], 48000) == pytest.approx(p_mild, abs=0.1)  # resampled to 16 kHz inside


def test_silent_or_short_inputs_are_nan_with_a_reason():
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    z = np.zeros(SR)
    x = _speech(1.0)
    with pytest.warns(MetricWarning, match="silent reference"):
        assert math.isnan(pesq_wb(x, z, SR))
    with pytest.warns(MetricWarning, match="silent estimate"):
        assert math.isnan(estoi(z, x, SR))
    with pytest.warns(MetricWarning, match="pesq"):
        assert math.isnan(pesq_wb(x[:2000], x[:2000], SR))  # shorter than 1/4 s
    with pytest.warns(MetricWarning, match="too little speech"):
        assert math.isnan(estoi(x[:2000], x[:2000], SR))


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pesq", None)  # import fails as if not installed
    with pytest.raises(MetricUnavailable, match=r"pip install 'scoreaudio\[eval\]'"):
        pesq_wb(np.ones(SR), np.ones(SR), SR)


def test_dnsmos_runs_offline_when_installed():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("speechmos")
    from scoreaudio.metrics import dnsmos

    d = dnsmos(0.5 * _speech(2.0), SR)
    assert set(d) == {"ovrl", "sig", "bak", "p808"} and all(1.0 <= v <= 5.0 for v in d.values())
    with pytest.warns(MetricWarning, match="silent"):
        assert all(math.isnan(v) for v in dnsmos(np.zeros(SR), SR).values())


def test_si_sdr_of_a_silent_estimate_is_minus_infinity():
    """An all-zero (or constant) estimate has no projection on the reference: it is the worst
    possible output, not 0 dB (which would rank it above a -5 dB estimate in a summary)."""
    x = torch.as_tensor(_speech(0.5))
    assert si_sdr(torch.zeros_like(x), x).item() == -math.inf
    assert si_sdr(torch.full_like(x, 0.3), x).item() == -math.inf  # zero after removing the mean
    batch = si_sdr(torch.stack([torch.zeros_like(x), x + 0.01]), torch.stack([x, x]))
    assert batch[0] == -math.inf and batch[1] > 40
    assert si_sdr(0.01 * (x + 0.01), x).item() > 40  # quiet is not silent


def test_mean_ci95_counts_what_it_leaves_out():
    s = mean_ci95([1.0, float("nan"), -math.inf, 3.0, float("nan")])
    assert (s["n"], s["n_nan"], s["n_inf"], s["mean"]) == (2, 2, 1, 2.0)
    assert mean_ci95([])["n_nan"] == 0
