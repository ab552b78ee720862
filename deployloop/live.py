"""Signs of life while a suite runs: a bar per suite on a terminal, a heartbeat line off one.

Both tail the progress file the pytest plugin writes (read by ``deployloop/progress.py``); the
terminal's bars are laid out by ``deployloop/board.py``. These sinks only decide when each speaks.
"""

from __future__ import annotations

import atexit
import threading
import time
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from deployloop.board import Board, clock, suite_row
from deployloop.console import Console
from deployloop.durations import format_duration
from deployloop.events import (
    Event,
    IterationStart,
    PhaseStart,
    SessionEnd,
    Settled,
    Sink,
    SuiteEnd,
    SuiteStart,
    Waiting,
)
from deployloop.progress import SuiteKey, SuiteProgress, Tail, suite_key
from deployloop.view import EventView

POLL_S = 0.2
HEARTBEAT_S = 180.0
# Any of these means the wait for a redeploy is over: the next iteration is under way or done.
WAIT_OVER = (Settled, IterationStart, PhaseStart, SuiteStart, SessionEnd)


class LiveView:
    """The terminal sink: event lines scroll above a live region, one bar per running suite."""

    def __init__(
        self, console: Console, poll_s: float = POLL_S, refresh_per_second: float = 4
    ) -> None:
        self.console = console
        self.lines = EventView(console)
        self.poll_s = poll_s
        self.refresh_per_second = refresh_per_second
        self._lock = threading.Lock()
        self._tails: dict[SuiteKey, Tail] = {}
        self._spinners: dict[SuiteKey | str, Spinner] = {}
        self._waiting: tuple[str, float] | None = None
        self._live: Live | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, SuiteEnd):
            self._end_suite(suite_key(event))
        if isinstance(event, WAIT_OVER):
            self._waiting = None
        self.lines(event)
        if isinstance(event, SuiteStart):
            self._start_suite(event)
        elif isinstance(event, Waiting) and self._waiting is None:
            self._waiting = (
                f"waiting for redeploy (tested {event.tested or 'unknown'})",
                time.monotonic(),
            )
        if isinstance(event, SessionEnd):
            self.close()
        else:
            self._sync_live()

    def close(self) -> None:
        """Stop every tail and the live region; safe to call twice, and called at exit."""
        for key in list(self._tails):
            self._end_suite(key)
        self._waiting = None
        self._sync_live()

    def suites(self) -> list[SuiteProgress]:
        with self._lock:
            return [tail.progress for tail in self._tails.values()]

    def renderable(self) -> RenderableType:
        """The live region: one row per running suite, then the wait line if waiting."""
        now = time.monotonic()
        parts: list[RenderableType] = []
        with self._lock:
            if self._tails:
                rows = [
                    suite_row(self._spinner(key), tail.progress, now)
                    for key, tail in self._tails.items()
                ]
                parts.append(Board(rows))
            if self._waiting is not None:
                text, since = self._waiting
                row = Table.grid(padding=(0, 1))
                row.add_row(
                    self._spinner("wait"), Text(text), Text(clock(now - since), style="dim")
                )
                parts.append(row)
        return Group(*parts)

    def _start_suite(self, event: SuiteStart) -> None:
        key = suite_key(event)
        self._end_suite(key)  # the same suite started again: one bar, not two
        tail = Tail(SuiteProgress.from_event(event), self._lock, self.poll_s)
        with self._lock:
            self._tails[key] = tail

    def _end_suite(self, key: SuiteKey) -> None:
        with self._lock:
            tail = self._tails.pop(key, None)
            self._spinners.pop(key, None)
        if tail is not None:
            tail.close()

    def _sync_live(self) -> None:
        """A live region only while something runs: between suites the terminal is plain."""
        busy = bool(self._tails) or self._waiting is not None
        if busy and self._live is None:
            self._live = Live(
                console=self.console.rich,
                get_renderable=self.renderable,
                refresh_per_second=self.refresh_per_second,
                transient=True,
            )
            self._live.start()
            # An exception that skips session_end must still not leave the cursor hidden.
            atexit.register(self.close)
        elif not busy and self._live is not None:
            live, self._live = self._live, None
            live.stop()
            atexit.unregister(self.close)

    def _spinner(self, key: SuiteKey | str) -> Spinner:
        # Kept per row: a spinner made afresh on each refresh would never turn.
        return self._spinners.setdefault(key, Spinner("dots", style="cyan"))


@dataclass
class _Activity:
    """A suite or a wait the heartbeat speaks about; ``last`` is when it last said so."""

    progress: SuiteProgress | None
    text: str
    since: float
    last: float


class Heartbeat:
    """Off a terminal: a 'still running …' line every ``interval_s`` while a suite or wait runs."""

    def __init__(self, console: Console, interval_s: float = HEARTBEAT_S) -> None:
        self.console = console
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._activities: dict[SuiteKey | str, _Activity] = {}
        self._thread: threading.Thread | None = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._track(event)
        self._wake.set()
        if isinstance(event, SessionEnd):
            self.close()
        elif self._activities and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
            self._thread.start()

    def _track(self, event: Event) -> None:
        now = time.monotonic()
        if isinstance(event, WAIT_OVER):
            self._activities.pop("wait", None)
        match event:
            case SuiteStart():
                progress = SuiteProgress.from_event(event)
                self._activities[suite_key(event)] = _Activity(progress, progress.label, now, now)
            case SuiteEnd():
                self._activities.pop(suite_key(event), None)
            case Waiting(tested=tested) if "wait" not in self._activities:
                self._activities["wait"] = _Activity(
                    None, f"waiting for redeploy (tested {tested or 'unknown'})", now, now
                )
            case _:
                pass

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._next_in())
            self._wake.clear()
            if self._closed:
                return
            for line in self.due(time.monotonic()):
                self.console.line(line)

    def _next_in(self) -> float:
        with self._lock:
            lasts = [a.last for a in self._activities.values()]
        if not lasts:
            return self.interval_s
        return max(0.0, min(lasts) + self.interval_s - time.monotonic())

    def due(self, now: float) -> list[str]:
        """The lines owed at ``now``, each activity's clock restarting as it speaks."""
        with self._lock:
            owed = [a for a in self._activities.values() if now - a.last >= self.interval_s]
            for activity in owed:
                activity.last = now
            return [_beat(activity, now) for activity in owed]


def _beat(activity: _Activity, now: float) -> str:
    p = activity.progress
    if p is None:
        return f"still {activity.text}: {format_duration(now - activity.since)} elapsed"
    p.poll()
    done = f"{p.done}/{p.total}" if p.collected else f"{p.done}"
    return (
        f"still running {p.label}: {done} tests done, {p.failed} failed, "
        f"{format_duration(p.elapsed(now))} elapsed"
    )


def make_sinks(console: Console) -> list[Sink]:
    """A live view on a terminal; plain event lines plus a heartbeat off one (nohup, cron, CI)."""
    if console.interactive:
        return [LiveView(console)]
    return [EventView(console), Heartbeat(console)]
