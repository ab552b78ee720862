"""validate finds every program a run line, trigger or version command names, as the run will."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployloop.programs import programs

CRON_PATH = "/usr/bin:/bin"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("pytest tests/e2e", [("pytest", None)]),
        ("cd e2e && VAR=x pytest -q", [("pytest", "e2e")]),
        ("FOO=1 ./run.sh > out.log 2>&1; echo done", [("./run.sh", None)]),
        ("${PYTHON} -m pytest", []),
        ("if true; then npx jest; fi", [("npx", None)]),
        ("env PATH=/x nohup gcloud run deploy | tee log", [("gcloud", None), ("tee", None)]),
    ],
)
def test_programs_of_a_command_line(command: str, expected: list[tuple[str, str | None]]) -> None:
    """Each simple command's program is found past assignments, redirections and builtins."""
    assert list(programs(command)) == expected


def validate(config: Path, path_var: str) -> subprocess.CompletedProcess[str]:
    """`deployloop validate` as cron would start it: a bare environment with cron's PATH."""
    return subprocess.run(
        [sys.executable, "-m", "deployloop", "validate", "-c", str(config)],
        env={"PATH": path_var, "HOME": os.environ.get("HOME", "/")},
        capture_output=True,
        text=True,
        check=False,
    )


def project(tmp_path: Path, run: str, extra: str = "") -> Path:
    path = tmp_path / "deployloop.toml"
    path.write_text(
        '[target]\nbase_url = "http://127.0.0.1:9"\n\n[[phase]]\nname = "p"\n'
        f'  [[phase.suite]]\n  name = "s"\n  run = "{run}"\n{extra}',
        encoding="utf-8",
    )
    return path


def test_missing_program_is_named_with_path(tmp_path: Path) -> None:
    """A program not on cron's PATH is a FILE:LINE problem naming it, the PATH and the fix."""
    path = project(
        tmp_path, "no-such-runner-xyz tests", '[redeploy]\ntrigger = "no-such-deployer"\n'
    )
    done = validate(path, CRON_PATH)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"{path}:8: phase[0].suite[0].run: `no-such-runner-xyz` not found on PATH ({CRON_PATH}):"
        " install it there, write its full path in the command, or start deployloop with a PATH"
        " that has it",
        f"{path}:10: redeploy.trigger: `no-such-deployer` not found on PATH ({CRON_PATH}):"
        " install it there, write its full path in the command, or start deployloop with a PATH"
        " that has it",
    ]


def test_found_programs_validate(tmp_path: Path) -> None:
    """A program on PATH, and a script in the suite's cwd behind `cd`, are found: exit 0."""
    script = tmp_path / "e2e" / "run.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(0o755)
    path = project(tmp_path, "cd e2e && ./run.sh && sh -c true")
    done = validate(path, CRON_PATH)
    assert done.returncode == 0, done.stderr


def test_script_missing_from_cwd_names_the_directory(tmp_path: Path) -> None:
    """A relative script not in the suite's cwd is named with that directory."""
    (tmp_path / "e2e").mkdir()
    path = project(tmp_path, "./run.sh", '  cwd = "e2e"\n')
    done = validate(path, CRON_PATH)
    assert done.returncode == 2
    assert f"`./run.sh` not found (or not executable) in {tmp_path / 'e2e'}" in done.stderr


def test_missing_cwd_is_named(tmp_path: Path) -> None:
    """A suite cwd that does not exist is a problem naming the resolved directory."""
    path = project(tmp_path, "sh -c true", '  cwd = "nowhere"\n')
    done = validate(path, CRON_PATH)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{path}:9: phase[0].suite[0].cwd: directory {tmp_path / 'nowhere'} does not exist"
    ]


def test_suite_env_path_is_the_one_searched(tmp_path: Path) -> None:
    """A suite whose env sets PATH is checked against that PATH, as its process will search."""
    path = project(tmp_path, "sh -c true", '  env = { PATH = "/nonexistent" }\n')
    done = validate(path, CRON_PATH)
    assert done.returncode == 2
    assert "`sh` not found on PATH (/nonexistent)" in done.stderr
