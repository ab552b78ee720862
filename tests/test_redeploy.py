"""Wait for the redeploy against a real staging simulator: flip, settle, retest, verify, close."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from deployloop.demo import assets
from deployloop.simulator import Simulator
from tests.helpers import cli, session_dirs, start_cli, wait_for

POLL, SETTLE = 0.5, 1.0


def project(tmp_path: Path, staging: Simulator, redeploy: str) -> None:
    suites = assets() / "suites"
    config = f"""
[session]
name = "redeploy"
max_iterations = 3

[target]
base_url = "{staging.base_url}"
health = "/health"
version = {{ url = "/version", json = "commit" }}
unreachable_timeout = "20s"

[[phase]]
name = "agents"
  [[phase.suite]]
  name = "ws"
  run = "{sys.executable} -m pytest -q test_websocket_events.py"
  cwd = "{suites}"
  env = {{ STAGING_URL = "{staging.base_url}", STAGING_WS_URL = "{staging.ws_url}" }}

[retest]
rerun_failed = false

[redeploy]
poll = "{POLL}s"
settle = "{SETTLE}s"
{redeploy}
"""
    (tmp_path / "deployloop.toml").write_text(config)


def events(tmp_path: Path) -> list[dict[str, Any]]:
    dirs = session_dirs(tmp_path / "logs") if (tmp_path / "logs").exists() else []
    if not dirs or not (dirs[0] / "events.jsonl").exists():
        return []
    return [json.loads(line) for line in (dirs[0] / "events.jsonl").read_text().splitlines()]


def first(found: list[dict[str, Any]], kind: str, **match: object) -> dict[str, Any]:
    return next(
        e for e in found if e["event"] == kind and all(e.get(k) == v for k, v in match.items())
    )


@pytest.mark.slow
def test_fix_deployed_is_retested_verified_and_closed(tmp_path: Path) -> None:
    """Bug on rev-0001, fix deployed: green in two iterations, issue closed, retest promptly."""
    with Simulator(bug=True) as staging:
        project(tmp_path, staging, 'timeout = "60s"')
        proc = start_cli("run", cwd=tmp_path)
        try:
            wait_for(lambda: any(e["event"] == "waiting" for e in events(tmp_path)), timeout=60)
            flip_at = time.time() + 1.0
            staging.deploy(fix=True, delay_s=1.0)
            proc.wait(60)
        finally:
            proc.kill()
    assert proc.returncode == 0, (tmp_path / "cli.out").read_text()[-2000:]
    found = events(tmp_path)
    assert first(found, "deploying")["detail"]  # staging down mid-deploy was waited through
    assert first(found, "version_seen")["version"] == "rev-0002"
    retest = first(found, "iteration_start", iteration=2)
    assert retest["version"] == "rev-0002"
    assert retest["ts"] - flip_at <= POLL + SETTLE + 1.0
    assert first(found, "failed_first") | {"ts": 0} == {
        "ts": 0, "event": "failed_first", "passed": 4, "total": 4, "version": "rev-0002"
    }  # fmt: skip
    (verdict,) = [e for e in found if e["event"] == "failed_first_suite"]  # no correction
    assert (verdict["phase"], verdict["suite"], verdict["passed"], verdict["total"]) == (
        "agents", "ws", 4, 4
    )  # fmt: skip
    assert verdict["corrects"] is None and verdict["ts"] <= first(found, "failed_first")["ts"]
    log = (session_dirs(tmp_path / "logs")[0] / "session.md").read_text()
    assert "failed-first agents/ws: 4/4 now pass on rev-0002" in log
    closed = first(found, "issue", action="closed")
    created = first(found, "issue", action="created")
    assert closed["number"] == created["number"]
    (issue,) = (tmp_path / "logs" / "issues").glob("*.md")
    assert "rev-0002" in issue.read_text().split("Comment")[-1]
    assert "- state: closed" in issue.read_text()


def test_failing_trigger_is_reported(tmp_path: Path) -> None:
    """A redeploy trigger that exits non-zero is reported with its exit code; the loop goes on."""
    with Simulator(bug=True) as staging:
        trigger = f"{sys.executable} -c 'import sys; print(\\\"boom\\\"); sys.exit(3)'"
        project(tmp_path, staging, f'timeout = "1s"\ntrigger = "{trigger}"')
        done = cli("run", "--max-iterations", "2", cwd=tmp_path, timeout=90)
    assert done.returncode == 1
    log = (session_dirs(tmp_path / "logs")[0] / "session.md").read_text()
    assert "redeploy trigger FAILED" in log and "exit 3" in log and "boom" in log
    assert log.count("## Iteration") == 2


def test_redeploy_timeout_with_stop_exits_3(tmp_path: Path) -> None:
    """No new version before the timeout with on_timeout = "stop" ends the run with exit 3."""
    with Simulator(bug=True) as staging:
        project(tmp_path, staging, 'timeout = "1s"\non_timeout = "stop"')
        done = cli("run", cwd=tmp_path, timeout=90)
    assert done.returncode == 3
    log = (session_dirs(tmp_path / "logs")[0] / "session.md").read_text()
    assert "no new version before the redeploy timeout" in log


def test_missing_trigger_and_timed_out_wait_are_said_in_log_and_report(tmp_path: Path) -> None:
    """A trigger not on PATH is named with the PATH; a timed-out wait says so; the report too."""
    with Simulator(bug=True) as staging:
        trigger = 'trigger = "deploy-not-installed --project staging"'
        project(tmp_path, staging, f'timeout = "1s"\non_timeout = "retest"\n{trigger}')
        done = cli("run", "--max-iterations", "2", cwd=tmp_path, timeout=90)
    assert done.returncode == 1
    directory = session_dirs(tmp_path / "logs")[0]
    log = (directory / "session.md").read_text()
    assert "redeploy trigger FAILED: deploy-not-installed --project staging: " in log
    assert "`deploy-not-installed` not found on PATH (" in log
    assert "redeploy wait timed out: no new version within 1.0 s" in log
    assert "retesting the same version" in log and log.count("## Iteration") == 2
    report = (directory / "report.md").read_text()
    assert "## Redeploy problems" in report
    assert "redeploy trigger FAILED" in report and "redeploy wait timed out" in report
