"""The synthetic corpus: deterministic, fast, and speech-like by four simple measures."""

from __future__ import annotations

import time

import numpy as np
import pytest

from scoreaudio.config import compose
from scoreaudio.data.synthetic import (
    corpus_key,
    materialize_corpus,
    speaker_params,
    synthesize_utterance,
    utterance_plan,
)

SR, FL, HOP = 16000, 1024, 256  # 64 ms frames, 16 ms hop


def _frames(y):
    n = 1 + (len(y) - FL) // HOP
    return y[np.arange(FL)[None, :] + HOP * np.arange(n)[:, None]]


def _frame_db(F):
    rms = np.sqrt((F**2).mean(axis=1))
    return 20 * np.log10(rms / rms.max() + 1e-12)


@pytest.fixture(scope="module")
def utterances():
    return {s: synthesize_utterance(s, 7, 2.5, SR, seed=0) for s in (0, 1, 3)}


def _voiced(y):
    """Frames within 12 dB of the loudest, and the YIN f0 of every frame."""
    import librosa

    F = _frames(y)
    f0 = librosa.yin(y, fmin=60, fmax=500, sr=SR, frame_length=FL, hop_length=HOP, center=False)[: len(F)]
    return F, _frame_db(F) > -12, f0


def test_pitch_in_speech_range_and_near_the_speaker(utterances):
    for s, y in utterances.items():
        _, voiced, f0 = _voiced(y)
        fv = f0[voiced]
        assert voiced.sum() > 20
        assert 80 <= np.median(fv) <= 300
        assert np.mean((fv >= 75) & (fv <= 320)) > 0.85  # allow a few octave slips at transitions
        assert np.median(fv) == pytest.approx(speaker_params(s).f0, rel=0.25)


def test_harmonic_peaks_at_multiples_of_f0(utterances):
    nfft = 8192
    freqs = np.fft.rfftfreq(nfft, 1 / SR)
    for y in utterances.values():
        F, voiced, f0 = _voiced(y)
        ratios, n_harm = [], []
        for i in np.flatnonzero(voiced):
            s = 20 * np.log10(np.abs(np.fft.rfft(F[i] * np.hanning(FL), nfft)) + 1e-12)
            f = f0[i]
            peak = [s[(freqs > k * f * 0.97) & (freqs < k * f * 1.03)].max() for k in range(1, 7)]
            valley = [s[(freqs > (k + 0.4) * f) & (freqs < (k + 0.6) * f)].min() for k in range(1, 7)]
            ratios.append(np.mean(np.subtract(peak, valley)))
            harm = [s[(freqs > k * f * 0.97) & (freqs < k * f * 1.03)].max() for k in range(1, int(4000 / f))]
            n_harm.append(np.sum(np.array(harm) > max(harm) - 30))
        assert np.median(ratios) > 15  # clear peaks at k*f0 over the gaps between them
        assert np.median(n_harm) >= 5  # many harmonics: not a pure tone


def test_spectrum_is_not_flat_and_has_formants(utterances):
    import librosa
    from scipy.signal import find_peaks, freqz

    for y in utterances.values():
        F, voiced, _ = _voiced(y)
        flat, n_formants = [], []
        for i in np.flatnonzero(voiced):
            fr = F[i] * np.hanning(FL)
            P = np.abs(np.fft.rfft(fr)) ** 2
            flat.append(np.exp(np.mean(np.log(P + 1e-20))) / np.mean(P))
            a = librosa.lpc(fr.astype(np.float64), order=16)
            w, h = freqz(1, a, worN=1024, fs=SR)
            env = 20 * np.log10(np.abs(h) + 1e-12)
            band = (w > 150) & (w < 4000)
            n_formants.append(len(find_peaks(env[band], prominence=6)[0]))
        assert np.median(flat) < 0.01  # white noise is ~0.56
        assert np.median(n_formants) >= 2 and np.mean(np.array(n_formants) >= 2) > 0.5


def test_pauses_between_words(utterances):
    for y in utterances.values():
        db = _frame_db(_frames(y))
        quiet = db < -30
        loud = np.flatnonzero(~quiet)
        assert 0.05 < quiet.mean() < 0.6
        assert quiet[loud[0] : loud[-1] + 1].any()  # a pause inside the utterance, not only at the ends


