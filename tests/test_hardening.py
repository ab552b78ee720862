"""Broken machines and files: a clear line and a way forward, never a crash (issue 19)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deployloop import __version__, plan
from deployloop.events import FailureCluster, IterationStart, Journal, PhaseEnd, Reporter
from deployloop.events.caps import MAX_CLUSTERS
from deployloop.loop import Loop
from deployloop.models import SuiteRun
from deployloop.runner import SuiteJob
from deployloop.session import resume_point
from deployloop.sessionlog import SessionLog
from deployloop.state import SessionRow, Store
from deployloop.statesinks import StoryRecorder
from deployloop.wait import WaitEnd, WaitResult
from tests.fsfaults import Unavailable, full_disk, readonly_dir
from tests.helpers import (
    cli,
    config_text,
    phase_block,
    python_pytest,
    start_cli,
    suite_block,
    write_tests,
)
from tests.test_unattended import gone, make_project, started_slow

PASSING = "def test_ok():\n    pass\n"

CRASHING = """
import sqlite3
import sys
import time
import typer
from deployloop import cli
def boom() -> int:
    raise RuntimeError("a bug")
try:
    cli._call(boom, {config!r})
except typer.Exit as end:
    sys.exit(end.exit_code)
"""


def crash(cwd: Path, config: str | None = None) -> subprocess.CompletedProcess[str]:
    """A command that raises, through the real top-level handler, as a subprocess."""
    script = CRASHING.format(config=config)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def passing_project(tmp_path: Path, logs_dir: str = "logs") -> Path:
    write_tests(tmp_path / "suite", "test_ok.py", PASSING)
    suite = suite_block("ok", python_pytest(str(tmp_path / "suite")))
    text = config_text(phase_block("one", suite), session=f'logs_dir = "{logs_dir}"')
    config = tmp_path / "deployloop.toml"
    config.write_text(text)
    return config


def test_version_option_prints_the_version(tmp_path: Path) -> None:
    """`deployloop --version` prints the package version and exits 0."""
    done = cli("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"deployloop {__version__}"


def test_crash_log_under_logs_dir_keeps_the_earlier_one(tmp_path: Path) -> None:
    """A crash writes crash.log (with the version) under the config's logs_dir, exit 70; a
    second crash keeps the first as crash-<time>.log."""
    config = passing_project(tmp_path, logs_dir="night-logs")
    first = crash(tmp_path, str(config))
    assert first.returncode == 70
    log = tmp_path / "night-logs" / "crash.log"
    assert f"traceback in {log}" in first.stderr
    assert (
        f"deployloop {__version__}" in log.read_text() and "RuntimeError: a bug" in log.read_text()
    )
    assert crash(tmp_path, str(config)).returncode == 70
    assert len(list((tmp_path / "night-logs").glob("crash-*.log"))) == 1


def test_crash_in_a_read_only_directory_still_exits_70(tmp_path: Path) -> None:
    """With nowhere to write, the handler prints the traceback on stderr and exits 70, never 1."""
    try:
        with readonly_dir(tmp_path / "ro") as ro:
            done = crash(ro)
    except Unavailable as exc:
        pytest.skip(str(exc))
    assert done.returncode == 70
    assert "no crash.log could be written" in done.stderr
    assert f"deployloop {__version__}" in done.stderr and "RuntimeError: a bug" in done.stderr
    assert done.stderr.count("Traceback") == 1


def test_read_only_logs_is_one_line_exit_2(tmp_path: Path) -> None:
    """`run` with its logs on a read-only file system: one line naming the path and EROFS."""
    config = passing_project(tmp_path, logs_dir="ro/logs")
    try:
        with readonly_dir(tmp_path / "ro"):
            done = cli("run", "--once", "-c", str(config), cwd=tmp_path)
    except Unavailable as exc:
        pytest.skip(str(exc))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert str(tmp_path / "ro" / "logs") in line
    assert "EROFS" in line or "EACCES" in line


@pytest.mark.parametrize(
    ("logs_dir", "state_dir", "named", "code"),
    [
        ("/proc/x", None, "/proc/x", "ENOENT"),
        ("afile/logs", None, "afile/logs", "ENOTDIR"),
        ("logs", "afile/st", "afile/st", "ENOTDIR"),
    ],
)
def test_a_path_that_cannot_be_a_directory_is_one_line_exit_2(
    tmp_path: Path, logs_dir: str, state_dir: str | None, named: str, code: str
) -> None:
    """A logs or state dir under /proc or below a file: one line, path and errno, exit 2."""
    (tmp_path / "afile").write_text("a file, not a directory\n")
    config = passing_project(tmp_path, logs_dir=logs_dir)
    env = {"DEPLOYLOOP_STATE_DIR": str(tmp_path / state_dir)} if state_dir else {}
    done = cli("run", "--once", "-c", str(config), cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert named in line and code in line and "Traceback" not in done.stderr


@pytest.mark.parametrize("logs_dir", ["afile", "/proc/x"])
def test_validate_flags_a_logs_dir_that_cannot_be_a_directory(
    tmp_path: Path, logs_dir: str
) -> None:
    """`validate` names logs_dir when it is a regular file or under /proc, exit 2."""
    (tmp_path / "afile").write_text("a file, not a directory\n")
    config = passing_project(tmp_path, logs_dir=logs_dir)
    done = cli("validate", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "logs_dir" in done.stderr and "directory" in done.stderr


def test_disk_full_is_one_line_exit_2(tmp_path: Path) -> None:
    """`run` on a full disk: one line naming the path and ENOSPC, exit 2, no traceback."""
    from tests.fsfaults import fill

    config = passing_project(tmp_path, logs_dir="full/logs")
    try:
        with full_disk(tmp_path / "full") as full:
            fill(full)
            done = cli("run", "--once", "-c", str(config), cwd=tmp_path)
    except Unavailable as exc:
        pytest.skip(str(exc))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "ENOSPC" in line and str(tmp_path / "full") in line


def test_status_shows_a_killed_run_as_stopped(tmp_path: Path) -> None:
    """After kill -9, `status` says "stopped (pid N no longer running)", not "running"."""
    files = make_project(tmp_path)
    proc = start_cli("run", "--once", cwd=tmp_path)
    leader, stray = started_slow(files)
    proc.kill()
    proc.wait(10)
    try:
        status = json.loads(cli("status", "--json", cwd=tmp_path).stdout)
        shown = cli("status", cwd=tmp_path).stdout
    finally:
        for pid in (stray, leader):
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
    assert status["status"] == f"stopped (pid {proc.pid} no longer running)"
    assert f"stopped (pid {proc.pid} no longer running)" in shown
    assert status["deployloop"] == __version__


def session_rows(state: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(state / "state.db")
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM sessions ORDER BY started").fetchall()
    finally:
        db.close()


def killed_mid_suite(tmp_path: Path) -> tuple[dict[str, Path], list[int]]:
    """A run killed -9 in its slow suite; the suite is let finish (its helper stays)."""
    files = make_project(tmp_path)
    proc = start_cli("run", "--once", cwd=tmp_path)
    pids = started_slow(files)
    proc.kill()
    proc.wait(10)
    files["go"].touch()
    return files, pids


def test_a_session_past_its_deadline_is_ended_and_a_new_one_runs(tmp_path: Path) -> None:
    """Case 26: the next start after a crash, past the old deadline, ends the old session
    (abandoned, report written) and runs a new one, saying so."""
    killed_mid_suite(tmp_path)
    state = tmp_path / "logs" / ".state"
    db = sqlite3.connect(state / "state.db")
    db.execute("UPDATE sessions SET deadline=?", (time.time() - 60,))  # the night went by
    db.commit()
    db.close()
    done = cli("run", "--once", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    old, new = session_rows(state)
    assert (old["status"], new["status"]) == ("abandoned", "green")
    assert f"session {old['id']} could not resume: its deadline" in done.stdout
    assert "started a new one" in done.stdout
    assert (Path(old["logs_dir"]) / old["id"] / "report.md").exists()


def test_command_line_limits_apply_to_a_resumed_session(tmp_path: Path) -> None:
    """--budget and --max-iterations given to a resuming start replace the session's."""
    killed_mid_suite(tmp_path)
    done = cli("run", "--budget", "1h", "--max-iterations", "7", cwd=tmp_path, timeout=120)
    assert "resumed" in done.stdout, done.stdout + done.stderr
    (row,) = session_rows(tmp_path / "logs" / ".state")
    assert row["max_iterations"] == 7
    assert 3500 < row["deadline"] - time.time() <= 3600


