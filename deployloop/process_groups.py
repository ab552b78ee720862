"""Process groups: how a suite's group is stopped, and found again after a crash.

Every suite leads a process group of its own (``process.run``). Stopping it is TERM to the
whole group, a grace period, then KILL, and strays are reaped once the leader is gone. While a
suite runs, a pid file (``PidRecord``) names its group, so that a deployloop killed with ``-9``
and started again stops what the killed one left (``stop_orphan``), and never a stranger that
got a recycled pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

POLL_S = 0.02  # how often a running child or a stopping group is checked
SCRATCH_PREFIX = "deployloop-suite-"  # the only directories a pid file may have removed


def shutdown_group(
    child: subprocess.Popen[bytes], grace_s: float, force: threading.Event | None = None
) -> None:
    """TERM the child's whole group, wait up to ``grace_s`` (less once ``force`` is set), KILL."""
    signal_group(child.pid, signal.SIGTERM)
    _poll(lambda: child.poll() is not None, grace_s, force)
    signal_group(child.pid, signal.SIGKILL)
    child.wait()


@dataclass(frozen=True, slots=True)
class PidRecord:
    """What a pid file says of a running suite: its group (the leader's pid), the leader's
    program, the leader's start time (clock ticks since boot, field 22 of ``/proc/PID/stat``,
    see proc(5)) and the run's scratch directory. One value a line; a file written before the
    start time was recorded has only the first two."""

    pgid: int
    program: str
    started: int | None = None
    scratch: Path | None = None

    def write(self, path: Path) -> None:
        """Write the record to ``path`` (raises OSError)."""
        started = "" if self.started is None else str(self.started)
        path.write_text(f"{self.pgid}\n{self.program}\n{started}\n{self.scratch or ''}\n")

    @classmethod
    def read(cls, path: Path) -> PidRecord | None:
        """The record in ``path``; None when it cannot be read or names no safe group."""
        try:
            lines = [*path.read_text().split("\n"), "", "", ""]
            record = cls(int(lines[0]), lines[1], int(lines[2]) if lines[2] else None)
        except (OSError, ValueError):
            return None
        if record.pgid <= 1:  # a value that would name our own group or every process
            return None
        return replace(record, scratch=Path(lines[3]) if lines[3] else None)


def stop_orphan(pid_file: Path, grace_s: float = 5.0) -> bool:
    """Stop the group a killed deployloop left running (its pid file survived it).

    The group is only signalled while it is the one the file names: a living leader must have
    the recorded start time (so a recycled pid is never hit, whatever program the suite runs:
    a ``pytest`` script runs as ``python3 …/pytest``, ``npx`` as ``node``). Once the leader is
    gone its survivors are stopped by group id alone: Linux does not hand out a pid again while
    a live process group still bears it. The file, and the scratch directory it names, are
    removed only once nothing of the group runs. True when something was stopped.
    """
    record = PidRecord.read(pid_file)
    if record is None:
        pid_file.unlink(missing_ok=True)
        return False
    stopped = _same_leader(record) and reap_strays(record.pgid, grace_s)
    if stopped and not _poll(lambda: not _group_alive(record.pgid), grace_s):
        return True  # still running (not ours to kill?): the next start tries again
    if record.scratch is not None and record.scratch.name.startswith(SCRATCH_PREFIX):
        shutil.rmtree(record.scratch, ignore_errors=True)
    pid_file.unlink(missing_ok=True)
    return stopped


def _same_leader(record: PidRecord) -> bool:
    """False when the pid is now another process's: a different start time (or, in a file
    without one, a different program)."""
    started = start_ticks(record.pgid)
    if started is None:  # the leader is gone: the group id alone names the survivors
        return True
    if record.started is not None:
        return started == record.started
    leader = _cmdline(record.pgid)
    return not leader or record.program.encode() in leader


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (proc(5), ``stat`` field 22); None
    when it is gone. Unlike its argv, it never changes (exec keeps it) and tells a recycled pid.
    """
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _stat_fields(pid: int) -> list[str]:
    """``/proc/PID/stat`` from field 3 (state) on; the command name may hold spaces and ``)``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text.rpartition(")")[2].split()


def _group_alive(pgid: int) -> bool:
    """Some process of group ``pgid`` still runs (zombies, already dead, do not count)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
                return True
    return False


def _cmdline(pid: int) -> list[bytes]:
    """The process's argv; empty when it is gone (or a zombie, whose cmdline is empty)."""
    try:
        return [part for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if part]
    except OSError:
        return []


def reap_strays(pgid: int, grace_s: float, force: threading.Event | None = None) -> bool:
    """TERM, grace, KILL for a group whose leader is gone. True when the group existed."""
    if not signal_group(pgid, signal.SIGTERM):
        return False
    _poll(lambda: not signal_group(pgid, 0), grace_s, force)
    signal_group(pgid, signal.SIGKILL)
    return True


def _poll(done: Callable[[], bool], limit_s: float, force: threading.Event | None = None) -> bool:
    """Whether ``done`` held within ``limit_s`` seconds; ``force`` gives up at once.

    Polling, because strays are not our children: there is nothing to wait on.
    """
    cut_short = force or threading.Event()
    deadline = time.monotonic() + limit_s
    while not done():
        if time.monotonic() >= deadline or cut_short.wait(POLL_S):
            return False
    return True


def signal_group(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True
