"""The one subprocess wrapper: own process group, output scrubbed into a file, staged shutdown.

Tests under staging start servers, browsers and workers of their own; stopping only the direct
child would leave them running all night. Every child therefore leads its own process group,
and stopping means TERM to the whole group, a grace period, then KILL.

The child writes to a pipe, never to the log: a :class:`~deployloop.pump.Pump` thread copies
the pipe into a :class:`~deployloop.scrub.ScrubbingWriter`, so the log holds no raw secret at
any moment (a ``kill -9`` of deployloop leaves none) and never passes ``LOG_LIMIT``.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from deployloop.models import RunEnd
from deployloop.process_groups import POLL_S, PidRecord, reap_strays, shutdown_group, start_ticks
from deployloop.pump import Pump
from deployloop.redact import Redactor
from deployloop.scrub import Cap, ScrubbingWriter

SHELL_SYNTAX = re.compile(r"[|&;<>$`*?~\n]|^\s*\w+=")  # not (): gcloud --format=value(...)
TAIL_BYTES = 4000
LOG_LIMIT = 64 * 1024 * 1024  # per suite log file, at every moment
LOG_KEEP = 8 * 1024 * 1024  # the start of the log kept when the cap cuts it back
SHELL_NOT_FOUND = 127
GRACE_S = 5.0  # between TERM to a process group and KILL


@dataclass(frozen=True, slots=True)
class Completed:
    """How a child process ended.

    ``ended`` is COMPLETED (exited by itself), TIMEOUT, INTERRUPTED (``stop`` was set),
    FAILED_TO_START (then ``start_error`` says why) or KILLED_BY_SIGNAL (not by us).
    """

    command: str
    returncode: int | None  # None when it could not be started
    wall_s: float
    ended: RunEnd = RunEnd.COMPLETED
    start_error: str | None = None

    @property
    def signal_name(self) -> str | None:
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"


def split_command(command: str | Sequence[str]) -> list[str]:
    """argv for ``command``; a string with shell syntax runs under /bin/sh."""
    if not isinstance(command, str):
        return list(command)
    if SHELL_SYNTAX.search(command):
        return ["/bin/sh", "-c", command]
    return shlex.split(command)


def run(
    argv: Sequence[str],
    *,
    log_path: Path,
    timeout: float,
    stop: threading.Event,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    grace_s: float = GRACE_S,
    pid_file: Path | None = None,
    force: threading.Event | None = None,
    stderr_path: Path | None = None,
    redactor: Redactor | None = None,
    stdin_bytes: bytes | None = None,
    scratch: Path | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> Completed:
    """Run ``argv`` to completion, output appended to ``log_path``; never raises for the child.

    Past ``timeout`` seconds, or once ``stop`` is set, the child's group gets TERM, ``grace_s``
    seconds, then KILL; ``force`` (a second Ctrl-C) ends the grace at once. Whatever happens,
    an exception included, the group is stopped and ``pid_file`` removed before this returns.
    With ``stderr_path`` stderr goes there instead of the log (a command whose stdout is data).
    With ``redactor`` the log is scrubbed as it is written (see the module docstring).
    Raises ``OSError`` only when the log cannot be opened.
    ``stdin_bytes`` is the child's stdin (else /dev/null); it comes from a temporary file, so a
    child that never reads it cannot block us on a full pipe.
    ``scratch`` is a directory of raw files the caller removes when the run ends; it is named in
    ``pid_file`` so that, after a ``kill -9`` of deployloop, ``stop_orphan`` removes it.
    ``meanwhile`` is called every ``POLL_S`` or so while the child runs (work on what it has
    already written); what it raises ends the run as an exception would.
    """
    command = shlex.join(argv)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    read_fd, write_fd = os.pipe()
    try:
        log = ScrubbingWriter(log_path, redactor, cap=log_cap())
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        raise
    pump = Pump(f"log-{log_path.name}")
    pump.add(read_fd, log)
    with pump, _open_optional(stderr_path) as err:
        try:
            child = _start(argv, write_fd, write_fd if err is None else err, cwd, env, stdin_bytes)
        except OSError as exc:
            reason = start_error(argv, exc, env, cwd)
            os.write(write_fd, f"deployloop: cannot start {command}: {reason}\n".encode())
            return Completed(command, None, 0.0, RunEnd.FAILED_TO_START, reason)
        finally:
            os.close(write_fd)  # the child holds its copy: end of file once its group is gone
        try:
            if pid_file is not None:
                PidRecord(child.pid, argv[0], start_ticks(child.pid), scratch).write(pid_file)
            waited = _wait(child, started + timeout, stop, meanwhile)
        finally:
            _stop_group(child, grace_s, force)
            if pid_file is not None:
                pid_file.unlink(missing_ok=True)
    wall_s = time.monotonic() - started
    missing = _shell_not_found(argv, child.returncode, env)
    if missing is not None:
        return Completed(command, child.returncode, wall_s, RunEnd.FAILED_TO_START, missing)
    if waited is RunEnd.COMPLETED and child.returncode < 0:
        waited = RunEnd.KILLED_BY_SIGNAL
    return Completed(command, child.returncode, wall_s, waited)


def log_cap() -> Cap:
    """The suite log's bound (read when a run starts: tests lower it)."""
    note = f"\n[deployloop: log capped; output past {LOG_KEEP} bytes cut]\n".encode()
    return Cap(LOG_LIMIT, LOG_KEEP, note)


