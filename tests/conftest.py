"""Every test runs in its own working directory with a clean deployloop environment, and the
whole run fails if any process a test started outlives it."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

import psutil
import pytest

# Set before any test starts a process, so every process the tests start, and everything those
# start in turn, carries it: an orphan re-parented to init is still recognised by it.
RUN_MARKER = "DEPLOYLOOP_TEST_RUN"
SETTLE_S = 5.0  # a group killed at a test's end may take the kernel a moment to tear down


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real config, logs or state."""
    for name in ("DEPLOYLOOP_CONFIG", "DEPLOYLOOP_STATE_DIR", "GITHUB_TOKEN", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def pytest_configure(config: pytest.Config) -> None:
    # setdefault: pytest-xdist workers inherit the controller's marker, so the controller finds
    # what any worker's tests left behind.
    os.environ.setdefault(RUN_MARKER, uuid.uuid4().hex)


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a process the tests started is still alive; then stop it.

    Under pytest-xdist the controller checks once for every worker, after all tests ended."""
    if _is_xdist_worker(session.config):
        return
    xdist_controller = session.config.pluginmanager.has_plugin("dsession")
    left = _still_alive(time.monotonic() + SETTLE_S, xdist_controller)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for proc in left:
        line = f"process left running by the tests: pid {proc.pid}: {_describe(proc)}"
        if reporter is not None:
            reporter.write_line(line, red=True)
        with contextlib.suppress(psutil.Error):
            proc.kill()
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _still_alive(deadline: float, xdist_controller: bool) -> list[psutil.Process]:
    """Processes the tests started that live on past ``deadline`` (polled, not slept out)."""
    while True:
        left = _started_by_tests(xdist_controller)
        if not left or time.monotonic() >= deadline:
            return left
        psutil.wait_procs(left, timeout=0.1)


def _started_by_tests(xdist_controller: bool) -> list[psutil.Process]:
    """Live descendants of this pytest, and any other process carrying this run's marker.

    pytest-xdist's workers (this process's direct children when it is the controller) are not
    counted: they are still shutting down, and what their tests started is found by the marker."""
    me = psutil.Process()
    workers = {p.pid for p in me.children()} if xdist_controller else set()
    found = {p.pid: p for p in me.children(recursive=True) if p.pid not in workers}
    marker = os.environ[RUN_MARKER]
    for proc in psutil.process_iter():
        if proc.pid == me.pid or proc.pid in found or proc.pid in workers:
            continue
        try:
            if proc.environ().get(RUN_MARKER) == marker:
                found[proc.pid] = proc
        except (psutil.Error, OSError):
            continue  # gone, or not ours to read
    return [p for p in found.values() if _alive(p)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())[:200]
    except psutil.Error:
        return "(gone)"
