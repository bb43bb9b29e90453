"""Noise sources: corpus layouts (MUSAN, DEMAND, WHAM!, DNS, folder), hash splits, babble, weights,
SNR, reverberation, bad input and the config path (scoreaudio/data/noise_sources.py, reverb.py)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO
from omegaconf import OmegaConf

from scoreaudio.config import NoiseSourceConfig, compose
from scoreaudio.data.datasets import NoiseMixer, white_noise
from scoreaudio.data.manifest import AudioMeta
from scoreaudio.data.noise_sources import (
    BabbleNoise,
    GeneratedNoise,
    RecordedNoise,
    WeightedSources,
    build_sources,
    noise_files,
    noise_group,
    noise_split,
)
from scoreaudio.errors import ConfigError, DataError

SR = 16000


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------
def _sine(freq: float, seconds: float = 0.2, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _wav(path, x=None, sr: int = SR):
    """Write ``x`` (default: 100 samples of a sine) as 32-bit float WAV (16-bit FLAC); creates folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "PCM_16" if path.suffix == ".flac" else "FLOAT"
    sf.write(str(path), _sine(440.0, 100 / sr, sr) if x is None else x, sr, subtype=subtype)
    return path


def _spec(**kw):
    """A NoiseSourceConfig entry as the config holds it (a typed DictConfig)."""
    return OmegaConf.merge(OmegaConf.structured(NoiseSourceConfig), kw)


def _peak_hz(x: np.ndarray, sr: int = SR) -> float:
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1.0 / sr)[np.argmax(mag)])


def _names(files, root):
    return sorted(f.relative_to(root).as_posix() for f in files)


def _snr(clean, noisy):
    noise = noisy.astype(np.float64) - clean.astype(np.float64)
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))


# ------------------------------------------------------------------------------------------
# Layouts
# ------------------------------------------------------------------------------------------
@pytest.fixture()
def musan(tmp_path):
    root = tmp_path / "musan"
    for i in range(30):
        _wav(root / "noise" / "free-sound" / f"noise-free-sound-{i:04d}.wav")
    for i in range(4):
        _wav(root / "noise" / "sound-bible" / f"noise-sound-bible-{i:04d}.wav")
    for i in range(20):
        _wav(root / "music" / "fma" / f"music-fma-{i:04d}.wav")
    for i in range(3):
        _wav(root / "speech" / "librivox" / f"speech-librivox-{i:04d}.wav")
    (root / "README").write_text("MUSAN")
    return root


def test_musan_subsets(musan):
    default = _names(noise_files("musan", musan, split="all"), musan)
    assert len(default) == 54 and all(n.startswith(("noise/", "music/")) for n in default)
    speech = _names(noise_files("musan", musan, split="all", subsets=("speech",)), musan)
    assert speech == [f"speech/librivox/speech-librivox-{i:04d}.wav" for i in range(3)]
    both = noise_files("musan", musan, split="all", subsets=("noise", "speech"))
    assert len(both) == 37
    with pytest.raises(DataError, match="unknown subset.*'sfx'"):
        noise_files("musan", musan, split="all", subsets=("noise", "sfx"))
    only_speech = musan.parent / "speech_only"
    _wav(only_speech / "speech" / "us-gov" / "speech-us-gov-0000.wav")
    with pytest.raises(DataError, match="none of"):
        noise_files("musan", only_speech)  # default subsets noise+music are absent


def test_musan_splits_by_file_not_by_collection(musan):
    # MUSAN numbers distinct recordings; treating "-0000" as a piece number would put a whole
    # collection (all of free-sound) on one side of the split
    train = _names(noise_files("musan", musan, split="train"), musan)
    test = _names(noise_files("musan", musan, split="test"), musan)
    assert not set(train) & set(test) and len(train) + len(test) == 54
    for coll in ("noise/free-sound/", "music/fma/"):
        assert any(n.startswith(coll) for n in train) and any(n.startswith(coll) for n in test)
    assert _names(noise_files("musan", musan, split="valid"), musan) == test