def test_a_bad_budget_is_refused_before_resuming(tmp_path: Path) -> None:
    """`--budget xyz` on a start that would resume: exit 2, the session untouched."""
    _, pids = killed_mid_suite(tmp_path)
    try:
        done = cli("run", "--budget", "xyz", cwd=tmp_path)
    finally:
        for pid in pids:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
    assert done.returncode == 2 and "budget" in done.stderr
    (row,) = session_rows(tmp_path / "logs" / ".state")
    assert row["status"] == "running" and row["deadline"] is None


def test_the_lock_belongs_to_the_config_not_the_state_dir(tmp_path: Path) -> None:
    """Two runs of one config with different DEPLOYLOOP_STATE_DIR: the second exits 75."""
    files = make_project(tmp_path)
    first = start_cli("run", "--once", cwd=tmp_path)
    try:
        started_slow(files)
        second = cli("run", "--once", cwd=tmp_path, env={"DEPLOYLOOP_STATE_DIR": "other"})
    finally:
        files["go"].touch()
        first.wait(60)
    assert second.returncode == 75, second.stdout + second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert not (tmp_path / "other").exists()


def test_resumed_in_the_redeploy_wait_waits_before_testing(tmp_path: Path) -> None:
    """Stopped after iteration 1 finished (in the wait): the resumed loop waits for a new
    version before its first suite, and runs no trigger again."""
    from tests.test_loop import World

    world = World(tmp_path)
    world.failing = lambda suite, version: True
    world.loop(max_iterations=1).run()  # iteration 1 finished, failing, on v1
    order: list[str] = []
    services = world.services()

    def wait(tested: str | None) -> WaitResult:
        order.append(f"wait after {tested}")
        world.version = "v2"
        return WaitResult(WaitEnd.CHANGED, "v2")

    def run_suite(job: SuiteJob) -> SuiteRun:
        order.append(f"suite {job.suite.name} on {world.version}")
        return world.run_suite(job)

    triggers: list[int] = []
    services = dataclasses.replace(
        services, wait=wait, run_suite=run_suite, trigger=triggers.append
    )
    row = world.store.session("s1")
    assert row is not None
    session = resume_point(world.store, row)
    assert session.wait_first and session.first_iteration == 2
    the_plan = plan.build_plan(world.config)
    Loop(world.config, the_plan, session, world.store, services, Reporter()).run()
    assert order[0] == "wait after v1" and order[1].endswith("on v2")
    assert 1 not in triggers  # iteration 1's redeploy was triggered before the stop


