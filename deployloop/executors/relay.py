"""Live progress of jobs running on a Dask cluster, carried back to this machine (issue 21).

A worker's forwarder (``remote.forwarding``) sends the lines its suite's progress file gains,
every ``remote.FORWARD_S``, as events on the session's topic (Dask's structured events:
``Worker.log_event`` → the scheduler → ``Client.subscribe_topic``, kept by the scheduler in a
bounded deque, ``distributed.admin.low-level-log-length``). ``ProgressRelay`` appends them to the
running job's own progress file here (``runner.progress_path``), the one the live view and
status tail for a local suite, so both count tests as they finish, not when a shard returns.

A message is ``{"key": <the job's task key>, "data": <bytes>}`` (Dask adds ``worker``); anything
else, a key not running, or data past ``MAX_MESSAGE`` is dropped (a cluster's topics are open
to every client of it). Data is whole JSON lines, scrubbed on the worker and again here with
this machine's secrets. A job retried elsewhere goes on appending: its live counts include the
lost attempt's tests until it ends; its result counts only the retry's.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from deployloop.progress import ScrubbedRecords
from deployloop.redact import Redactor

MAX_MESSAGE = 256 * 1024  # bytes of progress one event may carry (the forwarder sends 64 KiB)


class ProgressRelay:
    """Progress events for running jobs, each to its job's file. ``receive`` runs in the Dask
    client's event-loop thread; ``open``/``close`` in the jobs' threads: one lock."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._lock = threading.Lock()
        self._writers: dict[str, tuple[ScrubbedRecords, Path]] = {}

    def open(self, key: str, path: Path) -> None:
        """Start ``path`` afresh for the job whose task is ``key`` (raises OSError)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        writer = ScrubbedRecords(path, self.redactor)
        with self._lock:
            self._writers[key] = (writer, path)

    def close(self, key: str) -> None:
        """The job ended: later events for it are dropped, and its file too, as ``run_suite``
        drops a local suite's (its results are in the state and the JUnit file)."""
        with self._lock:
            found = self._writers.pop(key, None)
        if found is not None:
            _drop(*found)

    def receive(self, event: tuple[float, Any]) -> None:
        """One event from the topic: ``(scheduler timestamp, message)``. Never raises (a
        handler that raised would only be logged by the client)."""
        message = event[1] if isinstance(event, tuple) and len(event) == 2 else None
        if not isinstance(message, dict):
            return
        key, data = message.get("key"), message.get("data")
        if not isinstance(key, str) or not isinstance(data, bytes) or len(data) > MAX_MESSAGE:
            return
        with self._lock:
            found = self._writers.get(key)
            if found is None:
                return
            try:
                found[0].write(data)
                found[0].flush()  # an event is a batch already: the live view sees it now
            except OSError:  # progress is a convenience: the job's result does not depend on it
                del self._writers[key]
                _drop(*found)


def _drop(writer: ScrubbedRecords, path: Path) -> None:
    with contextlib.suppress(OSError):  # a full disk: nothing more to write, nothing kept
        writer.close()
    path.unlink(missing_ok=True)