@pytest.fixture()
def demand(tmp_path):
    root = tmp_path / "demand"
    for c in range(1, 17):
        _wav(root / "DKITCHEN" / f"ch{c:02d}.wav")
    _wav(root / "OOFFICE_16k" / "ch01.wav", _sine(300.0, 0.1))
    _wav(root / "OOFFICE_48k" / "ch01.wav", _sine(900.0, 0.1, 48000), 48000)  # the same scene at 48 kHz
    for env in ("NPARK", "TBUS", "STRAFFIC", "PCAFETER", "SPSQUARE", "OHALLWAY", "NRIVER", "TMETRO"):
        _wav(root / env / "ch01.wav")
    (root / "notes").mkdir()
    return root


def test_demand_one_channel_per_environment_prefers_16k(demand):
    files = noise_files("demand", demand, split="all")
    assert [f.name for f in files] == ["ch01.wav"] * 10
    envs = sorted(f.parent.name for f in files)
    assert "OOFFICE_16k" in envs and "OOFFICE_48k" not in envs and "DKITCHEN" in envs
    office = next(f for f in files if f.parent.name == "OOFFICE_16k")
    seg = RecordedNoise("demand", [office], SR).segment(1600, np.random.default_rng(0))
    assert abs(_peak_hz(seg) - 300.0) < 15  # the 16 kHz recording was read, not the 48 kHz one
    assert [f.parent.name for f in noise_files("demand", demand, split="all", channel=7)] == ["DKITCHEN"]
    with pytest.raises(DataError, match="ch17.wav"):
        noise_files("demand", demand, split="all", channel=17)


def test_demand_splits_by_environment(demand):
    train = noise_files("demand", demand, split="train")
    test = noise_files("demand", demand, split="test")
    assert train and test and not set(train) & set(test) and len(train) + len(test) == 10
    for f in train + test:  # the environment name (without _16k) decides, not the file path
        want = "test" if f in test else "train"
        assert noise_split(f.parent.name.replace("_16k", "")) == want
    assert noise_files("demand", demand, split="valid") == test


@pytest.fixture()
def wham(tmp_path):
    root = tmp_path / "wham_noise"
    stereo = np.stack([_sine(400.0, 0.25, 8000), _sine(1200.0, 0.25, 8000)], axis=1)  # L 400 Hz, R 1200 Hz
    for part, names in (
        ("tr", ["011a010d_1.59_20do010c_-1.59", "01aa010k_0.89_409c0211_-0.89"]),
        ("cv", ["011o0303_0.43_206a010x_-0.43"]),
        ("tt", ["050a050a_0.03_440c020w_-0.03"]),
    ):
        for n in names:
            _wav(root / part / f"{n}.wav", stereo, 8000)
    return root


def test_wham_uses_its_own_split(wham):
    assert {f.parent.name for f in noise_files("wham", wham, split="train")} == {"tr"}
    assert len(noise_files("wham", wham, split="train")) == 2
    assert [f.parent.name for f in noise_files("wham", wham, split="valid")] == ["cv"]
    assert [f.parent.name for f in noise_files("wham", wham, split="test")] == ["tt"]
    assert len(noise_files("wham", wham, split="all")) == 4
    only_tr = wham.parent / "wham_tr_only"
    _wav(only_tr / "tr" / "a.wav")
    with pytest.raises(DataError, match="no tt folder"):
        noise_files("wham", only_tr, split="test")


def test_wham_stereo_8k_comes_back_mono_at_16k(wham):
    src = RecordedNoise("wham", noise_files("wham", wham, split="test"), SR)
    seg = src.segment(2400, np.random.default_rng(0))
    assert seg.shape == (2400,) and seg.dtype == np.float64
    assert len(src._cache.get(src.files[0])) == 4000  # 0.25 s at 16 kHz, resampled from 8 kHz
    mag = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    f = np.fft.rfftfreq(len(seg), 1.0 / SR)
    low, high = mag[np.abs(f - 400) < 20].max(), mag[np.abs(f - 1200) < 20].max()
    assert abs(_peak_hz(seg) - 400) < 20 or abs(_peak_hz(seg) - 1200) < 20  # the rate is right
    assert 0.5 < low / high < 2.0  # both channels are in the mix (averaged, not channel 0 only)
    assert np.max(np.abs(seg)) < 0.55  # mean of the channels, not their sum


