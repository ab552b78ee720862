"""Unattended operation with real processes: lock, signals, kill -9 and resume, status."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psutil
import pytest

from deployloop import __version__
from tests.helpers import (
    cli,
    config_text,
    phase_block,
    python_pytest,
    session_dirs,
    start_cli,
    suite_block,
    wait_for,
    write_tests,
)

FAST = """
def test_fast():
    with open({runs!r}, "a") as f:
        f.write("ran\\n")
"""
SLOW = """
import os, subprocess, time
def test_slow():
    child = subprocess.Popen(["sleep", "300"])
    with open({pids!r}, "w") as f:
        f.write(f"{{os.getpid()}} {{child.pid}}")
    while not os.path.exists({go!r}):
        time.sleep(0.05)
"""

STUBBORN = """
import os, signal, subprocess, time
def test_stubborn():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the child across exec
    child = subprocess.Popen(["sleep", "300"])
    signal.signal(signal.SIGTERM, lambda *_: open({termed!r}, "w").close())
    with open({pids!r}, "w") as f:
        f.write(f"{{os.getpid()}} {{child.pid}}")
    while True:
        time.sleep(0.05)
"""


def make_project(tmp_path: Path) -> dict[str, Path]:
    files = {name: tmp_path / name for name in ("runs", "pids", "go")}
    write_tests(tmp_path / "fast", "test_fast.py", FAST.format(runs=str(files["runs"])))
    write_tests(
        tmp_path / "slow", "test_slow.py", SLOW.format(pids=str(files["pids"]), go=str(files["go"]))
    )
    text = config_text(
        phase_block("one", suite_block("fast", python_pytest(str(tmp_path / "fast")))),
        phase_block("two", suite_block("slow", python_pytest(str(tmp_path / "slow")))),
        extra="[retest]\nrerun_failed = false\n",
    )
    (tmp_path / "deployloop.toml").write_text(text)
    return files


def started_slow(files: dict[str, Path]) -> list[int]:
    wait_for(lambda: files["pids"].exists() and files["pids"].read_text(), timeout=60)
    return [int(p) for p in files["pids"].read_text().split()]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_second_instance_exits_75_naming_the_pid(tmp_path: Path) -> None:
    """While one run holds the lock, a second exits 75 at once naming the running pid."""
    files = make_project(tmp_path)
    first = start_cli("run", "--once", cwd=tmp_path)
    try:
        started_slow(files)
        second = cli("run", "--once", cwd=tmp_path, timeout=30)
        assert second.returncode == 75
        assert f"pid {first.pid}" in second.stderr and len(second.stderr.strip().splitlines()) == 1
    finally:
        files["go"].touch()
        first.wait(60)
    assert first.returncode == 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_exits_quickly_leaving_no_children(tmp_path: Path, signum: int, code: int) -> None:
    """SIGTERM/SIGINT mid-suite: 143/130 within 10 s, the suite's group gone, log written;
    the session reads "interrupted (resumable)" in session.md, `status` (its budget no longer
    counting down) and the report, and the next run resumes it."""
    files = make_project(tmp_path)
    proc = start_cli("run", "--once", "--budget", "1h", cwd=tmp_path)
    pids = started_slow(files)
    sent = time.monotonic()
    proc.send_signal(signum)
    proc.wait(15)
    assert proc.returncode == code
    assert time.monotonic() - sent < 10
    assert all(gone(pid) for pid in pids)
    (session,) = session_dirs(tmp_path / "logs")
    assert "session ended: interrupted (resumable)" in (session / "session.md").read_text()
    first = json.loads(cli("status", "--json", cwd=tmp_path).stdout)
    assert first["status"] == "interrupted (resumable)"
    wait_for(lambda: time.time() - sent > 1.5, timeout=5)  # a counting budget would show it
    assert (
        json.loads(cli("status", "--json", cwd=tmp_path).stdout)["budget_left_s"]
        == (first["budget_left_s"])
    )
    report = cli("report", cwd=tmp_path).stdout
    assert "INTERRUPTED (RESUMABLE)" in report and "RUNNING" not in report
    files["go"].touch()
    resumed = cli("run", "--once", cwd=tmp_path, timeout=60)
    assert resumed.returncode == 0 and "resum" in resumed.stdout + resumed.stderr


def test_sighup_does_not_kill(tmp_path: Path) -> None:
    """Closing the terminal (SIGHUP) leaves the run going to its normal end."""
    files = make_project(tmp_path)
    proc = start_cli("run", "--once", cwd=tmp_path)
    started_slow(files)
    proc.send_signal(signal.SIGHUP)
    files["go"].touch()
    proc.wait(60)
    assert proc.returncode == 0


def test_kill_9_then_resume_keeps_finished_suites(tmp_path: Path) -> None:
    """kill -9 mid-suite, run again: same session, the finished suite not rerun, the lost one is."""
    files = make_project(tmp_path)
    proc = start_cli("run", "--once", cwd=tmp_path)
    pids = started_slow(files)
    proc.kill()
    proc.wait(10)
    assert not any(gone(pid) for pid in pids)  # kill -9 left the suite running, orphaned
    files["pids"].unlink()
    resumed = start_cli("run", "--once", cwd=tmp_path)
    try:
        wait_for(lambda: all(gone(pid) for pid in pids), timeout=20)  # the orphan is stopped
        files["go"].touch()
        resumed.wait(60)
    finally:
        resumed.kill()
    assert resumed.returncode == 0
    (session,) = session_dirs(tmp_path / "logs")
    log = (session / "session.md").read_text()
    assert "resumed" in log
    assert files["runs"].read_text().count("ran") == 1
    assert files["pids"].exists()


def test_status_json_during_a_run(tmp_path: Path) -> None:
    """`status --json` reads the state while run holds the lock: session, iteration, suite."""
    files = make_project(tmp_path)
    proc = start_cli("run", "--once", cwd=tmp_path)
    try:
        started_slow(files)
        status = json.loads(cli("status", "--json", cwd=tmp_path, timeout=30).stdout)
        assert status["session"].startswith("t-")
        assert status["iteration"] == 1 and status["phase"] == "two" and status["suite"] == "slow"
        assert status["gates"]["one"]["passed"] is True
    finally:
        files["go"].touch()
        proc.wait(60)
    final = json.loads(cli("status", "--json", cwd=tmp_path, timeout=30).stdout)
    assert final["status"] == "green" and final["exit_code"] == 0


def test_new_starts_a_fresh_session(tmp_path: Path) -> None:
    """--new abandons the unfinished session, stopping what its suite left even with the leader
    gone (by process group), and starts another."""
    files = make_project(tmp_path)
    proc = start_cli("run", "--once", cwd=tmp_path)
    leader, stray = started_slow(files)
    proc.kill()
    proc.wait(10)
    files["go"].touch()
    wait_for(lambda: gone(leader), timeout=30)  # the old suite ended by itself...
    assert not gone(stray)  # ...leaving its `sleep 300` behind in its group
    done = cli("run", "--once", "--new", cwd=tmp_path, timeout=60)
    assert done.returncode == 0
    assert len(session_dirs(tmp_path / "logs")) == 2
    wait_for(lambda: gone(stray), timeout=10)


def test_new_after_kill_9_stops_the_old_runs_suite(tmp_path: Path) -> None:
    """kill -9 mid-suite, then run --new: no process of the old run is left, the new one runs."""
    files = make_project(tmp_path)
    proc = start_cli("run", "--once", cwd=tmp_path)
    old = started_slow(files)
    proc.kill()
    proc.wait(10)
    assert not any(gone(pid) for pid in old)  # kill -9 left the suite running, orphaned
    files["pids"].unlink()
    new = start_cli("run", "--once", "--new", cwd=tmp_path)
    try:
        wait_for(lambda: all(gone(pid) for pid in old), timeout=20)
        started_slow(files)  # the new session got as far as the same suite
        files["go"].touch()
        new.wait(60)
    finally:
        new.kill()
    assert new.returncode == 0
    assert len(session_dirs(tmp_path / "logs")) == 2


def test_second_ctrl_c_during_the_grace_kills_at_once(tmp_path: Path) -> None:
    """Two SIGINTs while a suite that ignores SIGTERM has its grace: exit 130 well within the
    grace, no process of the suite and no pid file left."""
    files = {name: tmp_path / name for name in ("pids", "termed")}
    source = STUBBORN.format(pids=str(files["pids"]), termed=str(files["termed"]))
    write_tests(tmp_path / "stubborn", "test_stubborn.py", source)
    suite = suite_block("stubborn", python_pytest(str(tmp_path / "stubborn")))
    text = config_text(phase_block("one", suite), extra="[retest]\nrerun_failed = false\n")
    (tmp_path / "deployloop.toml").write_text(text)
    proc = start_cli("run", "--once", cwd=tmp_path)
    try:
        pids = started_slow(files)
        proc.send_signal(signal.SIGINT)
        wait_for(files["termed"].exists, timeout=10)  # TERM reached the suite: its grace runs
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert time.monotonic() - sent < 4  # the 5 s grace was cut short
    wait_for(lambda: all(gone(pid) for pid in pids), timeout=5)
    (session,) = session_dirs(tmp_path / "logs")
    assert list(session.glob("*/*.pid")) == []


def test_status_and_report_before_any_run_create_nothing(tmp_path: Path) -> None:
    """Reading commands on a fresh directory answer 'no session' and leave no state behind."""
    status = cli("status", "--json", cwd=tmp_path, timeout=30)
    assert status.returncode == 0
    assert json.loads(status.stdout) == {"deployloop": __version__, "session": None}
    report = cli("report", cwd=tmp_path, timeout=30)
    assert report.returncode == 2 and "no session found" in report.stderr
    assert not (tmp_path / "logs").exists()


FAILS_THEN_HANGS = """
import os, time
def test_flip():
    if not os.path.exists({failed!r}):
        open({failed!r}, "w").close()
        assert False, "first run fails"
    open({hanging!r}, "w").close()
    time.sleep(300)
"""


def test_sigint_during_failed_first_claims_and_starts_nothing(tmp_path: Path) -> None:
    """SIGINT mid failed-first rerun: no "failed-first: 0/1 now pass", no "phase … started"."""
    failed, hanging = tmp_path / "failed", tmp_path / "hanging"
    source = FAILS_THEN_HANGS.format(failed=str(failed), hanging=str(hanging))
    write_tests(tmp_path / "flip", "test_flip.py", source)
    text = config_text(
        phase_block("one", suite_block("flip", python_pytest(str(tmp_path / "flip")))),
        session='interval = "0.1s"',
        extra="[retest]\nrerun_failed = false\n",
    )
    (tmp_path / "deployloop.toml").write_text(text)
    proc = start_cli("run", "--max-iterations", "3", cwd=tmp_path)
    try:
        wait_for(hanging.exists, timeout=60)
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
    finally:
        proc.kill()
    assert proc.returncode == 130
    (session,) = session_dirs(tmp_path / "logs")
    second = (session / "session.md").read_text().split("## Iteration 2", 1)[1]
    assert "suite one/flip started [failed-first]" in second  # the rerun was under way
    assert "failed-first:" not in second and "phase one started" not in second
    assert "session ended: interrupted (resumable)" in second