def start_error(
    argv: Sequence[str],
    exc: OSError,
    env: Mapping[str, str] | None,
    cwd: str | Path | None,
) -> str:
    """Why ``argv`` could not start, saying what to fix: cron and systemd start with a bare PATH.

    A program named without a slash that is not found names the PATH it was looked up on.
    """
    program = argv[0]
    if isinstance(exc, FileNotFoundError) and cwd is not None and not Path(cwd).is_dir():
        return f"cannot start: working directory {cwd} does not exist"
    if isinstance(exc, FileNotFoundError) and "/" not in program:
        return _not_on_path(f"`{program}`", env)
    return f"cannot start `{program}`: {exc.strerror or exc}"


def _shell_not_found(
    argv: Sequence[str], returncode: int | None, env: Mapping[str, str] | None
) -> str | None:
    """/bin/sh exits 127 when a program it was told to run is not found (POSIX 2.8.2)."""
    if returncode != SHELL_NOT_FOUND or list(argv[:2]) != ["/bin/sh", "-c"]:
        return None
    return _not_on_path(f"a program in `{argv[2]}`", env)


def _not_on_path(what: str, env: Mapping[str, str] | None) -> str:
    path = (os.environ if env is None else env).get("PATH", os.defpath)
    return (
        f"{what} not found on PATH ({path}): install it or give its full path / "
        "put the venv's bin first on PATH"
    )


def _open_optional(path: Path | None) -> contextlib.AbstractContextManager[BinaryIO | None]:
    return contextlib.nullcontext() if path is None else open(path, "ab")


def _start(
    argv: Sequence[str],
    out: int,
    err: int | BinaryIO,
    cwd: str | Path | None,
    env: Mapping[str, str] | None,
    stdin_bytes: bytes | None = None,
) -> subprocess.Popen[bytes]:
    """The child, leading a process group of its own (see the module docstring)."""
    with _stdin_file(stdin_bytes) as stdin:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


@contextlib.contextmanager
def _stdin_file(data: bytes | None) -> Iterator[BinaryIO | None]:
    """``data`` in an unlinked temporary file at offset 0 (the child keeps its own copy of the
    descriptor, so ours is closed once it started)."""
    if data is None:
        yield None
        return
    with tempfile.TemporaryFile() as handle:
        handle.write(data)
        handle.seek(0)
        yield handle


def _wait(
    child: subprocess.Popen[bytes],
    deadline: float,
    stop: threading.Event,
    meanwhile: Callable[[], None] | None = None,
) -> RunEnd:
    """COMPLETED when the child exits by itself, else INTERRUPTED or TIMEOUT (still running).

    Its exit is seen at once where the system has pidfds (``_exit_fd``); elsewhere within
    ``Popen.wait``'s polling. ``meanwhile`` is called every ``POLL_S`` or so while it runs."""
    with _exit_fd(child.pid) as exited:
        while True:
            left = max(0.0, min(POLL_S, deadline - time.monotonic()))
            if exited is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=left)
            else:
                exited.poll(left * 1000)
            if child.poll() is not None:
                return RunEnd.COMPLETED
            if stop.is_set():
                return RunEnd.INTERRUPTED
            if time.monotonic() >= deadline:
                return RunEnd.TIMEOUT
            if meanwhile is not None:
                meanwhile()


@contextlib.contextmanager
def _exit_fd(pid: int) -> Iterator[select.poll | None]:
    """A poll on a descriptor that turns readable when ``pid`` exits (pidfd_open(2), Linux
    5.3), so a suite's end is seen the moment it comes instead of at ``Popen.wait``'s next
    poll (up to ``POLL_S`` later); None where there is none. ``poll``, not ``select``: a
    daemon running many suites may hold descriptors past ``FD_SETSIZE`` (1024)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
        yield None
        return
    try:
        exited = select.poll()
        exited.register(fd, select.POLLIN)
        yield exited
    finally:
        os.close(fd)


def _stop_group(
    child: subprocess.Popen[bytes], grace_s: float, force: threading.Event | None
) -> None:
    """Nothing of the child's group survives: the running child is shut down, strays reaped."""
    if child.poll() is None:
        shutdown_group(child, grace_s, force)
    else:
        reap_strays(child.pid, grace_s, force)


def tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The end of a log, for error messages and issue bodies."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
