"""Every command run with an absolute -c from another directory sees the same files and session."""

from __future__ import annotations

import json
from pathlib import Path

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
