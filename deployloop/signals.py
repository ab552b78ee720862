"""Signals only set flags: the loop notices them at its next wait and stops cleanly.

SIGINT/SIGTERM set the stop event; a second SIGINT sets ``force`` as well, which cuts the running
suite's TERM grace short (uvicorn's ``force_exit``). Nothing is raised inside a handler, so the
subprocess wrapper always gets to stop its group. SIGHUP is ignored, so closing the terminal of
a run started without nohup does not end the night.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignal:
    """The stop event shared by every wait, the force event, and which signal asked to stop."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.force = threading.Event()
        self.signum: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            return
        if signum == signal.SIGINT and self.event.is_set():
            self.force.set()  # a second Ctrl-C: the user wants out now, not after the grace
            return
        self.signum = signum
        self.event.set()


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
