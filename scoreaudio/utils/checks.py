"""Argument checks shared by the public functions: one wording for every integer a caller passes."""

from __future__ import annotations

import operator
from typing import Type


def check_int(name: str, value: object, *, minimum: int = 1, error: Type[Exception] = ValueError) -> int:
    """``value`` as a Python int >= ``minimum``, else ``error`` with a one-line message naming ``name``.

    Accepts Python and numpy integers (anything with ``__index__``); rejects bools, floats (even
    ``2.0``) and strings. ``error`` is the class raised: ``ValueError`` for the library functions,
    :class:`~scoreaudio.errors.ConfigError` where the value comes from a user's setting or flag.
    """
    what = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f">= {minimum} (an integer)")
    try:
        if isinstance(value, bool):
            raise TypeError
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise error(f"{name} must be {what}, got {value!r}") from None
    if v < minimum:
        raise error(f"{name} must be {what}, got {value!r}")
    return v
