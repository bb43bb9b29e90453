"""Robust summaries of repeated measurements: medians, spreads, per-pair ratios, log-log slopes."""

from __future__ import annotations

import math
import statistics
from typing import Sequence


def median(xs: Sequence[float]) -> float:
    """Median of the finite values (None and NaN left out); NaN when none is left."""
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return float(statistics.median(xs)) if xs else float("nan")


def spread(xs: Sequence[float]) -> float:
    """(max - min) / median: how noisy the repeats were."""
    m = median(xs)
    return float((max(xs) - min(xs)) / m) if xs and m > 0 else float("nan")


def pair_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over pairs of a_i / b_i."""
    return median([x / y for x, y in zip(a, b, strict=True) if y > 0])


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    pts = [
        (math.log(x), math.log(y))
        for x, y in zip(xs, ys, strict=True)
        if x and y and x > 0 and y > 0 and math.isfinite(y)
    ]
    if len(pts) < 2:
        return float("nan")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return float(sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx) if sxx > 0 else float("nan")
