"""The noise-map calibration against a prior whose Tweedie estimate is known in closed form."""

from __future__ import annotations

import pytest
import torch

from scoreaudio.audio.representation import Waveform
from scoreaudio.calibration import calibrate_noise_map


class GaussianPrior:
    """Data x_t ~ N(0, a_t^2) independently: E[x | x + s z]_t = a_t^2 / (a_t^2 + s^2) y_t. The std a_t
    differs between the two halves of the signal, so the estimate is not a pure gain (SI-SDR would
    not see it) and depends on s. ``miscale`` plays a model that reads the noise level ``miscale``
    times larger in its own units."""

    def __init__(self, a: float, miscale: float = 1.0):
        self.a, self.miscale = a, miscale

    def denoise(self, y, sigma):
        s = (sigma / self.miscale).view(-1, 1, 1)
        return self.a**2 / (self.a**2 + s**2) * y


def _two_level_std(length: int) -> torch.Tensor:
    a = torch.full((length,), 0.2)
    a[length // 2 :] = 0.02
    return a


@pytest.mark.parametrize("miscale,expected", [(1.0, 1.0), (2.0, 2.0), (0.5, 0.5)])
def test_the_calibrated_scale_is_the_one_the_prior_needs(miscale, expected):
    g = torch.Generator().manual_seed(0)
    a = _two_level_std(4000)
    clean = a * torch.randn(6, 1, 4000, generator=g)
    out = calibrate_noise_map(
        GaussianPrior(a, miscale),
        Waveform(),
        clean,
        sigma_min=1e-4,
        sigma_max=10.0,
        scales=(0.5, 1.0, 2.0),
        generator=g,
    )
    assert out["noise_map_scale"] == expected
    best = out["si_sdr_db"][expected]
    assert all(best >= v for v in out["si_sdr_db"].values())
    # the Wiener filter at the right level beats the input by a wide margin
    assert best > out["input_si_sdr_db"] + 2.0


def test_bad_clean_batch_is_refused():
    with pytest.raises(ValueError, match=r"\(N, 1, T\)"):
        calibrate_noise_map(
            GaussianPrior(0.1), Waveform(), torch.zeros(4, 4000), sigma_min=1e-3, sigma_max=1.0
        )


def test_training_stores_the_scale_in_the_last_checkpoint(tmp_path):
    import json

    from conftest import train_tiny

    from scoreaudio.calibration import DEFAULT_SCALES
    from scoreaudio.utils.checkpoint import load_checkpoint_dict

    run = train_tiny(tmp_path / "run")
    scale = load_checkpoint_dict(run / "last.pt")["sigmas"]["noise_map_scale"]
    assert scale in DEFAULT_SCALES
    assert json.loads((run / "sigmas.json").read_text())["noise_map_scale"] == scale
    off = train_tiny(tmp_path / "off", "train.calibrate_noise_map=false")
    assert "noise_map_scale" not in load_checkpoint_dict(off / "last.pt")["sigmas"]
