"""scoreaudio: score-based (diffusion) models of speech — train, generate, denoise."""
from __future__ import annotations

__version__ = "0.1.0"
