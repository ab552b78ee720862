"""Signals only set flags: the loop notices them at its next wait and stops cleanly.

SIGINT/SIGTERM set the stop event (a second SIGINT forces exit at once); SIGHUP is recorded and
ignored, so closing the terminal of a run started without nohup does not end the night.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignal:
    """The stop event shared by every wait, and which signal set it."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            return
        if signum == signal.SIGINT and self.event.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: the user wants out now
        self.signum = signum
        self.event.set()

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + (self.signum or signal.SIGINT)


@contextmanager
def capture_signals(stop: StopSignal) -> Iterator[StopSignal]:
    """Install the handlers for the duration of a run; restore the originals after."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    original = {signum: signal.signal(signum, stop.handle) for signum in HANDLED}
    try:
        yield stop
    finally:
        for signum, handler in original.items():
            signal.signal(signum, handler)
