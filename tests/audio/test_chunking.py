"""Overlap-add over chunks: exact for functions that act sample by sample, bounded chunk sizes."""

from __future__ import annotations

import torch

from scoreaudio.audio.chunking import chunk_starts, ola_window, overlap_add


def test_overlap_add_of_a_pointwise_function_is_that_function():
    y = torch.randn(10_000, generator=torch.Generator().manual_seed(0))
    seen = []

    def fn(seg):
        seen.append(seg.shape)
        return 2.0 * seg - 0.5

    out = overlap_add(y, fn, chunk=1024, overlap=256, unit=128, min_length=64, batch_size=3)
    assert torch.allclose(out, 2.0 * y - 0.5, atol=1e-5)
    assert all(s[1:] == (1, 1024) and s[0] <= 3 for s in seen)  # bounded memory: chunk x batch


def test_a_short_input_is_one_zero_padded_chunk():
    y = torch.ones(50)
    lengths = []
    out = overlap_add(
        y, lambda s: (lengths.append(s.shape[-1]), s)[1], chunk=1024, overlap=256, min_length=200
    )
    assert lengths == [200] and torch.equal(out, y)


def test_cross_fades_sum_to_one():
    rise = ola_window(100, 40, rise=True, fall=False, device="cpu", dtype=torch.float64)
    fall = ola_window(100, 40, rise=False, fall=True, device="cpu", dtype=torch.float64)
    assert torch.allclose(rise[:40] + fall[-40:], torch.ones(40, dtype=torch.float64))
    assert (rise > 0).all() and chunk_starts(1000, 256, 192, unit=64)[-1] + 256 >= 1000
