"""Stopping a long job cleanly: SIGTERM and Ctrl-C only ask; the job stops at a safe point."""

from __future__ import annotations

import signal
import threading
from typing import Optional

__all__ = ["StopRequest"]


class StopRequest:
    """SIGTERM and the first Ctrl-C set :attr:`asked`; the loop stops at the next step boundary.

    (Raising from the handler, as before, could land between the optimiser step and the EMA
    update, and the checkpoint would then hold half a step.) A second Ctrl-C raises
    KeyboardInterrupt at once, for a user who does not want to wait for the step."""

    def __init__(self):
        self.asked: Optional[str] = None
        self._previous = {}

    def _handle(self, signum, frame):
        if signum == signal.SIGINT and self.asked:
            raise KeyboardInterrupt
        self.asked = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, h in self._previous.items():
            signal.signal(s, h)
        return False
