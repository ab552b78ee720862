"""Signs of life while a suite runs: a bar per suite on a terminal, a heartbeat line off one.

Both tail the progress file the pytest plugin writes (``deployloop/plugin/deployloop_live.py``):
one JSON object per line, ``collected`` once, then ``start`` and ``test`` per test.
"""

from __future__ import annotations

import atexit
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console as RichConsole
from rich.console import ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

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
from deployloop.view import EventView

POLL_S = 0.2
HEARTBEAT_S = 180.0
BROKEN = frozenset({"failed", "error"})
# Any of these means the wait for a redeploy is over: the next iteration is under way or done.
WAIT_OVER = (Settled, IterationStart, PhaseStart, SuiteStart, SessionEnd)
SuiteKey = tuple[str, str, str]
# Layout of a suite's row, in terminal cells: wide terminals keep the running test on the same line.
WIDE, ID_ROOM, BAR_MIN, BAR_MAX, LABEL_MIN, TIME_WIDTH = 120, 40, 10, 30, 12, 16


def suite_key(event: SuiteStart | SuiteEnd) -> SuiteKey:
    return (event.phase, event.suite, event.pass_name)


@dataclass
class SuiteProgress:
    """What the progress file has said so far about one running suite."""

    phase: str
    suite: str
    pass_name: str = "full"
    path: Path | None = None
    expected: int | None = None  # from the config (expect_tests) or the rerun's selection
    previous_s: float | None = None  # last wall time of this suite, for a first ETA
    started: float = field(default_factory=time.monotonic)
    collected: int | None = None
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    current: str = ""
    offset: int = 0
    partial: bytes = b""

    @classmethod
    def from_event(cls, event: SuiteStart) -> SuiteProgress:
        path = Path(event.progress) if event.progress else None
        # A resumed iteration appends to last attempt's file: only what comes after now is ours.
        offset = path.stat().st_size if path is not None and path.exists() else 0
        return cls(
            event.phase,
            event.suite,
            event.pass_name,
            path,
            event.tests or None,
            event.previous_s,
            offset=offset,
        )

    @property
    def label(self) -> str:
        name = f"{self.phase}/{self.suite}"
        return name if self.pass_name == "full" else f"{name} [{self.pass_name}]"

    @property
    def done(self) -> int:
        return self.passed + self.failed + self.skipped

    @property
    def total(self) -> int | None:
        return self.collected or self.expected

    def poll(self) -> bool:
        """Read what the plugin appended since last time; True when anything changed."""
        if self.path is None:
            return False
        try:
            with open(self.path, "rb") as handle:
                if handle.seek(0, 2) < self.offset:  # replaced or truncated: start over
                    self.offset, self.partial = 0, b""
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return False
        self.offset += len(chunk)
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        changed = [self.apply(line) for line in lines]  # every line counts: no short cut
        return any(changed)

    def apply(self, line: bytes) -> bool:
        try:
            record = json.loads(line)
        except ValueError:
            return False  # a torn or foreign line is no reason to stop watching
        if not isinstance(record, dict):
            return False
        kind = record.get("event")
        if kind == "collected":
            self.collected = int(record.get("count") or 0) or None
        elif kind == "start":
            self.current = str(record.get("id", ""))
        elif kind == "test":
            self._count(str(record.get("outcome", "")))
        return kind in ("collected", "start", "test")

    def _count(self, outcome: str) -> None:
        if outcome == "passed":
            self.passed += 1
        elif outcome in BROKEN:
            self.failed += 1
        elif outcome == "skipped":
            self.skipped += 1

    def elapsed(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left: from the pace so far once a few tests are done, else from last time."""
        elapsed, total = self.elapsed(now), self.collected
        if total and (self.done >= min(3, total)):
            return elapsed / self.done * max(0, total - self.done)
        if self.previous_s:
            left = self.previous_s - elapsed
            return left if left > 0 else None
        return None


def short_id(nodeid: str) -> str:
    """``tests/e2e/test_x.py::test_a[1]`` → ``test_x.py::test_a[1]``: what names the test."""
    path, sep, rest = nodeid.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest


def clock(seconds: float) -> str:
    """Whole seconds only: a live display ticking tenths is noise."""
    return f"{int(seconds)}s" if seconds < 60 else format_duration(seconds)


class _Tail:
    """A thread that polls one suite's progress file until told to stop."""

    def __init__(self, progress: SuiteProgress, lock: threading.Lock, every: float) -> None:
        self.progress = progress
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(lock, every), name=f"live-{progress.label}", daemon=True
        )
        self.thread.start()

    def _run(self, lock: threading.Lock, every: float) -> None:
        while not self.stop.wait(every):
            with lock:
                self.progress.poll()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2.0)


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
        self._tails: dict[SuiteKey, _Tail] = {}
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
                rows = [self._row(key, tail.progress, now) for key, tail in self._tails.items()]
                parts.append(_Board(rows))
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
        tail = _Tail(SuiteProgress.from_event(event), self._lock, self.poll_s)
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

    def _row(self, key: SuiteKey, p: SuiteProgress, now: float) -> _Row:
        total, eta = p.total, p.eta(now)
        width = len(str(total or 100))  # counts keep their width as they grow: no jitter
        left = "" if eta is None else (f" · ~{clock(eta)} left" if eta >= 1 else " · finishing")
        texts = [
            Text(p.label, style="bold"),
            Text(f"{p.done:>{width}}/{total}" if total else f"{p.done:>{width}}", style="bold"),
            Text(f"{p.passed:>{width}} passed", style="green"),
            Text(f"{p.failed:>{width}} failed", style="bold red" if p.failed else "dim"),
            Text(clock(p.elapsed(now)) + left, style="dim"),
        ]
        return _Row(self._spinner(key), texts, _fraction(p, now), p.failed > 0, short_id(p.current))


