"""What a Dask worker runs for one job: the same ``runner.run_suite`` as on this machine, in a
private scratch directory, returning the JUnit XML and a bounded log tail.

A worker needs deployloop installed and the suite's checkout at the job's ``cwd`` with its
environment (README, "Running on a Dask cluster"). Two things only a cluster has:

- a stop: the coordinator sets a named ``distributed.Event``; a watcher thread here turns it
  into the run's stop, so the suite's process group gets TERM, a grace, KILL, as locally;
- live progress: the lines the suite's progress file gains go back to the coordinator as events
  on the session's topic (``forwarding``; read there by ``relay.ProgressRelay``);
- a worker killed mid-job: Dask starts the task again elsewhere. A named ``distributed.Variable``
  lists the workers that started it, so the retry says whose death it replaces, and a third
  start gives up with a harness error naming them (one retry, never a silent pass).

Process groups a killed worker left behind (its pid files survive it in
``<tmp>/deployloop-worker/<worker pid>-*/``) are stopped by the next task on that host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from deployloop import process, process_groups
from deployloop.models import RunEnd, SuiteRun
from deployloop.redact import Redactor
from deployloop.runner import SuiteJob, progress_path, run_suite

TAIL_BYTES = 64 * 1024  # of the suite's log, sent back with the result
WATCH_S = 0.25  # how often the stop event is checked
MAX_STARTS = 2  # the first attempt and one retry on another worker
WORKER_ROOT = "deployloop-worker"
FORWARD_S = 0.25  # how often a running suite's new progress lines are sent to the coordinator
FORWARD_BYTES = 64 * 1024  # of progress lines in one event: a flood goes as several


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One job for a worker. ``secrets``: what the worker masks besides its own environment's;
    ``stop_name``/``starts_name``: the session's stop Event and this task's start list (also
    the task's key); ``progress_topic``: where its live progress goes (``relay``).
    ``deadline``: the session's end in wall-clock seconds since the epoch (None: no deadline).
    ``id_key``: the state directory's key for tagging secrets in test ids (``Redactor.redact_id``),
    so a worker tags them as this machine does: two ids that differ only in a secret stay two.
    ``job.deadline`` is on the coordinator's monotonic clock, which means nothing on another
    machine, so it travels as ``deadline`` (see ``for_worker``) and the worker puts it back on
    its own monotonic clock; hosts' wall clocks agree (NTP) where monotonic ones never do."""

    job: SuiteJob
    secrets: tuple[str, ...]
    stop_name: str
    starts_name: str
    progress_topic: str
    deadline: float | None = None
    id_key: bytes | None = None

    @classmethod
    def for_worker(
        cls,
        job: SuiteJob,
        secrets: tuple[str, ...],
        names: tuple[str, str, str],
        id_key: bytes | None,
    ) -> TaskSpec:
        """The spec of ``job`` with its deadline moved to the wall clock; ``names``: the stop
        Event's, the start list's and the progress topic's."""
        wall = None if job.deadline is None else time.time() + job.deadline - time.monotonic()
        moved = dataclasses.replace(job, deadline=None)
        return cls(moved, secrets, *names, wall, id_key)

    def local_job(self, junit_path: Path, log_path: Path) -> SuiteJob:
        """The job as this worker runs it: its files in ``junit_path``/``log_path``, its
        deadline on this machine's monotonic clock."""
        here = None if self.deadline is None else time.monotonic() + self.deadline - time.time()
        return dataclasses.replace(
            self.job, junit_path=junit_path, log_path=log_path, deadline=here
        )


@dataclass(frozen=True, slots=True)
class TaskResult:
    """The job's run (paths still the worker's), its kept JUnit XML (None when none was
    written), the end of its log, the worker that ran it and the workers lost running it."""

    run: SuiteRun
    junit: bytes | None
    log_tail: bytes
    worker: str
    lost: tuple[str, ...]


def run_task(spec: TaskSpec) -> TaskResult:
    """Run ``spec.job`` on this worker; never raises for the suite (see the module docstring)."""
    from distributed import Event, Variable, get_client, get_worker

    client = get_client()
    here = get_worker()
    worker = str(here.address)
    starts = Variable(spec.starts_name, client=client)
    lost = tuple(starts.get(timeout=30))
    if len(lost) >= MAX_STARTS:
        return _given_up(spec.job, worker, lost)
    starts.set([*lost, worker])
    stop_orphans()
    stop = threading.Event()
    finished = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(Event(spec.stop_name, client=client), stop, finished), daemon=True
    )
    watcher.start()
    try:
        return _run_here(spec, stop, worker, lost, functools.partial(_send, here, spec))
    finally:
        finished.set()
        watcher.join()


