"""`deployloop schedule`: its crontab line run as cron runs it; systemd's verdict on its units."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployloop.lock import InstanceLock, lock_path
from deployloop.simulator import Simulator
from tests.helpers import REPO, session_dirs

ENTRY = Path(sys.executable).parent / "deployloop"  # as a user runs it: the venv's script
CRON_ENV = {"PATH": "/usr/bin:/bin", "SHELL": "/bin/sh"}  # what Debian's cron gives a job
PHASE = """[[phase]]
name = "infrastructure"
gates = { pass_rate = 1.0 }

  [[phase.suite]]
  name = "smoke"
  run = "pytest -q -p no:cacheprovider tests/e2e"
  timeout = "1m"

"""
SMOKE = """
import os, urllib.request

def get(path):
    return urllib.request.urlopen(os.environ["STAGING_URL"] + path, timeout=5).status

def test_health():
    assert get("/health") == 200

def test_version():
    assert get("/version") == 200
"""
REGRESSION = """
from test_smoke import get

def test_checkout_is_deployed():
    assert get("/api/checkout") == 200
"""


def deployloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRY), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def as_cron(line: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run a crontab line as cron does: its command, %-unescaped, by /bin/sh in a bare env."""
    command = line.split(maxsplit=5)[5].replace("\\%", "%")
    env = ["env", "-i", f"HOME={home}", f"LOGNAME={os.environ.get('USER', 'root')}"]
    env += [f"{k}={v}" for k, v in CRON_ENV.items()]
    return subprocess.run(
        [*env, "/bin/sh", "-c", command],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, Simulator]]:
    """A project folder made by ``init``, one tiny phase, secrets in deployloop.env."""
    folder = tmp_path / "e2e"
    assert deployloop("init", str(folder), cwd=tmp_path).returncode == 0
    config = folder / "deployloop.toml"
    text = config.read_text()
    text = text[: text.index("[[phase]]")] + PHASE + text[text.index("[issues]") :]
    config.write_text(text.replace("max_iterations = 100", "max_iterations = 1"))
    (folder / "tests" / "e2e").mkdir(parents=True)
    (folder / "tests" / "e2e" / "test_smoke.py").write_text(SMOKE)
    with Simulator() as staging:
        yield folder, staging


def scheduled(folder: Path, staging: Simulator, tmp_path: Path) -> str:
    """``schedule`` run from elsewhere; the env file filled in as the user is told to."""
    done = deployloop("schedule", "-c", str(folder / "deployloop.toml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    env_file = folder / "deployloop.env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert "# STAGING_URL=" in env_file.read_text()
    with open(env_file, "a") as handle:
        handle.write(f"STAGING_URL={staging.base_url}\nSTAGING_WS_URL={staging.ws_url}\n")
        handle.write("STAGING_TOKEN='t0ken with spaces'\n")
    (line,) = [
        x for x in (folder / "deployloop-staging-night.cron").read_text().splitlines()
        if x and not x.startswith("#")
    ]  # fmt: skip
    assert line.startswith("0 23 * * * ")
    return line


def test_crontab_line_runs_a_real_night_as_cron_would(
    project: tuple[Path, Simulator], tmp_path: Path
) -> None:
    """Green night: exit 0, silent, log kept; failed: exit 1, one line; locked: 75, silent."""
    folder, staging = project
    line = scheduled(folder, staging, tmp_path)
    green = as_cron(line, tmp_path)
    assert (green.returncode, green.stdout, green.stderr) == (0, "", "")
    log = (folder / "logs" / "deployloop.log").read_text()
    assert "suite infrastructure/smoke: 2 passed" in log and "session ended: green" in log
    assert (session_dirs(folder / "logs")[0] / "session.md").exists()

    (folder / "tests" / "e2e" / "test_regression.py").write_text(REGRESSION)
    failed = as_cron(line, tmp_path)
    assert failed.returncode == 1 and failed.stderr == ""
    (verdict,) = failed.stdout.splitlines()  # cron mails exactly this line
    assert "ended with exit 1: max_iterations (1) reached" in verdict and "session.md" in verdict

    key = f"{(folder / 'deployloop.toml').resolve()}#staging-night"
    with InstanceLock(lock_path(key), "test"):
        locked = as_cron(line, tmp_path)
    assert (locked.returncode, locked.stdout, locked.stderr) == (75, "", "")
    assert "another deployloop run" in (folder / "logs" / "deployloop.log").read_text()


def test_crontab_line_without_the_venv_on_path_names_the_missing_program(
    project: tuple[Path, Simulator], tmp_path: Path
) -> None:
    """A run line whose program is not on cron's PATH fails the night naming it and that PATH."""
    folder, staging = project
    line = scheduled(folder, staging, tmp_path)
    config = folder / "deployloop.toml"
    config.write_text(config.read_text().replace('run = "pytest', 'run = "pytest-not-here'))
    failed = as_cron(line, tmp_path)
    assert failed.returncode == 1 and len(failed.stdout.splitlines()) == 1
    log = (folder / "logs" / "deployloop.log").read_text()
    assert "`pytest-not-here` not found on PATH (" in log


def units(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "e2e"
    assert deployloop("init", str(folder), cwd=tmp_path).returncode == 0
    out = tmp_path / "units"
    done = deployloop("schedule", "-c", str(folder / "deployloop.toml"), "--format", "systemd",
                      "-o", str(out), "--at", "22:30", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "deployloop-staging-night.service",
        "deployloop-staging-night.timer",
    ]
    return {p.suffix: p.read_text() for p in out.iterdir()} | {"dir": str(out)}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_passes_on_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing wrong with the service and the timer."""
    written = units(tmp_path)
    paths = [
        str(Path(written["dir"]) / f"deployloop-staging-night{s}") for s in (".service", ".timer")
    ]
    done = subprocess.run(
        ["systemd-analyze", "verify", *paths],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [x for x in done.stderr.splitlines() if "deployloop" in x]
    assert done.returncode == 0 and problems == [], done.stderr


def test_unit_exit_statuses_follow_the_documented_exit_codes(tmp_path: Path) -> None:
    """Success: 0, 75 (locked), 130/143 (stopped); 1, 2, 3, 70 are failures systemd shows."""
    written = units(tmp_path)
    service, timer = written[".service"], written[".timer"]
    readme = (REPO / "README.md").read_text()
    documented = {
        int(c) for c in re.findall(r"^\| (\d+)(?: / (\d+))? \|", readme, re.M) for c in c if c
    }
    (success,) = re.findall(r"^SuccessExitStatus=(.*)$", service, re.M)
    assert {0, *map(int, success.split())} == {0, 75, 130, 143}
    assert documented - {0, 75, 130, 143} == {1, 2, 3, 70}  # all failures, none listed above
    for setting in ("KillSignal=SIGTERM", "KillMode=mixed", "TimeoutStopSec=30", "Type=exec"):
        assert setting in service
    assert re.search(
        r"^ExecStart=/\S+/deployloop run -c /\S+/deployloop.toml --log-file /", service, re.M
    )
    assert re.search(r"^EnvironmentFile=/\S+/e2e/deployloop.env$", service, re.M)
    assert re.search(rf'^Environment="PATH={re.escape(str(ENTRY.parent))}:', service, re.M)
    for setting in ("OnCalendar=*-*-* 22:30:00", "WantedBy=timers.target", "Persistent=false"):
        assert setting in timer
