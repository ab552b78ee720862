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

deployloop points $DEPLOYLOOP_PROGRESS at a FIFO it reads and scrubs into the kept
``.progress.jsonl`` (test ids may hold secrets). Progress is a convenience: when nobody reads
the FIFO (deployloop was killed) or a write fails, the plugin falls silent and the suite runs on.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

import pytest

_handle: Any = None
_counted = False  # the collected count is written once, by pytest itself or xdist's first node
# Worst last: a test's attempt ends with the worst outcome any of its reports had.
FINAL_RANK = ("passed", "xpassed", "xfailed", "skipped", "failed", "error", "rerun")
# node id -> worst outcome so far of its running attempt (xdist interleaves workers' tests)
_attempts: dict[str, str] = {}


def _write(record: dict[str, Any]) -> None:
    if _handle is None:
        return
    try:
        _handle.write(json.dumps(record) + "\n")
        _handle.flush()
    except OSError:  # the reader is gone (EPIPE): progress is not worth failing a suite for
        _close()


def _open(path: str) -> Any:
    """The progress stream; None when it is a FIFO nobody reads (opening would block)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
    except OSError:
        return None
    os.set_blocking(fd, True)  # a full pipe waits for the reader, it does not drop lines
    return os.fdopen(fd, "a", encoding="utf-8")


def _close() -> None:
    global _handle
    handle, _handle = _handle, None
    if handle is not None:
        with contextlib.suppress(OSError):  # the last flush can meet a gone reader too
            handle.close()


def pytest_configure(config: Any) -> None:
    global _handle
    path = os.environ.get("DEPLOYLOOP_PROGRESS")
    if path and not hasattr(config, "workerinput"):  # xdist workers report through the controller
        _handle = _open(path)


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
        _write({"event": "collected", "count": count, "ts": time.time()})


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    # The live view names the test that is running now, not only the last one that finished.
    _attempts[nodeid] = "passed"
    _write({"event": "start", "id": nodeid, "ts": time.time()})


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = (
            report.outcome if report.when == "call" else ("error" if report.failed else "skipped")
        )
        _write({"event": "test", "id": report.nodeid, "outcome": outcome, "ts": time.time()})
    if report.nodeid in _attempts:
        _attempts[report.nodeid] = max(
            _attempts[report.nodeid], _final(report), key=FINAL_RANK.index
        )


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
        _write({"event": "done", "id": nodeid, "outcome": outcome, "ts": time.time()})


def pytest_unconfigure(config: Any) -> None:
    _close()
