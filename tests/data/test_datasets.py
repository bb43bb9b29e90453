"""Noise colours, SNR mixing, SegmentDataset keys/crops/normalisation, build_datasets."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from scoreaudio.config import compose
from scoreaudio.data.datasets import (
    NoiseMixer,
    SegmentDataset,
    brown_noise,
    build_datasets,
    mix_at_snr,
    pink_noise,
    white_noise,
)
from scoreaudio.data.manifest import AudioMeta
from scoreaudio.errors import DataError

try:
    from corpus_fixtures import make_voicebank_demand, tone
except ImportError:  # tests/ imported as a package
    from tests.corpus_fixtures import make_voicebank_demand, tone

SR = 16000


def _snr(clean, noisy):
    noise = noisy.astype(np.float64) - clean.astype(np.float64)
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))


def _slope(x):
    """Least-squares slope of log10 power vs log10 frequency (Welch), 20 Hz - 4 kHz."""
    from scipy.signal import welch

    f, p = welch(x, fs=SR, nperseg=4096)
    band = (f > 20) & (f < 4000)
    return np.polyfit(np.log10(f[band]), np.log10(p[band]), 1)[0]


@pytest.mark.parametrize("fn,slope", [(white_noise, 0.0), (pink_noise, -1.0), (brown_noise, -2.0)])
def test_noise_colours(fn, slope):
    x = fn(4 * SR, np.random.default_rng(0))
    assert x.shape == (4 * SR,)
    assert np.sqrt(np.mean(x**2)) == pytest.approx(1.0, rel=1e-9)
    assert _slope(x) == pytest.approx(slope, abs=0.15)
    assert np.array_equal(x, fn(4 * SR, np.random.default_rng(0)))


@pytest.mark.parametrize("snr", [-5.0, 0.0, 7.5, 20.0, 40.0])
def test_mix_at_snr_is_exact(snr):
    rng = np.random.default_rng(1)
    clean = tone(1.0, SR, seed=3)
    for noise in (white_noise(SR, rng), 0.01 * pink_noise(SR, rng), 30 * brown_noise(SR, rng)):
        noisy = mix_at_snr(clean, noise, snr)
        assert noisy.dtype == np.float32
        assert abs(_snr(clean, noisy) - snr) < 0.01  # far inside the 0.1 dB promise


def test_mix_at_snr_edge_cases():
    rng = np.random.default_rng(0)
    noise = white_noise(1000, rng)
    silent = np.zeros(1000, dtype=np.float32)
    out = mix_at_snr(silent, noise, 10.0)  # documented: as if clean were -25 dBFS speech
    achieved = 10 * np.log10(10 ** (-25 / 10) / np.mean(out.astype(np.float64) ** 2))
    assert achieved == pytest.approx(10.0, abs=0.01)
    with pytest.raises(DataError, match="all zero"):
        mix_at_snr(tone(0.1, SR), np.zeros(1600), 5.0)
    with pytest.raises(DataError, match="shape"):
        mix_at_snr(tone(0.1, SR), np.ones(10), 5.0)


def test_noise_mixer_generated_and_folder(tmp_path):
    with pytest.raises(DataError, match="valid: white, pink, brown"):
        NoiseMixer(kinds=["purple"])
    with pytest.raises(DataError, match="no source"):
        NoiseMixer(kinds=[])
    with pytest.raises(DataError, match="not found"):
        NoiseMixer(kinds=[], folder=tmp_path / "nope")
    (tmp_path / "noise").mkdir()
    with pytest.raises(DataError, match="no audio"):
        NoiseMixer(kinds=[], folder=tmp_path / "noise")
    # a 0.1 s 44.1 kHz recording: resampled and looped to the clean length
    sf.write(str(tmp_path / "noise" / "hum.wav"), tone(0.1, 44100, seed=5), 44100)
    mixer = NoiseMixer(kinds=[], folder=tmp_path / "noise", snr_db_min=5, snr_db_max=5, sample_rate=SR)
    clean = tone(0.5, SR, seed=1)
    noisy, snr = mixer.mix(clean, np.random.default_rng(0))
    assert snr == 5 and noisy.shape == clean.shape and abs(_snr(clean, noisy) - 5) < 0.01
    seg = mixer.noise(SR, np.random.default_rng(0))
    assert np.allclose(seg[:1600], seg[1600:3200], atol=1e-6)  # looped with the recording's period
    mixer = NoiseMixer(["white", "pink"], snr_db_min=0, snr_db_max=20)
    draws = [mixer.mix(clean, np.random.default_rng(s))[1] for s in range(50)]
    assert 0 <= min(draws) and max(draws) <= 20 and np.std(draws) > 3
    cfg = compose(
        None, ["data.noise_mix.kinds=[pink]", "data.noise_mix.snr_db_min=3", "data.noise_mix.snr_db_max=4"]
    )
    m2 = NoiseMixer.from_config(cfg.data.noise_mix, SR)
    assert m2.kinds == ["pink"] and (m2.snr_db_min, m2.snr_db_max) == (3.0, 4.0)


def _write(path, x, sr=SR, subtype="FLOAT"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype=subtype)
    return AudioMeta(path.stem, str(path), len(x) / sr, sr, None, None, "train")


@pytest.fixture()
def files(tmp_path):
    long = tone(1.0, SR, seed=1) * 0.2  # 16000 samples, peak 0.1
    short = tone(0.25, 22050, seed=2)  # 22.05 kHz: resampled on load
    return [_write(tmp_path / "long.wav", long), _write(tmp_path / "short.wav", short, 22050)], long


def test_int_key_is_a_deterministic_centre_crop(files):
    metas, long = files
    ds = SegmentDataset(metas, SR, 0.5, normalize="none")
    a = ds[0]["clean"]
    assert a.shape == (1, 8000) and a.dtype == torch.float32 and set(ds[0]) == {"clean"}
    np.testing.assert_allclose(a[0].numpy(), long[4000:12000], atol=1e-7)
    assert torch.equal(a, ds[0]["clean"])


def test_tuple_key_draws_from_the_seed(files):
    metas, long = files
    ds = SegmentDataset(metas, SR, 0.5, normalize="none")
    a, b = ds[(0, 123)]["clean"], ds[(0, 123)]["clean"]
    assert torch.equal(a, b)
    offsets = {int(np.argmin(np.abs(long[:8001] - ds[(0, s)]["clean"][0, 0].item()))) for s in range(10)}
    assert len(offsets) > 3  # different seeds, different crops


def test_short_files_are_padded(files):
    metas, _ = files
    ds = SegmentDataset(metas, SR, 0.5, normalize="none")
    x = ds[1]["clean"][0]
    assert x.shape == (8000,) and x[:3900].abs().max() > 0.1 and x[4100:].abs().max() == 0
    whole = SegmentDataset(metas, SR, None, normalize="none")[1]["clean"]
    assert whole.shape == (1, 4000)  # 0.25 s at 16 kHz


def test_peak_and_rms_normalisation(files):
    metas, _ = files
    x = SegmentDataset(metas, SR, 0.5, normalize="peak", peak_level=0.9)[0]["clean"]
    assert x.abs().max().item() == pytest.approx(0.9, rel=1e-5)
    y = SegmentDataset(metas, SR, 0.5, normalize="rms", rms_db=-25.0)[0]["clean"]
    assert 20 * np.log10(y.pow(2).mean().sqrt().item()) == pytest.approx(-25.0, abs=0.01)
    with pytest.raises(DataError, match="normalize"):
        SegmentDataset(metas, SR, 0.5, normalize="loud")


def test_quiet_crop_is_not_boosted_into_loud_noise(tmp_path):
    x = np.concatenate([1e-3 * tone(1.0, SR, seed=4), tone(1.0, SR, seed=5)])  # 60 dB quieter first second
    m = _write(tmp_path / "q.wav", x)
    ds = SegmentDataset([m], SR, 0.5, max_boost_db=20.0)
    crop = SegmentDataset([m], SR, 0.5)._gain(x[:8000], x)
    assert crop == pytest.approx(0.9 / np.abs(x).max() * 10, rel=1e-6)  # capped at +20 dB over the file gain
    assert ds[0]["clean"].abs().max().item() == pytest.approx(0.9, rel=1e-4)


def test_pairs_share_one_gain_from_the_noisy_signal(tmp_path):
    from scoreaudio.audio.io import load

    root = make_voicebank_demand(tmp_path / "vb")
    cfg = compose(None, ["data.dataset=voicebank_demand", f"data.root={root}", "data.segment_seconds=0.2"])
    ds = build_datasets(cfg)["train"]
    item = ds[0]  # the middle 0.2 s of the first pair
    c, n = item["clean"][0].numpy(), item["noisy"][0].numpy()
    m = ds.metas[0]
    raw_c, raw_n = load(m.path, SR)[0][0].numpy(), load(m.noisy_path, SR)[0][0].numpy()
    T = min(len(raw_c), len(raw_n))
    start = (T - 3200) // 2
    g = 0.9 / np.abs(raw_n[start : start + 3200]).max()  # the noisy peak sets the one gain
    np.testing.assert_allclose(n, g * raw_n[start : start + 3200], atol=1e-5)
    np.testing.assert_allclose(c, g * raw_c[start : start + 3200], atol=1e-5)
    assert np.abs(c).max() < 0.9  # the clean peak is not normalised on its own
    assert ds[(0, 7)]["noisy"].abs().max().item() == pytest.approx(0.9, rel=1e-5)


def test_mixer_in_dataset_int_and_tuple_keys(files):
    metas, _ = files
    ds = SegmentDataset(
        metas, SR, 0.5, normalize="none", noise_mixer=NoiseMixer(["white"], snr_db_min=10, snr_db_max=10)
    )
    a = ds[0]
    assert set(a) == {"clean", "noisy"} and torch.equal(a["noisy"], ds[0]["noisy"])
    assert abs(_snr(a["clean"][0].numpy(), a["noisy"][0].numpy()) - 10) < 0.01
    b, c = ds[(0, 1)], ds[(0, 2)]
    assert torch.equal(b["noisy"], ds[(0, 1)]["noisy"]) and not torch.equal(b["noisy"], c["noisy"])


def test_silent_files_are_skipped_in_training_and_kept_in_eval(tmp_path, files):
    metas, _ = files
    silent = _write(tmp_path / "silent.wav", np.zeros(SR, dtype=np.float32))
    ds = SegmentDataset([silent] + metas, SR, 0.5)
    x = ds[0]["clean"]  # skips to the next file deterministically
    assert ds.skipped_silent == 1 and torch.equal(x, SegmentDataset(metas, SR, 0.5)[0]["clean"])
    ev = SegmentDataset([silent] + metas, SR, 0.5, train=False)
    assert ev[0]["clean"].abs().max() == 0 and ev.skipped_silent == 0
    with pytest.raises(DataError, match="silent"):
        SegmentDataset([silent], SR, 0.5)[(0, 1)]
    with pytest.raises(IndexError):
        ds[5]


def test_unreadable_metas_are_left_out(files):
    metas, _ = files
    bad = AudioMeta("bad", "/nowhere/bad.wav", 0.0, 0, None, None, "train")
    ds = SegmentDataset(metas + [bad], SR, 0.5)
    assert len(ds) == 2 and ds.skipped_unreadable == 1


def test_build_datasets_synthetic_with_noise(tmp_path):
    cfg = compose(
        None,
        [
            f"data.root={tmp_path}",
            "data.synthetic.train_utterances=3",
            "data.synthetic.valid_utterances=2",
            "data.synthetic.test_utterances=1",
            "data.synthetic.utterance_seconds=0.5",
            "data.segment_seconds=0.25",
            "data.noise_mix.enabled=true",
        ],
    )
    ds = build_datasets(cfg)
    assert [len(ds[s]) for s in ("train", "valid", "test")] == [3, 2, 1]
    assert ds["train"].train and not ds["valid"].train
    item = ds["train"][(2, 99)]
    assert item["clean"].shape == item["noisy"].shape == (1, 4000)
    assert torch.equal(ds["valid"][1]["noisy"], ds["valid"][1]["noisy"])
    loader = torch.utils.data.DataLoader([ds["train"][(i, i)] for i in range(3)], batch_size=3)
    assert next(iter(loader))["clean"].shape == (3, 1, 4000)


def test_build_datasets_without_usable_files(tmp_path):
    root = tmp_path / "recs"
    root.mkdir()
    (root / "a.wav").write_bytes(b"garbage" * 20)
    cfg = compose(
        None, ["data.dataset=folder", f"data.root={root}", "data.valid_fraction=0", "data.test_fraction=0"]
    )
    with pytest.raises(DataError, match="no usable training files"):
        build_datasets(cfg)