def test_suite_named_like_a_rerun_keeps_its_own_files(tmp_path: Path) -> None:
    """Suite `s.rerun` and the rerun pass of a failing suite `s` write different files."""
    write_tests(tmp_path / "s", "test_s.py", "def test_bad():\n    assert False\n")
    write_tests(tmp_path / "other", "test_other.py", "def test_other():\n    pass\n")
    suites = (
        suite_block("s", python_pytest(str(tmp_path / "s"))),
        suite_block("s.rerun", python_pytest(str(tmp_path / "other"))),
    )
    (tmp_path / "deployloop.toml").write_text(config_text(phase_block("one", *suites)))
    done = cli("run", "--once", cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    (iteration,) = (tmp_path / "logs").glob("t-*/1")
    assert "test_other" in (iteration / "s.rerun.xml").read_text()
    assert "test_bad" in (iteration / "s+rerun.xml").read_text()


def test_100k_distinct_failures_stay_within_the_stated_size(tmp_path: Path) -> None:
    """A PhaseEnd with 100,000 distinct clusters: session.md, events.jsonl and the story keep
    the top clusters in full and count the rest, each well under the stated ~300 KB."""
    clusters = tuple(
        FailureCluster(f"v2-{n:06d}", 1 + (n == 7) * 5, f"error {n} " + "x" * 80, (f"t::{n}",))
        for n in range(100_000)
    )
    event = PhaseEnd(phase="api", passed=False, verdicts=("❌ pass rate",), clusters=clusters)
    store = Store(tmp_path / "state")
    store.create_session(
        SessionRow("s", "k", "n", str(tmp_path), 0.0, None, 1, "running", None, None)
    )
    sinks = (
        Journal(tmp_path / "events.jsonl"),
        SessionLog(tmp_path / "session.md"),
        StoryRecorder(store, "s", str),
    )
    for sink in sinks:
        sink(IterationStart(iteration=1, version="v1"))
        sink(event)
    assert (tmp_path / "events.jsonl").stat().st_size < 300_000
    markdown = (tmp_path / "session.md").read_text()
    assert len(markdown) < 300_000 and "99950 more clusters" in markdown
    ((_, stored),) = store.story("s", PhaseEnd)
    assert len(stored.clusters) == MAX_CLUSTERS + 1
    assert stored.clusters[0].fingerprint == "v2-000007"  # the largest first
    assert stored.clusters[-1].count == 100_000 - MAX_CLUSTERS


def test_corrupt_state_is_moved_aside_by_status_report_and_run(tmp_path: Path) -> None:
    """A state.db of random bytes: status, report and run each say so in one line naming both
    paths and go on with a fresh state (exit 0, 2 "no session", 0), never exit 70."""
    config = passing_project(tmp_path)
    state = tmp_path / "logs" / ".state"
    seen = []
    for command in (("status",), ("report",), ("run", "--once")):
        state.mkdir(parents=True, exist_ok=True)
        (state / "state.db").write_bytes(os.urandom(8192))
        done = cli(*command, "-c", str(config), cwd=tmp_path, timeout=120)
        seen.append(done.returncode)
        out = done.stdout + done.stderr
        assert f"{state / 'state.db'} is corrupt" in out and "moved it aside to" in out, out
    assert seen == [0, 2, 0]
    assert len(list(state.glob("state.db.corrupt-*"))) == 3
