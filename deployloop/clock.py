"""The one clock: wall time, monotonic time and a wait that a stop request ends early.

The loop, the redeploy waiter and the GitHub tracker all take a ``Clock``, so a SIGTERM ends any
of their waits at once and tests drive them with ``deployloop.testing.FakeClock`` at no cost.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Time in seconds; ``wait`` returns True when a stop was requested (then at once)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def wait(self, seconds: float) -> bool: ...


class RealClock:
    """``time.time``, ``time.monotonic``; ``wait`` is ``stop.wait`` (never a bare sleep).

    Without a ``stop`` event the waits simply run their full length.
    """

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, seconds: float) -> bool:
        return self.stop.wait(max(0.0, seconds))
