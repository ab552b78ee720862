"""The one subprocess wrapper against real process groups: force, finally, orphans by group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from deployloop import process
from deployloop.models import RunEnd
from tests.helpers import wait_for

# A shell that ignores TERM (as does its `sleep`, by inheritance) and says when it is ready.
STUBBORN = "trap '' TERM; sleep 300 & echo $! > {pids}; touch {ready}; wait"


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_force_cuts_the_term_grace_short(tmp_path: Path) -> None:
    """A group that ignores TERM is killed as soon as ``force`` is set, not after the grace."""
    stop, force = threading.Event(), threading.Event()
    ready, pids = tmp_path / "ready", tmp_path / "pids"
    command = STUBBORN.format(pids=pids, ready=ready)
    result: list[process.Completed] = []
    worker = threading.Thread(
        target=lambda: result.append(
            process.run(["/bin/sh", "-c", command], log_path=tmp_path / "log", timeout=60,
                        stop=stop, force=force, grace_s=60, pid_file=tmp_path / "pid")
        )
    )  # fmt: skip
    worker.start()
    wait_for(ready.exists, timeout=10)
    stop.set()
    began = time.monotonic()
    force.set()
    worker.join(30)
    assert time.monotonic() - began < 10  # the 60 s grace did not run out
    assert result[0].ended is RunEnd.INTERRUPTED
    wait_for(lambda: _gone(int(pids.read_text())), timeout=5)
    assert not (tmp_path / "pid").exists()


def test_orphan_group_is_stopped_when_its_leader_is_gone(tmp_path: Path) -> None:
    """A pid file whose leader exited still stops the group's survivors, by group id."""
    pids = tmp_path / "pids"
    leader = subprocess.Popen(
        ["/bin/sh", "-c", f"sleep 300 & echo $! > {pids}"], start_new_session=True
    )
    leader.wait(10)
    stray = int(wait_for(lambda: pids.exists() and pids.read_text().strip(), timeout=10))
    pid_file = tmp_path / "suite.pid"
    pid_file.write_text(f"{leader.pid}\n/bin/sh\n")
    try:
        assert process.stop_orphan(pid_file, grace_s=5)
        wait_for(lambda: _gone(stray), timeout=10)
        assert not pid_file.exists()
    finally:
        _kill_group(leader.pid)


def test_orphan_file_naming_another_program_is_left_alone(tmp_path: Path) -> None:
    """A pid whose live leader runs some other program (a recycled pid) is never signalled."""
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    wait_for(lambda: psutil.Process(other.pid).cmdline() == ["sleep", "300"], timeout=10)  # exec'd
    pid_file = tmp_path / "suite.pid"
    pid_file.write_text(f"{other.pid}\n{sys.executable}\n")
    try:
        assert not process.stop_orphan(pid_file)
        assert other.poll() is None and not pid_file.exists()
    finally:
        other.kill()
        other.wait(10)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