def test_dns_layouts(tmp_path):
    names = [
        "-7hGrmdsrWs",
        "AirConditioner_abc",
        "door_Freesound_validated_x",
        "Typing_k",
        "xZ3_qq",
        "Bus_station",
        "kettle_boil",
        "fan_hum",
    ]
    plain, dns13, dns45 = tmp_path / "plain", tmp_path / "dns13", tmp_path / "dns45"
    for n in names:
        _wav(plain / f"{n}.wav")
        _wav(dns13 / "datasets" / "noise" / f"{n}.wav")
        _wav(dns45 / "datasets_fullband" / "noise_fullband" / f"{n}.wav")
    for root in (dns13, dns45):  # the rest of a challenge checkout is not noise
        _wav(root / "datasets" / "clean" / "book_00001_chp_0001_reader_00001.wav")
        _wav(root / "datasets_fullband" / "clean_fullband" / "read_speech" / "x.wav")
    want = sorted(f"{n}.wav" for n in names)
    for root in (plain, dns13, dns45):
        files = noise_files("dns", root, split="all")
        assert sorted(f.name for f in files) == want
        assert all("clean" not in f.as_posix() for f in files)
        train, test = noise_files("dns", root, split="train"), noise_files("dns", root, split="test")
        assert not set(train) & set(test) and sorted(f.name for f in train + test) == want
    # the split depends on the file name under the noise folder, not on the checkout layout
    assert [f.name for f in noise_files("dns", dns13, split="test")] == [
        f.name for f in noise_files("dns", plain, split="test")
    ]


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "noises"
    words = [
        "rain",
        "wind",
        "cafe",
        "street",
        "office",
        "fan",
        "hum",
        "crowd",
        "car",
        "train",
        "sea",
        "birds",
        "printer",
        "keyboard",
        "vacuum",
        "dishes",
        "tv",
        "radio",
        "siren",
        "engine",
    ]
    for w in words:
        _wav(root / f"{w}.wav")
        _wav(root / "more" / f"{w}_room.flac")
    for i in range(10):
        _wav(root / "long" / f"track-{i:03d}.wav")
    (root / "list.txt").write_text("not audio")
    return root


def test_folder_hash_split(folder):
    every = noise_files("folder", folder, split="all")
    assert len(every) == 50 and all(f.suffix in (".wav", ".flac") for f in every)
    train, test = noise_files("folder", folder, split="train"), noise_files("folder", folder, split="test")
    assert train and test and not set(train) & set(test)
    assert sorted(train + test) == sorted(every)
    assert noise_files("folder", folder, split="train") == train  # stable across calls
    assert noise_files("folder", folder, split="valid") == test
    pieces = [f for f in every if f.parent.name == "long"]
    assert len(pieces) == 10 and (set(pieces) <= set(train) or set(pieces) <= set(test))
    assert {noise_group(f"long/track-{i:03d}.wav") for i in range(10)} == {"long/track"}
    assert noise_group("long/track-003.wav", pieces=False) == "long/track-003"
    assert noise_files("folder", folder, split="train", test_share=0.0) == sorted(every)


def test_hash_split_share(tmp_path):
    names = [f"rec/{i:x}_{i * 7919 % 1000}x.wav" for i in range(2000)]
    shares = [np.mean([noise_split(n, s) == "test" for n in names]) for s in (0.1, 0.3, 0.5)]
    assert shares[0] == pytest.approx(0.1, abs=0.03) and shares[1] == pytest.approx(0.3, abs=0.03)
    assert shares[2] == pytest.approx(0.5, abs=0.03)
    with pytest.raises(DataError, match="test_share"):
        noise_files("folder", tmp_path, split="train", test_share=30)