def _fraction(p: SuiteProgress, now: float) -> float | None:
    """How far along the suite is, or None when nothing says (the bar pulses)."""
    if p.total:
        return min(1.0, p.done / p.total)
    if p.previous_s:  # no count yet: last run's wall time stands in for the distance
        return min(0.99, p.elapsed(now) / p.previous_s)
    return None


@dataclass
class _Row:
    spinner: Spinner
    texts: list[Text]  # label, done/total, passed, failed, elapsed and ETA
    fraction: float | None
    failing: bool
    current: str


class _Board:
    """The suites' rows, laid out for the width the terminal has: 80 columns must read well too."""

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows

    def __rich_console__(self, console: RichConsole, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        one_line = width >= WIDE
        # Narrow: the clock moves down to the second line, beside the running test.
        widths = [
            max(row.texts[i].cell_len for row in self.rows) for i in range(5 if one_line else 4)
        ]
        if one_line:
            widths[4] = max(
                widths[4], TIME_WIDTH
            )  # a growing clock does not push the test id about
        id_room = ID_ROOM if one_line else 0
        shortfall = BAR_MIN + id_room - (width - 2 - sum(w + 1 for w in widths))
        if shortfall > 0:  # too narrow: the suite name gives way before the bar does
            widths[0] = max(LABEL_MIN, widths[0] - shortfall)
        room = width - 2 - sum(w + 1 for w in widths)
        bar = max(BAR_MIN, min(BAR_MAX, room - id_room))
        for row in self.rows:
            yield self._grid(row, widths, bar, room - bar - 2 if one_line else 0)
            if not one_line:
                yield self._second_line(row)

    @staticmethod
    def _grid(row: _Row, widths: list[int], bar: int, id_width: int) -> Table:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=1)
        grid.add_column(width=widths[0], no_wrap=True, overflow="ellipsis")
        grid.add_column(width=bar)
        for column, w in enumerate(widths[1:], start=1):
            grid.add_column(width=w, no_wrap=True, justify="left" if column == 4 else "right")
        progress = ProgressBar(
            total=None if row.fraction is None else 1.0,
            completed=row.fraction or 0.0,
            width=bar,
            pulse=row.fraction is None,
            complete_style="red" if row.failing else "green",
        )
        cells: list[RenderableType] = [row.spinner, row.texts[0], progress]
        cells += row.texts[1 : len(widths)]
        if id_width > 0:  # wide enough: the running test closes the line instead of taking another
            grid.add_column(width=id_width, no_wrap=True, overflow="ellipsis")
            cells.append(Text(row.current, style="dim"))
        grid.add_row(*cells)
        return grid

    @staticmethod
    def _second_line(row: _Row) -> Text:
        line = Text("  ", no_wrap=True, overflow="ellipsis").append_text(row.texts[4])
        if row.current:
            line.append(f"   {row.current}", style="dim")
        return line


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
