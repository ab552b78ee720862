"""Issue 22 end to end: real staging stand-ins, real pytest suites, the real run."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import SHARED, cli, python_pytest, session_dirs, wait_for

CASE_27 = SHARED / "cases" / "27-version-flap-mixed"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def flapping(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """Case 27's two pods answering rev-0001 and rev-0002 in turn, on a free port."""
    case = tmp_path / "case"
    shutil.copytree(CASE_27, case)
    port = free_port()
    stub = subprocess.Popen(
        [sys.executable, "flap_stub.py", str(port)], cwd=case, stdin=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _listening(port), timeout=10)
        yield case, port
    finally:
        stub.kill()
        stub.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_case_27_flapping_version_is_one_verdict_not_a_busy_loop(
    flapping: tuple[Path, int],
) -> None:
    """--once: the suite runs twice (one mixed rerun), then 'staging serves mixed versions'."""
    case, port = flapping
    config = (case / "cfg.toml").read_text().replace("18082", str(port))
    config = config.replace("venv/bin/pytest -q", python_pytest())
    (case / "cfg.toml").write_text(config)
    done = cli("run", "--once", "-c", "cfg.toml", cwd=case, timeout=120)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    (session,) = session_dirs(case / "logs")
    log = (session / "session.md").read_text()
    assert log.count("suite smoke/smoke started") == 2
    assert log.count("iteration 1 started") + log.count("## Iteration 1") == 1
    assert "❌ smoke: harness: staging serves mixed versions rev-0001/rev-0002" in log
    assert "rerunning it on rev-000" in log
    assert "deadline" not in log.split("## Summary")[-1]
