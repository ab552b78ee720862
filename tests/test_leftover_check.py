"""The suite's own guard: a process a test leaves running fails the pytest run that started it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from tests.conftest import RUN_MARKER
from tests.helpers import REPO, wait_for, write_tests

LEAKY = """
import subprocess
def test_leaks():
    child = subprocess.Popen(["sleep", "300"], start_new_session=True)
    open({leaked!r}, "w").write(str(child.pid))
"""


def test_a_leftover_process_fails_the_run_and_is_stopped(tmp_path: Path) -> None:
    """A test orphaning ``sleep 300`` in its own group: the run exits 1 naming it; it is killed."""
    write_tests(tmp_path / "inner", "conftest.py", "from tests.conftest import *  # noqa: F403\n")
    leaked = tmp_path / "leaked"
    write_tests(tmp_path / "inner", "test_leaky.py", LEAKY.format(leaked=str(leaked)))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "inner"),
         f"--basetemp={tmp_path / 'base'}", "--rootdir", str(tmp_path / "inner")],
        cwd=tmp_path, env={**_env(), "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout and "process left running by the tests" in done.stdout
    wait_for(lambda: _gone(int(leaked.read_text())), timeout=10)


def _env() -> dict[str, str]:
    """This environment without the outer run's pytest options and run marker (the inner run
    must not take the outer run's processes, its xdist workers among them, for its own)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", RUN_MARKER)}


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