# ------------------------------------------------------------------------------------------
# Babble
# ------------------------------------------------------------------------------------------
FREQ = {f"spk{s}": 300.0 + 150.0 * s for s in range(8)}  # one recognisable sine per speaker


@pytest.fixture()
def speakers(tmp_path):
    metas = []
    for spk, f in FREQ.items():
        for u in range(2):
            p = _wav(tmp_path / "corpus" / spk / f"{spk}_{u}.wav", _sine(f, 0.3, amp=0.3 + 0.2 * u))
            metas.append(AudioMeta(f"{spk}_{u}", str(p), 0.3, SR, spk, None, "train"))
    return metas


def _talkers(x: np.ndarray):
    """Speakers whose sine is in ``x`` (n = 3200: every FREQ falls on an FFT bin)."""
    mag = np.abs(np.fft.rfft(x)) / (len(x) / 2)  # a unit-RMS sine has magnitude sqrt(2)
    f = np.fft.rfftfreq(len(x), 1.0 / SR)
    return {s for s, fs in FREQ.items() if mag[np.argmin(np.abs(f - fs))] > 0.3}


def test_babble_never_uses_the_target_speaker(speakers):
    babble = BabbleNoise(speakers, SR, talkers=(2, 4))
    counts = []
    for seed in range(40):
        x = babble.segment(3200, np.random.default_rng(seed), speaker="spk3")
        present = _talkers(x)
        assert "spk3" not in present
        mag = np.abs(np.fft.rfft(x)) / 1600
        assert mag[np.argmin(np.abs(np.fft.rfftfreq(3200, 1 / SR) - FREQ["spk3"]))] < 1e-3
        counts.append(len(present))
    assert min(counts) >= 2 and max(counts) <= 4 and set(counts) == {2, 3, 4}
    assert np.sqrt(np.mean(x**2)) == pytest.approx(np.sqrt(counts[-1]), rel=0.05)  # each talker unit RMS
    others = set().union(*(_talkers(babble.segment(3200, np.random.default_rng(s))) for s in range(20)))
    assert "spk3" in others  # without a target every speaker can talk


def test_babble_needs_two_speakers(speakers, tmp_path):
    one = [m for m in speakers if m.speaker == "spk0"]
    with pytest.raises(DataError, match="at least 2 speakers"):
        BabbleNoise(one, SR)
    with pytest.raises(DataError, match="at least 2 speakers"):
        build_sources([_spec(kind="babble")], SR)  # no training utterances given
    with pytest.raises(DataError, match="talkers"):
        BabbleNoise(speakers, SR, talkers=(4, 2))
    # unlabelled files count as their own speakers
    unlabelled = [AudioMeta(m.id, m.path, m.duration, SR, None, None, "train") for m in one]
    babble = BabbleNoise(unlabelled, SR, talkers=(2, 2))
    assert babble.speakers == [m.path for m in one]
    assert np.isfinite(babble.segment(3200, np.random.default_rng(0))).all()


# ------------------------------------------------------------------------------------------
# Weights and determinism
# ------------------------------------------------------------------------------------------
@pytest.fixture()
def two_folders(tmp_path):
    quiet, loud = tmp_path / "quiet", tmp_path / "loud"
    _wav(quiet / "q.wav", _sine(250.0, 0.2, amp=0.1))
    _wav(loud / "l.wav", _sine(2000.0, 0.2, amp=0.9))
    return quiet, loud


