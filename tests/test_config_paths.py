"""Every command run with an absolute -c from another directory sees the same files and session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_commands_that_send_nothing_need_no_secret_in_the_shell(tmp_path: Path) -> None:
    """With `${NAME}`s unset (cron's shell, a new terminal): status, report and schedule run
    from another folder with an absolute -c (schedule names the unset ones); validate still
    refuses them, naming each; a lenient load fills no secret and never a real address."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_tests(project / "e2e", "test_ok.py", "def test_ok():\n    assert True\n")
    config = project / "deployloop.toml"
    config.write_text(
        config_text(
            phase_block("p", suite_block("s", python_pytest(), cwd="e2e")),
            base_url="${DL_UNSET_URL}",
            extra='[issues]\ntracker = "github"\nrepo = "a/b"\ntoken = "${DL_UNSET_TOKEN}"\n',
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DL_UNSET_")}
    secrets = {"DL_UNSET_URL": "http://127.0.0.1:9", "DL_UNSET_TOKEN": "t0ken-abcdef"}
    ran = cli("run", "--once", "-c", str(config), cwd=elsewhere, env=secrets)
    assert ran.returncode == 0, ran.stdout + ran.stderr  # green: GitHub is never asked
    status = _bare_cli(env, "status", "--json", "-c", str(config), cwd=elsewhere)
    assert status.returncode == 0 and json.loads(status.stdout)["session"], status.stderr
    report = _bare_cli(env, "report", "-c", str(config), cwd=elsewhere)
    assert report.returncode == 0 and report.stdout.strip(), report.stderr
    schedule = _bare_cli(env, "schedule", "-c", str(config), "--format", "cron", cwd=elsewhere)
    assert schedule.returncode == 0, schedule.stderr
    assert "DL_UNSET_TOKEN, DL_UNSET_URL" in schedule.stdout
    assert "# DL_UNSET_TOKEN=" in (project / "deployloop.env").read_text()
    validate = _bare_cli(env, "validate", "-c", str(config), cwd=elsewhere)
    assert validate.returncode == 2
    assert "${DL_UNSET_URL} is not set" in validate.stderr + validate.stdout
    lenient = load(config, env, lenient=True)
    assert lenient.unset == ("DL_UNSET_TOKEN", "DL_UNSET_URL") and not lenient.secrets
    assert str(lenient.target.base_url).startswith("https://unset.invalid")


def _bare_cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in exactly ``env`` (``cli`` adds the test's own environment)."""
    return subprocess.run(
        [sys.executable, "-m", "deployloop", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
