"""Pipes copied into scrubbing writers by one thread, so a child's output is scrubbed as it comes.

A suite's stdout and stderr (``process.run``) and the pytest plugin's progress FIFO
(``runner``) are read here and written through :class:`~deployloop.scrub.ScrubbingWriter` and
:class:`~deployloop.progress.ScrubbedRecords`: what reaches the disk is already masked. Reads
wait in ``poll`` with a timeout: an idle stream is flushed meanwhile (the live view sees a
progress line soon after it was written), and ``close`` ends the copy even when a stray process
outside the child's group still holds a pipe open: once the writers are done, what is left to
read is drained for at most ``DRAIN_S`` seconds. After a read that found less than a chunk,
the pump lets ``BATCH_S`` pass before it reads again: a suite writing a line per test (its
dots, the progress plugin's records) then wakes it some 50 times a second instead of twice a
test, and every wake-up takes CPU the suite and its target share (measured: 1000 tests each
asking a loopback server once ran 0.1 s slower woken per line). A stream that fills whole
chunks is read without pause.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

IDLE_S = 0.2  # an idle stream is flushed this often
DRAIN_S = 2.0  # after close(): how long what is still readable is copied
BATCH_S = 0.02  # after a short read: how long more output may gather before the next one
CHUNK = 1 << 16


class Writer(Protocol):
    """Where a stream goes: ``scrub.ScrubbingWriter`` or ``progress.ScrubbedRecords``."""

    def write(self, data: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class Pump:
    """Copies each added read end (``add(fd, writer)``, before ``start``) into its writer.

    ``close()`` (or leaving the ``with`` block) drains, then closes every writer and read end.
    ``error`` holds the first ``OSError`` a writer raised (a full disk): its stream is read on
    and dropped from then on, so the child never blocks on a full pipe.
    """

    def __init__(self, name: str) -> None:
        self.error: OSError | None = None
        self._writers: dict[int, Writer] = {}
        self._broken: set[int] = set()  # streams whose writer failed: read and dropped
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def add(self, fd: int, writer: Writer) -> None:
        """Copy what ``fd`` (a pipe's read end, owned by the pump from now on) yields."""
        self._writers[fd] = writer

    def start(self) -> Pump:
        self._thread.start()
        return self

    def close(self) -> None:
        """Copy what is left (up to ``DRAIN_S``), then close the writers and the read ends."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join()
        for fd, writer in self._writers.items():
            self._guarded(fd, writer.close)
            os.close(fd)
        self._writers.clear()

    def __enter__(self) -> Pump:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> None:
        poller = select.poll()
        for fd in self._writers:
            poller.register(fd, select.POLLIN)
        live, stop_at = set(self._writers), float("inf")
        while live and time.monotonic() < stop_at:
            ready = poller.poll(IDLE_S * 1000)
            if self._closing.is_set() and stop_at == float("inf"):
                stop_at = time.monotonic() + DRAIN_S
            if not ready:
                if self._closing.is_set():
                    return  # nothing more came for a while after the writers were done
                for fd, writer in self._writers.items():
                    self._guarded(fd, writer.flush)
            full = False
            for fd, _ in ready:
                size = self._copy(fd)
                if size is None:
                    poller.unregister(fd)
                    live.discard(fd)
                full = full or size == CHUNK
            if ready and not full:
                self._closing.wait(BATCH_S)  # cut short by close(): then drained at once

    def _copy(self, fd: int) -> int | None:
        """One read from ``fd`` into its writer: the bytes read, None at end of file."""
        try:
            chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            return 0
        if not chunk:
            return None
        writer = self._writers[fd]
        self._guarded(fd, lambda: writer.write(chunk))
        return len(chunk)

    def _guarded(self, fd: int, action: Callable[[], None]) -> None:
        """``action`` on the stream's writer, unless it failed before; a failure is kept."""
        if fd in self._broken:
            return
        try:
            action()
        except OSError as exc:
            self.error = self.error or exc
            self._broken.add(fd)
