"""Simulated room reverberation for training denoisers (image-source method, pyroomacoustics).

:func:`random_rir` draws a shoebox room, an RT60, a source and a microphone from the caller's rng
and returns the room impulse response; :func:`reverberate` applies it. The *target* of a
reverberant example is the speech through the first :data:`EARLY_SECONDS` of the response (direct
path and early reflections, which help intelligibility), as in the DNS Challenge: the model learns
to remove noise and late reverberation, not the room's colouring.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ..errors import DataError

#: The part of the impulse response after the direct path that the target keeps, seconds.
EARLY_SECONDS = 0.05


def random_rir(
    rng: np.random.Generator, sample_rate: int, rt60_range: Sequence[float] = (0.2, 0.8)
) -> np.ndarray:
    """A room impulse response (L,) float64 for a random shoebox room, normalised to a unit peak.

    Room 3-10 x 3-8 x 2.5-4 m, RT60 uniform in ``rt60_range`` (absorption and reflection order
    from Sabine's formula), source and microphone at least 0.5 m from the walls and each other.
    """
    try:
        import pyroomacoustics as pra
    except ImportError:
        raise DataError(
            "data.noise_mix.reverb_prob > 0 needs pyroomacoustics: pip install 'scoreaudio[bench]'"
        ) from None
    lo, hi = float(rt60_range[0]), float(rt60_range[1])
    if not 0.05 <= lo <= hi <= 3.0:
        raise DataError(
            f"data.noise_mix.reverb_rt60 must be within [0.05, 3] s with min <= max, got {list(rt60_range)}"
        )
    dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.5, 4)])
    rt60 = float(rng.uniform(lo, hi))
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # a room too large for this short RT60: the least reverberant the walls allow
        absorption, max_order = 0.99, 3
    room = pra.ShoeBox(
        dims, fs=int(sample_rate), materials=pra.Material(absorption), max_order=int(min(max_order, 40))
    )
    for _ in range(20):
        src, mic = (rng.uniform(0.5, dims - 0.5) for _ in range(2))
        if np.linalg.norm(src - mic) >= 0.5:
            break
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    return rir / (np.max(np.abs(rir)) + 1e-12)


def reverberate(clean: np.ndarray, rir: np.ndarray, sample_rate: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(reverberant, early)``: ``clean`` (T,) through ``rir`` and through its early part, both (T,)
    and aligned to the direct path (so the target does not move in time)."""
    from scipy.signal import fftconvolve

    onset = int(np.argmax(np.abs(rir)))
    early_end = onset + int(round(EARLY_SECONDS * sample_rate))
    n = len(clean)
    full = fftconvolve(clean, rir)[onset : onset + n]
    early = fftconvolve(clean, rir[:early_end])[onset : onset + n]
    return full, early
