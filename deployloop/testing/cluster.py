"""A Dask distributed cluster on loopback for tests and benches: a ``dask scheduler`` on
127.0.0.1 with port 0 (its address read from a scheduler file) and ``dask worker`` processes
without a nanny (a killed worker stays dead, as a lost machine would). Needs ``distributed``
(``deployloop[dask]``). Every process is stopped by ``stop()``: call it in a finally.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

START_S = 60.0  # for the scheduler file and the workers' registration, on a loaded machine


class LoopbackCluster:
    """The scheduler, started at once; workers through ``ensure_workers``.
    Raises TimeoutError when the scheduler or a worker does not come up within START_S."""

    def __init__(self, directory: Path, threads: int = 4) -> None:
        self.directory = directory
        self.threads = threads
        self.file = directory / "scheduler.json"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self._start("scheduler", "--host", "127.0.0.1", "--port", "0")
        try:
            _poll(self._written, "the scheduler file")
        except BaseException:
            self.stop()  # no process outlives a cluster that never came up
            raise

    def __enter__(self) -> LoopbackCluster:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _written(self) -> bool:
        """The scheduler file is there and whole (the scheduler writes it in place: a reader
        can meet it empty or half written)."""
        try:
            return bool(json.loads(self.file.read_text())["address"])
        except (OSError, ValueError, KeyError):
            return False

    @property
    def address(self) -> str:
        """``tcp://127.0.0.1:<port>``."""
        return str(json.loads(self.file.read_text())["address"])

    def _start(self, kind: str, *args: str) -> subprocess.Popen[bytes]:
        dask = Path(sys.executable).with_name("dask")
        argv = [str(dask), kind, *args, "--scheduler-file", str(self.file)]
        with open(self.directory / f"{kind}-{len(self.procs)}.log", "ab") as log:
            proc = subprocess.Popen(
                [*argv, "--dashboard-address", ":0"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.procs.append(proc)
        return proc

    def ensure_workers(self, count: int) -> None:
        """Start workers until ``count`` live ones are registered with the scheduler."""
        self.workers = [w for w in self.workers if w.poll() is None]
        while len(self.workers) < count:
            args = ("--host", "127.0.0.1", "--nthreads", str(self.threads), "--no-nanny")
            self.workers.append(self._start("worker", *args))
        _poll(lambda: self.registered() == count, f"{count} workers")

    def registered(self) -> int:
        """How many workers the scheduler knows now."""
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            return len(client.scheduler_info()["workers"])

    def stop(self) -> None:
        """TERM every process, KILL what is still there after 10 s; all reaped."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _poll(ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready()`` until true (a process coming up has nothing to wait on)."""
    deadline = time.monotonic() + START_S
    while not ready():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} did not come up within {START_S:g} s")
        time.sleep(0.1)