def test_white_noise_and_pure_tone_fail_the_same_checks():
    rng = np.random.default_rng(0)
    noise = 0.1 * rng.standard_normal(40000)
    P = np.abs(np.fft.rfft(_frames(noise) * np.hanning(FL), axis=1)) ** 2
    assert np.median(np.exp(np.mean(np.log(P + 1e-20), 1)) / np.mean(P, 1)) > 0.3
    assert not (_frame_db(_frames(noise)) < -30).any()


def test_deterministic_and_distinct():
    a = synthesize_utterance(2, 5, 1.0, SR, seed=3)
    assert np.array_equal(a, synthesize_utterance(2, 5, 1.0, SR, seed=3))
    assert not np.array_equal(a, synthesize_utterance(2, 6, 1.0, SR, seed=3))
    assert not np.array_equal(a, synthesize_utterance(2, 5, 1.0, SR, seed=4))
    assert a.dtype == np.float32 and a.shape == (SR,) and 0.3 < np.abs(a).max() <= 0.9


@pytest.mark.parametrize("sr", [8000, 22050, 48000])
def test_other_sample_rates(sr):
    y = synthesize_utterance(1, 0, 0.7, sr)
    assert y.shape == (round(0.7 * sr),) and np.isfinite(y).all() and np.abs(y).max() <= 0.9


def test_very_short_utterance():
    y = synthesize_utterance(0, 0, 0.2, SR)
    assert y.shape == (3200,) and np.isfinite(y).all()


def test_speakers_span_the_pitch_range():
    f0s = [speaker_params(s, 0).f0 for s in range(6)]
    assert min(f0s) < 120 and max(f0s) > 200 and all(80 <= f <= 300 for f in f0s)
    assert speaker_params(4, 0) == speaker_params(4, 0) and speaker_params(4, 0) != speaker_params(4, 1)
    scales = [speaker_params(s, 0).formant_scale for s in range(6)]
    assert np.corrcoef(f0s, scales)[0, 1] > 0.8  # higher voices, shorter vocal tracts


def test_generation_speed():
    synthesize_utterance(0, 0, 0.5)  # imports
    t = time.perf_counter()
    for i in range(24):
        synthesize_utterance(i % 6, i, 2.5)
    per_utt = (time.perf_counter() - t) / 24
    assert per_utt < 20.0 / 240, f"{per_utt * 1000:.0f} ms per 2.5 s utterance"


def _syn_cfg(**kw):
    settings = dict(
        train_utterances=4, valid_utterances=2, test_utterances=2, num_speakers=3, utterance_seconds=0.4, **kw
    )
    over = [f"data.synthetic.{k}={v}" for k, v in settings.items()]
    return compose(None, over).data.synthetic


def test_materialize_once_atomically(tmp_path):
    syn = _syn_cfg()
    key = corpus_key(syn, SR)
    (tmp_path / f".synthetic-{key}.tmp-stale").mkdir()  # an interrupted earlier write: ignored
    dest = materialize_corpus(tmp_path, syn, SR)
    assert dest.name == f"synthetic-{key}" and (dest / "corpus.json").is_file()
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.wav"))
    assert files[:2] == ["test/spk00/test_00000.wav", "test/spk01/test_00001.wav"] and len(files) == 8
    mtime = (dest / "corpus.json").stat().st_mtime_ns
    assert materialize_corpus(tmp_path, syn, SR) == dest  # reused, not rewritten
    assert (dest / "corpus.json").stat().st_mtime_ns == mtime
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == [f".synthetic-{key}.tmp-stale"]  # our own temp folder was renamed away
    # other settings, other folder; an incomplete folder (no corpus.json) is rebuilt
    other = corpus_key(_syn_cfg(seed=1), SR)
    assert other != key
    (tmp_path / f"synthetic-{other}").mkdir()
    d2 = materialize_corpus(tmp_path, _syn_cfg(seed=1), SR)
    assert (d2 / "corpus.json").is_file()


def test_utterance_plan_is_disjoint_and_fixed():
    plan = utterance_plan(_syn_cfg())
    assert [p[0] for p in plan].count("train") == 4
    assert len({p[2] for p in plan}) == len(plan)
    assert all(0.32 <= p[3] <= 0.48 for p in plan)
    assert plan == utterance_plan(_syn_cfg())
