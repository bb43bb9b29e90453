"""scoreaudio.audio.io: load / save / audio_info / resample, and their errors on bad files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from scoreaudio.audio.io import AUDIO_EXTS, audio_info, find_audio_files, load, resample, save
from scoreaudio.errors import AudioError, DataError


def _sine(f, sr, seconds=0.5, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)]


def test_save_load_roundtrip_pcm16_float_flac(tmp_path):
    x = _sine(440, 16000)
    p16 = save(tmp_path / "a" / "b" / "x16.wav", x, 16000)  # creates parent folders
    wav, sr = load(p16)
    assert sr == 16000 and wav.shape == (1, len(x)) and wav.dtype == torch.float32
    assert np.abs(wav[0].numpy() - x).max() <= 1.0 / 32768 + 1e-7
    assert sf.info(str(p16)).subtype == "PCM_16"

    pf = save(tmp_path / "xf.wav", torch.from_numpy(x)[None], 16000, subtype="FLOAT")
    assert sf.info(str(pf)).subtype == "FLOAT"
    assert np.array_equal(load(pf)[0][0].numpy(), x)

    pfl = save(tmp_path / "x.flac", x, 16000)
    assert sf.info(str(pfl)).format == "FLAC"
    assert np.abs(load(pfl)[0][0].numpy() - x).max() <= 1.0 / 32768 + 1e-7
    # no temp files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "x.flac", "xf.wav"]


def test_save_multichannel_and_load_downmixes(tmp_path):
    x = np.stack([_sine(300, 16000), _sine(300, 16000, amp=0.1)])  # (C=2, T)
    p = save(tmp_path / "st.wav", x, 16000, subtype="FLOAT")
    assert audio_info(p) == (x.shape[1], 16000, 2)
    wav, _ = load(p)
    assert wav.shape == (1, x.shape[1])
    np.testing.assert_allclose(wav[0].numpy(), x.mean(axis=0), atol=1e-6)


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    sr = 44100
    left, right = _sine(1000, sr, 0.5), _sine(1000, sr, 0.5, amp=0.2)
    p = tmp_path / "stereo.wav"
    sf.write(str(p), np.stack([left, right], axis=1), sr, subtype="PCM_16")
    wav, rate = load(p, sample_rate=16000)
    assert rate == 16000 and wav.shape[0] == 1
    assert abs(wav.shape[1] - 8000) <= 1
    assert abs(_peak_hz(wav[0].numpy(), 16000) - 1000) < 5
    assert abs(wav.abs().max().item() - 0.35) < 0.02  # mean of 0.5 and 0.2 amplitudes


def test_save_clips_instead_of_wrapping(tmp_path):
    x = np.array([0.0, 1.5, -1.5, 0.5], dtype=np.float32)
    y = load(save(tmp_path / "clip.wav", x, 8000))[0][0].numpy()
    assert y[1] > 0.99 and y[2] < -0.99 and abs(y[3] - 0.5) < 1e-3


def test_save_refuses_nan_and_bad_shapes(tmp_path):
    x = _sine(440, 8000)
    x[10] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        save(tmp_path / "nan.wav", x, 8000)
    with pytest.raises(AudioError):
        save(tmp_path / "inf.wav", np.array([0.0, np.inf], dtype=np.float32), 8000)
    assert not list(tmp_path.iterdir())
    with pytest.raises(AudioError, match="shape"):
        save(tmp_path / "x.wav", np.zeros((1, 2, 3), dtype=np.float32), 8000)
    with pytest.raises(AudioError, match="extension"):
        save(tmp_path / "x.xyz", np.zeros(10, dtype=np.float32), 8000)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found") as e:
        load(tmp_path / "nope.wav")
    assert "nope.wav" in str(e.value) and e.value.reason == "missing"
    assert isinstance(e.value, DataError)
    with pytest.raises(AudioError, match="not found"):
        audio_info(tmp_path / "nope.wav")


def test_empty_and_zero_length_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty") as e:
        load(empty)
    assert e.value.reason == "empty"
    zero = tmp_path / "zero.wav"
    sf.write(str(zero), np.zeros(0, dtype=np.float32), 16000)  # a valid header, no samples
    assert audio_info(zero)[0] == 0
    with pytest.raises(AudioError, match="no samples") as e:
        load(zero)
    assert e.value.reason == "empty" and "zero.wav" in str(e.value)


def test_corrupt_file(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00junk" + bytes(range(256)) * 4)
    for fn in (load, audio_info):
        with pytest.raises(AudioError, match="cannot read") as e:
            fn(bad)
        assert "corrupt.wav" in str(e.value) and e.value.reason == "unreadable"
        assert "\n" not in str(e.value)


def test_nan_file(tmp_path):
    p = tmp_path / "nan.wav"
    x = _sine(440, 8000)
    x[100] = np.nan
    sf.write(str(p), x, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN") as e:
        load(p)
    assert e.value.reason == "nonfinite" and "nan.wav" in str(e.value)


def test_resample_tensor_keeps_shape_dtype_device():
    x = torch.from_numpy(np.stack([_sine(440, 48000), _sine(880, 48000)]))[:, None]  # (2, 1, T)
    y = resample(x, 48000, 16000)
    assert y.shape == (2, 1, x.shape[-1] // 3) and y.dtype == torch.float32 and y.device == x.device
    assert abs(_peak_hz(y[1, 0].numpy(), 16000) - 880) < 5
    y64 = resample(x.double(), 48000, 16000)
    assert y64.dtype == torch.float64
    assert resample(x, 16000, 16000) is x
    arr = resample(_sine(440, 22050), 22050, 16000)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32
    with pytest.raises(AudioError):
        resample(x, 0, 16000)


def test_find_audio_files_is_recursive_sorted_and_skips_hidden(tmp_path):
    for rel in [
        "b.WAV",
        "a/z.flac",
        "a/c/y.ogg",
        "a/x.mp3",
        "notes.txt",
        ".hidden.wav",
        ".cache/x.wav",
        "a/.partial.wav",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")  # nothing is opened
    (tmp_path / "folder.wav").mkdir()  # a folder is not a file, whatever its name
    rel = [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)]
    assert rel == ["a/c/y.ogg", "a/x.mp3", "a/z.flac", "b.WAV"]
    assert all(str(p).startswith(str(tmp_path)) for p in find_audio_files(tmp_path))
    assert [p.name for p in find_audio_files(tmp_path, (".wav",))] == ["b.WAV"]
    assert find_audio_files(tmp_path / "missing") == []
    assert ".wav" in AUDIO_EXTS and ".flac" in AUDIO_EXTS