def test_weights_set_the_draw_shares(two_folders):
    quiet, loud = two_folders
    ws = build_sources(
        [
            _spec(kind="folder", root=str(quiet), weight=3, split="all"),
            _spec(kind="folder", root=str(loud), weight=1, split="all"),
        ],
        SR,
    )
    assert np.allclose(ws.weights, [0.75, 0.25])
    rng = np.random.default_rng(0)
    shares = np.mean([np.max(np.abs(ws.segment(400, rng))) < 0.5 for _ in range(400)])
    assert shares == pytest.approx(0.75, abs=0.06)
    only = build_sources(
        [
            _spec(kind="folder", root=str(quiet), weight=1, split="all"),
            _spec(kind="folder", root=str(quiet.parent / "missing"), weight=0),
        ],
        SR,
    )
    assert len(only.sources) == 1  # a zero weight turns a source off (its root is not even read)
    for bad in ([-1, 2], [0, 0]):
        with pytest.raises(DataError, match="weights"):
            build_sources([_spec(kind="white", weight=bad[0]), _spec(kind="pink", weight=bad[1])], SR)
    with pytest.raises(DataError, match="no source"):
        build_sources([], SR)
    with pytest.raises(DataError, match="unknown noise source kind"):
        build_sources([_spec(kind="violet")], SR)


def test_same_seed_same_segment(two_folders, speakers):
    quiet, _ = two_folders
    ws = build_sources(
        [
            _spec(kind="folder", root=str(quiet), split="all"),
            _spec(kind="pink"),
            _spec(kind="babble", talkers=[2, 3]),
        ],
        SR,
        train_metas=speakers,
    )
    assert [type(s) for s in ws.sources] == [RecordedNoise, GeneratedNoise, BabbleNoise]
    for seed in range(6):
        a = ws.segment(3200, np.random.default_rng(seed), speaker="spk1")
        assert np.array_equal(a, ws.segment(3200, np.random.default_rng(seed), speaker="spk1"))
    assert not np.array_equal(
        ws.segment(3200, np.random.default_rng(1)), ws.segment(3200, np.random.default_rng(2))
    )
    mixer = NoiseMixer(sources=ws, snr_db_min=0, snr_db_max=10, sample_rate=SR)
    clean = _sine(200.0, 0.2)
    t1, n1, s1 = mixer.mix_pair(clean, np.random.default_rng(5), speaker="spk1")
    t2, n2, s2 = mixer.mix_pair(clean, np.random.default_rng(5), speaker="spk1")
    assert s1 == s2 and np.array_equal(n1, n2) and np.array_equal(t1, t2)


# ------------------------------------------------------------------------------------------
# SNR and reverberation
# ------------------------------------------------------------------------------------------
def test_mix_pair_recording_snr(tmp_path):
    hiss = 0.01 * white_noise(4800, np.random.default_rng(1)).astype(np.float32)
    _wav(tmp_path / "n" / "hum.wav", _sine(120.0, 0.3, amp=0.05) + hiss)
    mixer = NoiseMixer(kinds=[], folder=tmp_path / "n", snr_db_min=-5, snr_db_max=-5, sample_rate=SR)
    clean = _sine(440.0, 0.5, amp=0.3)
    for seed in range(5):
        target, noisy, snr = mixer.mix_pair(clean, np.random.default_rng(seed))
        assert snr == -5.0 and np.array_equal(target, clean) and noisy.shape == clean.shape
        assert abs(_snr(clean, noisy) + 5.0) < 0.01


@pytest.fixture()
def burst():
    """0.3 s of white noise then 0.3 s of silence (float32)."""
    x = 0.3 * white_noise(int(0.3 * SR), np.random.default_rng(3))
    return np.concatenate([x, np.zeros(int(0.3 * SR))]).astype(np.float32)


