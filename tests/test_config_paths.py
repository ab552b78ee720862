"""Every command run with an absolute -c from another directory sees the same files and session."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from deployloop.config import load
from deployloop.daemon import trigger_runner
from deployloop.events import Event, Reporter, Trigger
from deployloop.state import SessionRow
from tests.helpers import cli, config_text, phase_block, python_pytest, suite_block, write_tests


def test_absolute_config_from_anywhere_sees_one_session(tmp_path: Path) -> None:
    """run, status and validate from other folders use the config's folder: suites, logs, state."""
    project, first, second = tmp_path / "project", tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
    write_tests(project / "e2e", "test_ok.py", "def test_ok():\n    assert True\n")
    config = project / "deployloop.toml"
    config.write_text(
        config_text(phase_block("p", suite_block("s", python_pytest(), cwd="e2e"))),
        encoding="utf-8",
    )
    ran = cli("run", "--once", "-c", str(config), cwd=first)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (project / "logs").is_dir() and not (first / "logs").exists()
    status = cli("status", "--json", "-c", str(config), cwd=second)
    assert status.returncode == 0, status.stderr
    session = json.loads(status.stdout)["session"]
    assert session and (project / "logs" / session / "session.md").is_file()
    assert cli("validate", "-c", str(config), cwd=second).returncode == 0


def test_trigger_runs_in_the_config_folder_and_shows_names(tmp_path: Path) -> None:
    """[redeploy] trigger runs from the config's folder; its event shows ${NAME}, not the value."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = write_tests(project, "deploy.sh", '#!/bin/sh\necho "$1" > deployed\n')
    script.chmod(0o755)
    config = project / "deployloop.toml"
    config.write_text(
        config_text(phase_block("p", suite_block("s", python_pytest())))
        + '[redeploy]\ntrigger = "./deploy.sh ${DEPLOY_KEY}"\n',
        encoding="utf-8",
    )
    loaded = load(config, {**os.environ, "DEPLOY_KEY": "k3y-abcdef"})
    os.chdir(elsewhere)
    row = SessionRow("s", "k", "s", str(tmp_path / "logs"), 0.0, None, 1, "running", None, None)
    events: list[Event] = []
    trigger_runner(loaded, Reporter(events.append), threading.Event(), row)(1)
    assert (project / "deployed").read_text(encoding="utf-8") == "k3y-abcdef\n"
    [event] = events
    assert isinstance(event, Trigger)
    assert event.command == "./deploy.sh ${DEPLOY_KEY}" and event.ok
    assert "k3y-abcdef" not in event.detail
