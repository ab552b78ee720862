"""A running suite's progress file: kept as the pytest plugin streams it, read as it grows.

The plugin (``deployloop/plugin/deployloop_live.py``) writes one JSON object per line,
``collected`` once, then ``start``, ``test`` and ``done`` (its final outcome) per test, into a
FIFO; ``ScrubbedRecords`` keeps them scrubbed in the file the live view, ``status`` and
failed-first's early verdict read. Its bytes are the suite's: a torn or foreign line is
skipped, never trusted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from deployloop.events import SuiteEnd, SuiteStart
from deployloop.redact import Redactor
from deployloop.screen import utf8
from deployloop.scrub import BATCH, HOLD, INTERVAL_S

BROKEN = frozenset({"failed", "error"})
MEMO = 4096  # scrubbed texts a progress writer remembers (ScrubbedRecords._scrub)
MEMO_CHARS = 512  # the longest text remembered: at most 2 x 4096 x 512 characters
SuiteKey = tuple[str, str, str]


def suite_key(event: SuiteStart | SuiteEnd) -> SuiteKey:
    """(phase, suite, pass name): what tells one running suite from another."""
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
        lines, self.offset, self.partial = appended_lines(self.path, self.offset, self.partial)
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


def appended_lines(path: Path, offset: int, partial: bytes) -> tuple[list[bytes], int, bytes]:
    """The lines completed in ``path`` past ``offset`` (``partial``: the unfinished line read
    before), and the new offset and unfinished line. A file shorter than ``offset`` was replaced
    or truncated: read from its start. A missing file has no lines yet."""
    try:
        with open(path, "rb") as handle:
            if handle.seek(0, os.SEEK_END) < offset:
                offset, partial = 0, b""
            handle.seek(offset)
            chunk = handle.read()
    except FileNotFoundError:
        return [], offset, partial
    *lines, unfinished = (partial + chunk).split(b"\n")
    return lines, offset + len(chunk), unfinished


class FinalOutcomes:
    """The final outcome of each ``wanted`` test (pytest's words: passed, failed, error,
    skipped, xfailed, xpassed), from the live plugin's ``done`` records in the progress file at
    ``path``, read from its start as it grows (``poll``): the pass's own file, started afresh
    (``retest.FirstVerdict.watching`` removes a stale one before). ``key`` maps a record's id
    to the form ``wanted`` uses (``runner.plain_id``: xdist's ``@group`` dropped). A ``rerun``
    record ends an attempt pytest-rerunfailures repeats: not final. Holds only the wanted
    tests' outcomes."""

    def __init__(self, path: Path, wanted: Collection[str], key: Callable[[str], str]) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.wanted = frozenset(wanted)
        self.key = key
        self.outcomes: dict[str, str] = {}

    def poll(self) -> bool:
        """Read what was appended; True once every wanted test has its final outcome."""
        lines, self.offset, self.partial = appended_lines(self.path, self.offset, self.partial)
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn or foreign line says nothing
            if not isinstance(record, dict) or record.get("event") != "done":
                continue
            test, outcome = self.key(str(record.get("id", ""))), str(record.get("outcome", ""))
            if test in self.wanted and outcome != "rerun":
                self.outcomes[test] = outcome
        return len(self.outcomes) == len(self.wanted)

    def passed(self) -> frozenset[str]:
        """The wanted tests whose final outcome is a pass."""
        return frozenset(test for test, outcome in self.outcomes.items() if outcome == "passed")


class Tail:
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


def collected_count(path: Path) -> int | None:
    """How many tests pytest collected (after any selection), as the live plugin recorded it in
    the progress file at ``path``; None when it recorded nothing (not pytest, or xdist's
    controller, which does not collect).

    The first record is pytest's own: a test that starts pytest in turn appends its own.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if '"collected"' in line:
                    return int(json.loads(line)["count"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


class ScrubbedRecords:
    """Appends JSON lines (the live plugin's progress records) to ``path``, every string in
    them scrubbed once decoded: the ``id`` by ``Redactor.redact_id`` (tagged, so a line names
    its test by the id its results carry: ``retest.FirstVerdict`` finds it), any other string
    by ``Redactor.redact``. The decoded text, not the escaped bytes: a secret is found however
    JSON spelled it (an escaped quote, backslash or ``\\u00e4``). A line that is no JSON object
    (torn, foreign) is dropped, as its readers would drop it, and so is a line longer than
    ``hold`` bytes: nothing goes out unread. Same calls as ``ScrubbingWriter``. ``interval_s``:
    lines wait at most this long (or until ``BATCH`` bytes) before they are written; 0 writes
    each as it comes. ``dropped`` counts lines dropped. Raises ``OSError`` when the file
    cannot be written."""

    def __init__(
        self,
        path: Path,
        redactor: Redactor | None,
        *,
        interval_s: float = INTERVAL_S,
        hold: int = HOLD,
    ) -> None:
        self.redactor = redactor
        self.interval_s = interval_s
        self.hold = hold
        self.dropped = 0
        self._partial = bytearray()
        self._skipping = False  # inside a line past the hold: dropped up to its end
        self._out: list[bytes] = []
        self._size = 0
        self._last_write = time.monotonic()
        self._memo: dict[tuple[bool, str], str] = {}  # (is an id, text) -> scrubbed
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, data: bytes | bytearray | memoryview | str) -> None:
        chunk = utf8(data) if isinstance(data, str) else bytes(data)
        if self._skipping:
            end = chunk.find(b"\n")
            if end < 0:
                return
            chunk, self._skipping = chunk[end + 1 :], False
        self._partial += chunk
        if b"\n" in chunk:
            *lines, rest = self._partial.split(b"\n")
            self._partial = rest
            for line in lines:
                self._take(line)
        if len(self._partial) > self.hold:
            self._partial, self._skipping = bytearray(), True
            self.dropped += 1
        if self._size >= BATCH or time.monotonic() - self._last_write >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        """Write out the lines taken so far."""
        data = memoryview(b"".join(self._out))
        self._out, self._size = [], 0
        while data:
            data = data[os.write(self._fd, data) :]
        self._last_write = time.monotonic()

    def close(self) -> None:
        """Take a last line that had no line break yet, write everything out, close."""
        if self._fd < 0:
            return
        try:
            if self._partial and not self._skipping:
                self._take(self._partial)
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ScrubbedRecords:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _take(self, line: bytes | bytearray) -> None:
        try:
            record = json.loads(line)
        except ValueError:  # undecodable bytes too (UnicodeDecodeError)
            record = None
        if not isinstance(record, dict):
            self.dropped += 1
            return
        out = (json.dumps(self._scrubbed(record)) + "\n").encode()
        self._out.append(out)
        self._size += len(out)

    def _scrubbed(self, value: object, key: object = None) -> object:
        """``value`` (decoded JSON) with every string in it, keys too, scrubbed; an ``id`` as a
        test id (tagged)."""
        if isinstance(value, str):
            return self._scrub(value, key == "id")
        if isinstance(value, dict):
            return {self._scrub(k, False): self._scrubbed(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrubbed(item) for item in value]
        return value

    def _scrub(self, text: str, as_id: bool) -> str:
        """``text`` scrubbed, each short text once: a redactor's answer never changes, and the
        same few words (the records' keys, events, outcomes) and each test's id (three records
        a test) come again and again. At most ``MEMO`` texts of up to ``MEMO_CHARS`` are kept."""
        if self.redactor is None:
            return text
        done = self._memo.get((as_id, text))
        if done is None:
            done = self.redactor.redact_id(text) if as_id else self.redactor.redact(text)
            if len(text) <= MEMO_CHARS:
                if len(self._memo) >= MEMO:
                    self._memo.clear()
                self._memo[(as_id, text)] = done
        return done