def test_reverb_target_is_aligned_and_noisy_has_a_tail(burst):
    from scipy.signal import correlate

    mixer = NoiseMixer(
        ["white"], snr_db_min=60, snr_db_max=60, sample_rate=SR, reverb_prob=1.0, reverb_rt60=(0.4, 0.6)
    )
    for seed in range(3):
        target, noisy, _ = mixer.mix_pair(burst, np.random.default_rng(seed))
        assert target.shape == noisy.shape == burst.shape and target.dtype == burst.dtype
        assert np.max(np.abs(target - burst)) > 0.01  # the early reflections changed it
        xc = correlate(target.astype(np.float64), burst.astype(np.float64), mode="full")
        assert np.argmax(np.abs(xc)) - (len(burst) - 1) == 0  # aligned to the dry speech
        end = int(0.36 * SR)  # 60 ms after the burst: the early part (50 ms) is over
        speech_energy = np.sum(noisy[: int(0.3 * SR)].astype(np.float64) ** 2)
        tail, target_tail = np.sum(noisy[end:].astype(np.float64) ** 2), np.sum(target[end:] ** 2.0)
        assert tail > 1e-4 * speech_energy and target_tail < 1e-6 * tail
    dry = NoiseMixer(["white"], snr_db_min=60, snr_db_max=60, reverb_prob=0.0)
    target, noisy, _ = dry.mix_pair(burst, np.random.default_rng(0))
    assert np.array_equal(target, burst)
    assert np.sum(noisy[int(0.36 * SR) :].astype(np.float64) ** 2) < 1e-4 * np.sum(burst**2.0)  # no tail


def _rt60(rir: np.ndarray) -> float:
    """T20 from Schroeder's backward integral, extrapolated to 60 dB."""
    e = np.cumsum((rir**2)[::-1])[::-1]
    db = 10 * np.log10(e / e[0] + 1e-30)
    return 3.0 * (np.argmax(db < -25) - np.argmax(db < -5)) / SR


def test_reverb_rt60_is_honoured_and_checked(burst):
    from scoreaudio.data.reverb import random_rir

    for seed in range(3):
        # a short RT60 in a large room: the least reverberant room, not the most reverberant one
        assert _rt60(random_rir(np.random.default_rng(seed), SR, (0.1, 0.1))) < 0.3
        assert 0.3 < _rt60(random_rir(np.random.default_rng(seed), SR, (0.6, 0.6))) < 1.2
    r = random_rir(np.random.default_rng(0), SR)
    assert np.max(np.abs(r)) == pytest.approx(1.0)
    assert np.array_equal(r, random_rir(np.random.default_rng(0), SR))  # the rng decides the room
    for bad in ((0.01, 0.5), (0.6, 0.2), (0.2, 5.0)):
        with pytest.raises(DataError, match="reverb_rt60"):
            random_rir(np.random.default_rng(0), SR, bad)
    with pytest.raises(DataError, match="reverb_rt60"):  # at construction, not at the first room mid-training
        NoiseMixer(["white"], reverb_prob=1.0, reverb_rt60=(0.2, 9.0))


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["folder", "musan", "demand", "wham", "dns"])
def test_missing_empty_and_non_audio_folders(tmp_path, kind):
    def fails(root, pattern):
        with pytest.raises(DataError, match=pattern) as e:
            noise_files(kind, root, split="all")
        msg = str(e.value)
        assert "\n" not in msg and str(root) in msg

    fails(tmp_path / "nope", "not found")
    (tmp_path / "empty").mkdir()
    fails(tmp_path / "empty", "expected")
    junk = tmp_path / "junk"
    for sub in ("", "noise/free-sound/", "DKITCHEN/", "tr/", "datasets/noise/"):
        (junk / sub).mkdir(parents=True, exist_ok=True)
        (junk / sub / "readme.txt").write_text("x")
        (junk / sub / "cover.jpg").write_bytes(b"\xff\xd8")
    fails(junk, "expected")
    with pytest.raises(DataError, match="needs a root"):
        noise_files(kind, None)
    with pytest.raises(DataError, match="unknown noise split"):
        noise_files(kind, junk, split="dev")


def test_small_folder_all_in_the_other_split(tmp_path):
    root = tmp_path / "one"
    _wav(root / "only.wav")
    side = noise_split("only.wav")
    other = "train" if side == "test" else "test"
    assert noise_files("folder", root, split=side) == [root / "only.wav"]
    with pytest.raises(DataError, match="1 file.*none in split.*split to all"):
        noise_files("folder", root, split=other)


