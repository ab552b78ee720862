"""Unattended operation with real processes: lock, signals, kill -9 and resume, status."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psutil
import pytest

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
    """SIGTERM/SIGINT mid-suite: 143/130 within 10 s, the suite's group gone, log written."""
    files = make_project(tmp_path)
    proc = start_cli("run", "--once", cwd=tmp_path)
    pids = started_slow(files)
    sent = time.monotonic()
    proc.send_signal(signum)
    proc.wait(15)
    assert proc.returncode == code
    assert time.monotonic() - sent < 10
    assert all(gone(pid) for pid in pids)
    (session,) = session_dirs(tmp_path / "logs")
    assert "session ended: running" in (session / "session.md").read_text()


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
    """--new abandons the unfinished session and starts another."""
    files = make_project(tmp_path)
    proc = start_cli("run", "--once", cwd=tmp_path)
    started_slow(files)
    proc.kill()
    proc.wait(10)
    files["go"].touch()
    done = cli("run", "--once", "--new", cwd=tmp_path, timeout=60)
    assert done.returncode == 0
    assert len(session_dirs(tmp_path / "logs")) == 2


def test_status_and_report_before_any_run_create_nothing(tmp_path: Path) -> None:
    """Reading commands on a fresh directory answer 'no session' and leave no state behind."""
    status = cli("status", "--json", cwd=tmp_path, timeout=30)
    assert status.returncode == 0 and json.loads(status.stdout) == {"session": None}
    report = cli("report", cwd=tmp_path, timeout=30)
    assert report.returncode == 2 and "no session found" in report.stderr
    assert not (tmp_path / "logs").exists()
