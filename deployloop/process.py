"""The one subprocess wrapper: own process group, output streamed to a file, staged shutdown.

Tests under staging start servers, browsers and workers of their own; stopping only the direct
child would leave them running all night. Every child therefore leads its own process group,
and stopping means TERM to the whole group, a grace period, then KILL.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SHELL_SYNTAX = re.compile(r"[|&;<>$`*?~\n]|^\s*\w+=")  # not (): gcloud --format=value(...)
POLL_S = 0.02  # how often a running child is checked against stop and deadline
TAIL_BYTES = 4000
LOG_LIMIT = 64 * 1024 * 1024  # per suite log file
LOG_KEEP = 8 * 1024 * 1024
SHELL_NOT_FOUND = 127
GRACE_S = 5.0  # between TERM to a process group and KILL


@dataclass(frozen=True, slots=True)
class Completed:
    """How a child process ended."""

    command: str
    returncode: int | None  # None when it could not be started
    wall_s: float
    timed_out: bool = False
    interrupted: bool = False
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
) -> Completed:
    """Run ``argv`` to completion, output appended to ``log_path``; never raises for the child."""
    command = shlex.join(argv)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "ab") as log:
        try:
            child = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            reason = start_error(argv, exc, env, cwd)
            log.write(f"deployloop: cannot start {command}: {reason}\n".encode())
            return Completed(command, None, 0.0, start_error=reason)
        if pid_file is not None:
            pid_file.write_text(f"{child.pid}\n{argv[0]}\n")
        timed_out, interrupted = _wait(child, started + timeout, stop, log)
        if timed_out or interrupted:
            shutdown_group(child, grace_s)
        else:
            _reap_strays(child.pid, grace_s)
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
    wall_s = time.monotonic() - started
    missing = _shell_not_found(argv, child.returncode, env)
    return Completed(command, child.returncode, wall_s, timed_out, interrupted, missing)


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


def _wait(
    child: subprocess.Popen[bytes], deadline: float, stop: threading.Event, log: BinaryIO
) -> tuple[bool, bool]:
    while True:
        cap_log(log)
        try:
            child.wait(timeout=max(0.0, min(POLL_S, deadline - time.monotonic())))
            return False, False
        except subprocess.TimeoutExpired:
            pass
        if stop.is_set():
            return False, True
        if time.monotonic() >= deadline:
            return True, False


def cap_log(log: BinaryIO) -> None:
    """Keep a chatty suite's log bounded: past LOG_LIMIT, cut back to its first LOG_KEEP bytes.

    The child appends (O_APPEND), so after the cut its output simply continues from there: the
    log holds the start of the run and its most recent output, never more than ``limit``.
    """
    if os.fstat(log.fileno()).st_size <= LOG_LIMIT:
        return
    os.ftruncate(log.fileno(), LOG_KEEP)
    os.write(
        log.fileno(), f"\n[deployloop: log capped; output past {LOG_KEEP} bytes cut]\n".encode()
    )


def shutdown_group(child: subprocess.Popen[bytes], grace_s: float) -> None:
    """TERM the child's whole group, wait ``grace_s``, then KILL whatever is left."""
    _signal_group(child.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=grace_s)
    _signal_group(child.pid, signal.SIGKILL)
    child.wait()


def stop_orphan(pid_file: Path, grace_s: float = 5.0) -> bool:
    """Stop the group a killed deployloop left running (its pid file survived it).

    The group is only signalled while its leader still runs the recorded program, so a
    recycled pid is never hit. True when something was stopped.
    """
    try:
        pgid_text, program = pid_file.read_text().split("\n")[:2]
        cmdline = Path(f"/proc/{int(pgid_text)}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return False
    pid_file.unlink(missing_ok=True)
    if program.encode() not in cmdline:
        return False
    _reap_strays(int(pgid_text), grace_s)
    return True


def _reap_strays(pgid: int, grace_s: float) -> None:
    """The leader exited; anything still in its group was left behind by the tests."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _signal_group(pgid, 0):
        time.sleep(POLL_S)  # nothing to wait on: strays are not our children
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


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
