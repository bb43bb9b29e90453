"""User-facing errors.

Every error a user can cause (bad config, missing dataset, unreadable audio, bad checkpoint,
bad argument) is a :class:`ScoreAudioError` with a one-line message that says what to do. The
command line prints ``error: <message>`` and exits with status 2 instead of a traceback.
"""

from __future__ import annotations


class ScoreAudioError(Exception):
    """Base class for errors caused by the user's input, not by a bug."""


class ConfigError(ScoreAudioError, ValueError):
    """A recipe, config fragment or override is invalid."""


class DataError(ScoreAudioError, ValueError):
    """A dataset root, manifest or audio file cannot be used."""


class AudioError(DataError):
    """An audio file or array is missing, unreadable, empty or non-finite."""


class CheckpointError(ScoreAudioError, ValueError):
    """A checkpoint is missing, corrupt or of the wrong kind."""


class TrainingError(ScoreAudioError, RuntimeError):
    """Training cannot go on (non-finite loss, unwritable run directory, ...)."""


def one_line(e: BaseException) -> str:
    """``str(e)`` on one line (runs of whitespace and newlines become one space); the exception's
    class name when it has no message. For wrapping a library's error into one of ours."""
    return " ".join(str(e).split()) or type(e).__name__