def _watch(event: object, stop: threading.Event, finished: threading.Event) -> None:
    """Set ``stop`` once the coordinator's Event is set, until the job has finished."""
    while not finished.is_set():
        with contextlib.suppress(Exception):  # a scheduler gone: the suite's timeout still holds
            if event.wait(timeout=WATCH_S):  # type: ignore[attr-defined]
                stop.set()
                return
        finished.wait(WATCH_S)


def _run_here(
    spec: TaskSpec,
    stop: threading.Event,
    worker: str,
    lost: tuple[str, ...],
    send: Callable[[bytes], None],
) -> TaskResult:
    job = spec.job
    base = _owned_dir()
    scratch = Path(tempfile.mkdtemp(prefix="task-", dir=base))
    try:
        local = spec.local_job(scratch / job.junit_path.name, scratch / job.log_path.name)
        redactor = Redactor.from_env(os.environ, extra=spec.secrets).with_id_key(spec.id_key)
        with forwarding(progress_path(local), send):
            run = run_suite(local, stop, redactor=redactor)
        junit = local.junit_path.read_bytes() if local.junit_path.is_file() else None
        tail = process.tail(local.log_path, TAIL_BYTES).encode()
        return TaskResult(run, junit, tail, worker, lost)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _send(here: Any, spec: TaskSpec, data: bytes) -> None:
    """Progress lines to the coordinator: an event on the session's topic (``relay``).
    ``here`` is the ``distributed.Worker``, found in the task's thread (``get_worker`` knows
    it there only); its ``log_event`` may be called from any thread."""
    here.log_event(spec.progress_topic, {"key": spec.starts_name, "data": data})


@contextlib.contextmanager
def forwarding(path: Path, send: Callable[[bytes], None]) -> Iterator[None]:
    """While the block runs, ``send`` gets the whole lines ``path`` gains, every FORWARD_S, at
    most FORWARD_BYTES a call; after it, the rest. The file may appear late and be removed
    when the run ends (``run_suite`` drops it): once open it is read to its end regardless."""
    finished = threading.Event()
    thread = threading.Thread(
        target=_forward, args=(path, send, finished), name="progress-forward", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        finished.set()
        thread.join()


def _forward(path: Path, send: Callable[[bytes], None], finished: threading.Event) -> None:
    handle = None
    rest = b""
    try:
        while True:
            last = finished.wait(FORWARD_S)
            if handle is None:
                with contextlib.suppress(OSError):  # not there yet (or already gone)
                    handle = open(path, "rb")  # noqa: SIM115 (held across polls, closed below)
            if handle is not None:
                rest = _send_lines(handle, rest, send)
            if last:
                return
    finally:
        if handle is not None:
            handle.close()


def _send_lines(handle: BinaryIO, rest: bytes, send: Callable[[bytes], None]) -> bytes:
    """Send every whole line ``handle`` has now (``rest``: the unfinished one before); returns
    the unfinished line now."""
    while chunk := handle.read(FORWARD_BYTES):
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        rest = data[cut:][-FORWARD_BYTES:]  # a line past the bound is no progress line
        if cut:
            with contextlib.suppress(Exception):  # progress is a convenience: the run goes on
                send(data[:cut])
    return rest


def _owned_dir() -> Path:
    """This worker process's directory for its tasks' files (pid files among them)."""
    root = Path(tempfile.gettempdir()) / WORKER_ROOT
    root.mkdir(mode=0o700, exist_ok=True)
    mine = root / f"{os.getpid()}-{os.getuid()}"
    mine.mkdir(mode=0o700, exist_ok=True)
    return mine


def stop_orphans() -> int:
    """Stop the process groups that workers since killed left running on this host (their pid
    files, ``runner.pid_path``); returns how many were stopped."""
    root = Path(tempfile.gettempdir()) / WORKER_ROOT
    stopped = 0
    for owned in root.glob(f"*-{os.getuid()}"):
        owner = int(owned.name.split("-")[0])
        if owner == os.getpid() or _alive(owner):
            continue
        stopped += sum(process_groups.stop_orphan(pid) for pid in owned.glob("*/*.pid"))
        shutil.rmtree(owned, ignore_errors=True)
    return stopped


def _alive(pid: int) -> bool:
    """Running (a zombie is dead: a worker's parent may not have reaped it yet). Linux /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _given_up(job: SuiteJob, worker: str, lost: tuple[str, ...]) -> TaskResult:
    """A harness error for a job whose workers kept dying: it proves nothing about staging."""
    reason = f"workers lost mid-run: {', '.join(lost)} (retried once; not run again)"
    run = job.not_run(reason, RunEnd.RUNNER_ERROR)
    return TaskResult(run, None, f"[deployloop] {reason}\n".encode(), worker, lost)
