"""The one subprocess wrapper against real process groups: force, finally, orphans by group."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from deployloop import process, process_groups
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
        assert process_groups.stop_orphan(pid_file, grace_s=5)
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
        assert not process_groups.stop_orphan(pid_file)
        assert other.poll() is None and not pid_file.exists()
    finally:
        other.kill()
        other.wait(10)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


# A suite runner as `pip install pytest` makes one: a shebang script, so the leader's cmdline
# is [python3, /…/pytest, …] and its first element is not what the run line names.
SCRIPT_RUNNER = "#!{python}\nimport time\nopen({ready!r}, 'w').close()\ntime.sleep(300)\n"
# deployloop's part, in a process of its own so that the test can `kill -9` it mid-suite.
DEPLOYLOOP = """
import sys, threading
from pathlib import Path
from deployloop import process, process_groups
process.run([sys.argv[1]], log_path=Path(sys.argv[2]), timeout=600, stop=threading.Event(),
            pid_file=Path(sys.argv[3]), scratch=Path(sys.argv[4]))
"""


def _killed_run(tmp_path: Path) -> tuple[Path, Path, int]:
    """A shebang-script suite left running by a `kill -9` of the run that started it:
    (its pid file, its scratch directory, its leader's pid)."""
    ready, script = tmp_path / "ready", tmp_path / "pytest"
    script.write_text(SCRIPT_RUNNER.format(python=sys.executable, ready=str(ready)))
    script.chmod(0o755)
    scratch = tmp_path / f"{process_groups.SCRATCH_PREFIX}x"
    scratch.mkdir()
    (scratch / "suite.xml").write_text("<testsuite/>")
    pid_file = tmp_path / "suite.pid"
    argv = [sys.executable, "-c", DEPLOYLOOP, str(script), str(tmp_path / "log")]
    runner = subprocess.Popen([*argv, str(pid_file), str(scratch)])
    wait_for(ready.exists, timeout=20)
    leader = int(pid_file.read_text().split("\n")[0])
    runner.send_signal(signal.SIGKILL)
    runner.wait(10)
    return pid_file, scratch, leader


def test_orphan_of_a_shebang_script_runner_is_stopped(tmp_path: Path) -> None:
    """A bare `pytest` (a shebang script, cmdline [python3, …/pytest]) left by `kill -9` is
    recognised by its start time and stopped; then its pid file and scratch go."""
    pid_file, scratch, leader = _killed_run(tmp_path)
    try:
        assert psutil.Process(leader).cmdline()[0] != str(tmp_path / "pytest")
        assert process_groups.stop_orphan(pid_file, grace_s=5)
        wait_for(lambda: _gone(leader), timeout=10)
        assert not pid_file.exists() and not scratch.exists()
    finally:
        _kill_group(leader)


def test_orphan_file_with_another_start_time_is_left_alone(tmp_path: Path) -> None:
    """A live leader whose start time differs from the recorded one (a recycled pid running
    the very same program) is never signalled; the stale file goes."""
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    pid_file = tmp_path / "suite.pid"
    started = process_groups.start_ticks(other.pid)
    assert started is not None
    process_groups.PidRecord(other.pid, "sleep", started - 1).write(pid_file)
    try:
        assert not process_groups.stop_orphan(pid_file)
        assert other.poll() is None and not pid_file.exists()
    finally:
        other.kill()
        other.wait(10)


def test_finished_orphan_leaves_no_scratch(tmp_path: Path) -> None:
    """A suite that finished after its run was killed left its raw scratch files: the next
    start removes them, and nothing outside deployloop's scratch naming is ever removed."""
    pid_file, scratch, leader = _killed_run(tmp_path)
    _kill_group(leader)
    wait_for(lambda: _gone(leader), timeout=10)
    keep = tmp_path / "not-scratch"
    keep.mkdir()
    process_groups.stop_orphan(pid_file)
    assert not scratch.exists() and not pid_file.exists()
    other = tmp_path / "other.pid"
    process_groups.PidRecord(leader, "pytest", None, keep).write(other)
    process_groups.stop_orphan(other)
    assert keep.is_dir() and not other.exists()


def test_a_childs_exit_wakes_its_exit_descriptor() -> None:
    """The wait sees a child's exit the moment it comes (a pidfd: this machine has them)."""
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    assert child.stdin is not None
    try:
        with process._exit_fd(child.pid) as exited:
            assert exited is not None
            assert exited.poll(0) == []  # running: nothing to read
            child.stdin.close()  # input() meets end of file: the child exits
            assert len(exited.poll(30_000)) == 1
    finally:
        child.kill()
        child.wait()


def test_a_run_works_with_descriptors_past_fd_setsize(tmp_path: Path) -> None:
    """A daemon may hold over 1024 descriptors: its next child's pidfd is past what
    ``select`` takes, and the run must still end normally."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1100 if hard == resource.RLIM_INFINITY else min(hard, 1100)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    held: list[int] = []
    try:
        while len(held) < wanted - 64:
            held.append(os.open(os.devnull, os.O_RDONLY))
        done = process.run(
            [sys.executable, "-c", "pass"],
            log_path=tmp_path / "log",
            timeout=60,
            stop=threading.Event(),
        )
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert max(held) >= 1024 and (done.ended, done.returncode) == (RunEnd.COMPLETED, 0)


def test_meanwhile_is_called_while_the_child_runs(tmp_path: Path) -> None:
    """The child exits only once ``meanwhile`` has been called (it waits for its mark)."""
    mark = tmp_path / "called"
    wait_for_mark = (
        "import os, sys, time\ndeadline = time.monotonic() + 30\n"
        f"while not os.path.exists({str(mark)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        f"sys.exit(0 if os.path.exists({str(mark)!r}) else 1)\n"
    )
    done = process.run(
        [sys.executable, "-c", wait_for_mark],
        log_path=tmp_path / "log",
        timeout=60,
        stop=threading.Event(),
        meanwhile=mark.touch,
    )
    assert (done.ended, done.returncode) == (RunEnd.COMPLETED, 0)
