"""pytest plugin loaded by deployloop with ``-p deployloop_live``: streams per-test progress.

Standard library only: it runs inside the suite's own environment, where deployloop's
dependencies may not be installed. Each line of $DEPLOYLOOP_PROGRESS is one JSON object:
``collected`` (count) once, then per test ``start`` (id) and ``test`` (id, outcome), and
``done`` (id, outcome) once the test's attempt is over, teardown included: its final outcome,
the worst of its reports (``FINAL_RANK``), or ``rerun`` when pytest-rerunfailures runs it again
(each attempt has its own start and finish: only an attempt without a ``rerun`` report is final).
A failed-first pass reads its verdict from these before pytest exits (``retest.FirstVerdict``).
Under pytest-xdist the controller collects nothing itself: its count is the first worker's
collection as reported back to it (every worker collects the same tests, or xdist stops).

Lines go out when a test starts, when the collection is counted, at once when a call failed
(a slow teardown must not hide a failure), and when an attempt ends, but for a pass in a
session pytest runs itself (not pytest-xdist's, where another worker's test may run on for
minutes): that ``done`` goes out with the next test's ``start``, which pytest reports straight
after it, or as its test loop ends, before any session-end hook of the suite's own. One write
a test in a plain run, and the reader still sees the running test and every outcome as they
happen.

deployloop points $DEPLOYLOOP_PROGRESS at a FIFO it reads and scrubs into the kept
``.progress.jsonl`` (test ids may hold secrets). Progress is a convenience: when nobody reads
the FIFO (deployloop was killed) or a write fails, the plugin falls silent and the suite runs on.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from json.encoder import encode_basestring_ascii as _quoted  # C: a JSON string
from typing import Any

import pytest

_stream: _Stream | None = None
_counted = False  # the collected count is written once, by pytest itself or xdist's first node
# Worst last: a test's attempt ends with the worst outcome any of its reports had.
FINAL_RANK = ("passed", "xpassed", "xfailed", "skipped", "failed", "error", "rerun")
# node id -> worst outcome so far of its running attempt (xdist interleaves workers' tests)
_attempts: dict[str, str] = {}
_holding = False  # a pass's done may wait for the next start: pytest runs the tests itself


class _Stream:
    """The progress stream: whole lines, written in batches of at most ``select.PIPE_BUF``
    bytes (one line alone when longer), so that a write to the FIFO is atomic (pipe(7)): two
    pytest runs of one command never tear each other's lines of up to ``PIPE_BUF`` bytes (a
    longer one may be torn; readers skip a line that does not parse)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending: list[bytes] = []
        self.size = 0

    def add(self, line: bytes) -> None:
        if self.pending and self.size + len(line) > select.PIPE_BUF:
            self.flush()
        self.pending.append(line)
        self.size += len(line)

    def flush(self) -> None:
        data = memoryview(b"".join(self.pending))
        self.pending, self.size = [], 0
        while data:  # a blocking pipe takes a long line in parts
            data = data[os.write(self.fd, data) :]


def _write(fields: str, flush: bool = False) -> None:
    """One record, ``{fields, "ts": now}``: ``fields`` are JSON object members, written by hand
    (``json.dumps`` of a dict would cost more per test than the rest of the plugin)."""
    if _stream is not None:
        _stream.add(f'{{{fields}, "ts": {time.time()!r}}}\n'.encode())
        if flush:
            _flush()


def _test(event: str, test_id: str, outcome: str | None = None) -> str:
    """The members of a per-test record."""
    fields = f'"event": "{event}", "id": {_quoted(test_id)}'
    return fields if outcome is None else f'{fields}, "outcome": {_quoted(outcome)}'


def _flush() -> None:
    if _stream is None:
        return
    try:
        _stream.flush()
    except OSError:  # the reader is gone (EPIPE): progress is not worth failing a suite for
        _close()


def _open(path: str) -> _Stream | None:
    """The progress stream; None when it is a FIFO nobody reads (opening would block)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
    except OSError:
        return None
    os.set_blocking(fd, True)  # a full pipe waits for the reader, it does not drop lines
    return _Stream(fd)


def _close() -> None:
    global _stream
    stream, _stream = _stream, None
    if stream is not None:
        with contextlib.suppress(OSError):  # the last flush can meet a gone reader too
            stream.flush()
        os.close(stream.fd)


def pytest_configure(config: Any) -> None:
    global _stream
    path = os.environ.get("DEPLOYLOOP_PROGRESS")
    if path and not hasattr(config, "workerinput"):  # xdist workers report through the controller
        _stream = _open(path)


def pytest_sessionstart(session: Any) -> None:
    global _holding
    # pytest-xdist's controller (its "dsession" plugin, registered at configure) runs no test
    _holding = not session.config.pluginmanager.has_plugin("dsession")


def pytest_collection_finish(session: Any) -> None:
    _collected(len(session.items))


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: absent when xdist is not installed
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """On xdist's controller, which does not collect: a worker's collection, reported back."""
    _collected(len(ids))


def _collected(count: int) -> None:
    global _counted
    if not _counted:
        _counted = True
        _write(f'"event": "collected", "count": {int(count)}', flush=True)


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    if _stream is None:
        return
    # The live view names the test that is running now, not only the last one that finished.
    _attempts[nodeid] = "passed"
    _write(_test("start", nodeid), flush=True)


def pytest_runtest_logreport(report: Any) -> None:
    if _stream is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = report.outcome  # passed, failed, skipped, or pytest-rerunfailures' rerun
        if report.when == "setup" and outcome != "rerun":
            outcome = "error" if report.failed else "skipped"
        _write(_test("test", report.nodeid, outcome), flush=outcome in ("failed", "error"))
    if _clean(report):
        return  # a pass ranks lowest: it changes no attempt's outcome
    if report.nodeid in _attempts:
        _attempts[report.nodeid] = max(
            _attempts[report.nodeid], _final(report), key=FINAL_RANK.index
        )


def _clean(report: Any) -> bool:
    """A passing report without an xfail mark (an xpass outranks a pass)."""
    return bool(report.passed and not hasattr(report, "wasxfail"))


def _final(report: Any) -> str:
    """One report's part in its test's final outcome, in pytest's words (``FINAL_RANK``)."""
    if report.outcome == "rerun":  # pytest-rerunfailures: this attempt is not the last
        return "rerun"
    if report.failed:  # a failing subtest is a failing call too
        return "failed" if report.when == "call" else "error"
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return "skipped" if report.skipped else "passed"


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    outcome = _attempts.pop(nodeid, None)
    if outcome is not None:
        # Held only where the next thing pytest does is start a test or end its loop (above).
        _write(_test("done", nodeid, outcome), flush=outcome != "passed" or not _holding)


@pytest.hookimpl(hookwrapper=True, trylast=True)  # innermost: before other wrappers' ends
def pytest_runtestloop(session: Any) -> Any:
    """The last test's ``done``, as the test loop ends: before session-end hooks, the report
    and pytest's exit, which may take a while (a hook of the suite's may hang)."""
    yield
    _flush()


def pytest_unconfigure(config: Any) -> None:
    _close()