def test_other_rates_and_stereo_are_read_correctly(tmp_path):
    _wav(tmp_path / "n8k" / "a.wav", _sine(500.0, 0.25, 8000), 8000)
    seg = NoiseMixer(kinds=[], folder=tmp_path / "n8k", sample_rate=SR).noise(3200, np.random.default_rng(0))
    assert seg.shape == (3200,) and abs(_peak_hz(seg) - 500.0) < 10  # resampled, not read as 16 kHz
    stereo = np.stack([_sine(500.0, 0.25), _sine(1500.0, 0.25)], axis=1)
    _wav(tmp_path / "st" / "b.wav", stereo)
    x = RecordedNoise("folder", [tmp_path / "st" / "b.wav"], SR)._cache.get(tmp_path / "st" / "b.wav")
    assert x.ndim == 1 and len(x) == 4000
    np.testing.assert_allclose(x, stereo.mean(axis=1), atol=1e-6)


def test_silent_noise_cannot_be_mixed(tmp_path):
    _wav(tmp_path / "quiet" / "zeros.wav", np.zeros(1600, dtype=np.float32))
    mixer = NoiseMixer(kinds=[], folder=tmp_path / "quiet", sample_rate=SR)
    with pytest.raises(DataError, match="silent") as e:
        mixer.mix_pair(_sine(300.0), np.random.default_rng(0))
    assert "zeros.wav" in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------
# The config path
# ------------------------------------------------------------------------------------------
def test_sources_from_config(tmp_path, folder, speakers):
    cfg = compose(
        None,
        [
            "data.noise_mix.enabled=true",
            (
                f"data.noise_mix.sources=[{{kind: folder, root: '{folder}', weight: 2}}, "
                "{kind: pink, weight: 1}, {kind: babble, weight: 1, talkers: [2, 2]}]"
            ),
            "data.noise_mix.snr_db_min=2",
            "data.noise_mix.snr_db_max=2",
        ],
    )
    spec = cfg.data.noise_mix.sources[0]
    assert spec.split == "train" and spec.test_share == pytest.approx(0.3)  # schema defaults filled in
    mixer = NoiseMixer.from_config(cfg.data.noise_mix, SR, train_metas=speakers)
    assert isinstance(mixer.sources, WeightedSources)
    assert np.allclose(mixer.sources.weights, [0.5, 0.25, 0.25])
    rec, pink, babble = mixer.sources.sources
    assert isinstance(pink, GeneratedNoise) and isinstance(babble, BabbleNoise) and babble.talkers == (2, 2)
    assert sorted(rec.files) == noise_files("folder", folder, split="train")
    clean = _sine(440.0, 0.2, amp=0.3)
    for seed in range(4):
        target, noisy, snr = mixer.mix_pair(clean, np.random.default_rng(seed), speaker="spk0")
        assert snr == 2.0 and abs(_snr(target, noisy) - 2.0) < 0.01
    bench = NoiseMixer.from_config(cfg.data.noise_mix, SR, train_metas=speakers, split="test")
    assert sorted(bench.sources.sources[0].files) == noise_files("folder", folder, split="test")
    bad = compose(None, ["data.noise_mix.sources=[{kind: folder, root: '" + str(tmp_path / "none") + "'}]"])
    with pytest.raises(DataError, match="not found"):
        NoiseMixer.from_config(bad.data.noise_mix, SR)


def test_a_folder_the_sources_do_not_use_is_refused(folder, speakers):
    """With sources set, `folder` only counts through a source's root (the denoiser recipe's
    interpolation); a folder no source names would be dropped silently, so it is an error."""
    used = compose(REPO / "recipes" / "denoiser.yaml", [f"data.noise_mix.folder={folder}"])
    mixer = NoiseMixer.from_config(used.data.noise_mix, SR, train_metas=speakers)
    assert sorted(mixer.sources.sources[-1].files) == noise_files("folder", folder, split="train")
    unused = compose(None, ["data.noise_mix.sources=[{kind: pink}]", f"data.noise_mix.folder={folder}"])
    with pytest.raises(ConfigError, match=r"data.noise_mix.folder=.* is not used.*add \{kind: folder") as e:
        NoiseMixer.from_config(unused.data.noise_mix, SR)
    assert "\n" not in str(e.value)
