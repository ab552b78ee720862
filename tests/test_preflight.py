"""``deployloop preflight`` as a real process against the simulator: table, version, exit code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployloop.simagent import AGENT_EVENTS
from deployloop.simulator import Simulator
from tests.helpers import cli

EVENTS = json.dumps(list(AGENT_EVENTS))


def write_config(path: Path, base_url: str, timeout: str = "5s") -> Path:
    ws_url = base_url.replace("http://", "ws://") + "/ws"
    path.write_text(
        f"""\
[session]
name = "t"
[target]
base_url = "{base_url}"
health = "/health"
version = {{ url = "/version", json = "commit" }}
websocket = "{ws_url}"
[[phase]]
name = "agents"
  [[phase.probe]]
  kind = "websocket"
  send = '{{"type": "start_agent", "payload": {{"user_request": "ping"}}}}'
  expect_events = {EVENTS}
  timeout = "{timeout}"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def test_all_ok_exits_0_and_shows_the_version(sim: Simulator, tmp_path: Path) -> None:
    """Against a healthy target every check is ok, the version is shown and the exit is 0."""
    config = write_config(tmp_path / "cfg.toml", sim.base_url)
    done = cli("preflight", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deployed version: rev-0001" in done.stdout
    assert "5/5 events" in done.stdout
    assert "FAIL" not in done.stdout
    assert "\x1b[" not in done.stdout  # not a terminal: no colour codes


def test_bug_mode_exits_3_naming_1011(sim: Simulator, tmp_path: Path) -> None:
    """A crashing agent pipeline fails preflight with exit 3 and the 1011 close in the output."""
    sim.set_bug(True)
    config = write_config(tmp_path / "cfg.toml", sim.base_url)
    done = cli("preflight", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "FAIL agents / websocket:default: missing agent_thinking" in done.stdout
    assert "server closed with 1011 (internal error) after agent_started" in done.stdout


def test_missing_event_is_named(sim: Simulator, tmp_path: Path) -> None:
    """An event that never comes is named in the output and fails preflight."""
    sim.behaviour.omit_event = "agent_completed"
    config = write_config(tmp_path / "cfg.toml", sim.base_url, timeout="0.5s")
    done = cli("preflight", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 3
    assert "missing agent_completed (4/5 events)" in done.stdout


def test_unreachable_target_exits_3(tmp_path: Path) -> None:
    """A target nobody listens on fails health, version and probe, exit 3."""
    with Simulator() as gone:
        base_url = gone.base_url
    config = write_config(tmp_path / "cfg.toml", base_url)
    done = cli("preflight", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 3
    assert "FAIL health: cannot connect" in done.stdout
    assert "FAIL version:" in done.stdout
    assert "0/3 checks ok" in done.stdout


def test_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    """Without any config preflight exits 2 with one clear line."""
    done = cli("preflight", cwd=tmp_path)
    assert done.returncode == 2
    assert "no config found" in done.stderr
    assert "Traceback" not in done.stderr


def test_programs_the_run_lines_and_trigger_name_are_checked(
    sim: Simulator, tmp_path: Path
) -> None:
    """A suite runner and a trigger not on PATH each fail preflight by their config key (exit
    3) while the target is healthy; a program that is found shows as an ok row."""
    config = write_config(tmp_path / "cfg.toml", sim.base_url)
    text = config.read_text(encoding="utf-8").replace(
        "  [[phase.probe]]",
        '  [[phase.suite]]\n  name = "s"\n  run = "no-such-runner-xyz tests"\n'
        '  junit = "out.xml"\n\n  [[phase.probe]]',
    )
    config.write_text(text + '[redeploy]\ntrigger = "also-missing-xyz --go"\n', encoding="utf-8")
    done = cli("preflight", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "FAIL programs / phase[0].suite[0].run: `no-such-runner-xyz` not found" in done.stdout
    assert "FAIL programs / redeploy.trigger: `also-missing-xyz` not found" in done.stdout
    assert "deployed version: rev-0001" in done.stdout
    config.write_text(text.replace("no-such-runner-xyz", "true"), encoding="utf-8")
    done = cli("preflight", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "programs" in done.stdout and "FAIL" not in done.stdout
