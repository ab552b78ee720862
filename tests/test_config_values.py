"""Config values: every number finite and in range, durations above their minimum, regexes,
URLs, headers and commands checked, deep nesting and bad command-line limits refused in one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deployloop import config
from deployloop.durations import parse_duration
from deployloop.errors import ConfigError, UsageError

FULL = """\
[session]
name = "night"
budget = "8h"
max_iterations = 10

[target]
base_url = "http://127.0.0.1:9"
health = "/health"
websocket = "ws://127.0.0.1:9/ws"
request_timeout = "5s"

[[phase]]
name = "p1"
gates = { pass_rate = 0.9, p95_s = 2.0 }
  [[phase.suite]]
  name = "critical"
  run = "pytest tests"
  timeout = "15m"
  [[phase.probe]]
  kind = "http"
  url = "/ping"
  expect_status = 200

[issues]
reopen_days = 14
api_url = "https://api.github.com"

[clusters]
mask = ['order-\\d+']

[redeploy]
poll = "30s"
settle = "0s"
"""
LINE = re.compile(r"^c\.toml:\d+: ")


def problems_for(key: str, value: str) -> list[str]:
    """Set ``key = value`` on its own line in FULL (first occurrence) and parse it."""
    pattern = re.compile(rf"^(\s*{re.escape(key)} = ).*$", re.MULTILINE)
    text, count = pattern.subn(lambda m: m.group(1) + value, FULL, count=1)
    assert count == 1, key
    with pytest.raises(ConfigError) as info:
        config.parse(text, "c.toml", {})
    return info.value.problems


def test_full_config_is_valid() -> None:
    """The base of the value tests parses as written."""
    assert config.parse(FULL, "c.toml", {}).session.max_iterations == 10


@pytest.mark.parametrize(
    ("key", "value", "line", "says"),
    [
        ("budget", "inf", 3, "not a finite duration"),
        ("budget", "1e308", 3, "at most 30 days"),
        ("budget", '"0s"', 3, "at least 1 s"),
        ("max_iterations", "100000000000000000000", 4, "less than or equal to"),
        ("base_url", '"not a url"', 7, "not a URL (http/https)"),
        ("base_url", '"http://"', 7, "not a URL"),
        ("base_url", '"http://host:99999/"', 7, "not a URL"),
        ("websocket", '"https://x/ws"', 9, "not a URL (ws/wss)"),
        ("health", '"not a path"', 8, "not a URL path"),
        ("request_timeout", "nan", 10, "not a finite duration"),
        ("gates", "{ pass_rate = nan }", 14, "finite number"),
        ("gates", "{ p95_s = inf }", 14, "finite number"),
        ("run", '"pytest \'unclosed"', 17, "cannot split"),
        ("timeout", "nan", 18, "not a finite duration"),
        ("timeout", '"0s"', 18, "at least 0.1 s"),
        ("expect_status", "999", 22, "less than or equal to 599"),
        ("reopen_days", "inf", 25, "finite number"),
        ("reopen_days", "1e308", 25, "less than or equal to 3650"),
        ("api_url", '"not a url"', 26, "not a URL"),
        ("mask", "['(']", 29, "not a regular expression: '('"),
        ("poll", '"0s"', 32, "at least 0.1 s"),
        ("settle", '"-1s"', 33, "not a duration"),
    ],
)
def test_bad_value_is_one_located_problem(key: str, value: str, line: int, says: str) -> None:
    """Each value that would misbehave at run time is refused on its own line, saying why."""
    [problem] = problems_for(key, value)
    assert problem.startswith(f"c.toml:{line}: ") and says in problem, problem


def test_header_with_line_break_is_refused_without_showing_it() -> None:
    """A header value h11 would refuse is a problem; the value (a credential) is not printed."""
    text = FULL.replace('health = "/health"', 'headers = { X-Key = "abc\\ndef-secret" }')
    with pytest.raises(ConfigError) as info:
        config.parse(text, "c.toml", {})
    [problem] = info.value.problems
    assert problem.startswith("c.toml:8: target.headers.X-Key") and "secret" not in problem


def test_deep_toml_array_is_one_line() -> None:
    """A 5000-deep array (tomllib's RecursionError) is one clear problem, not a traceback."""
    text = FULL + "deep = " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(ConfigError) as info:
        config.parse(text, "c.toml", {})
    assert info.value.problems == ["c.toml:34: invalid TOML: nested too deeply"]


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 10**400, "9" * 400, -1])
def test_duration_refuses_non_finite_and_negative(value: str | float) -> None:
    """parse_duration raises ValueError for inf, nan, huge and negative input."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("budget", "until", "iterations", "says"),
    [
        ("xyz", None, None, "--budget: not a duration: 'xyz'"),
        ("inf", None, None, "--budget: not a duration"),
        ("0s", None, None, "--budget: must be at least 1 s"),
        (None, "25:00", None, "--until: not a clock time"),
        (None, None, 0, "--max-iterations: Input should be greater than or equal to 1"),
        (None, None, 10**12, "--max-iterations: Input should be less than or equal to"),
    ],
)
def test_run_options_are_checked_like_config(
    budget: str | None, until: str | None, iterations: int | None, says: str
) -> None:
    """--budget, --until and --max-iterations are held to the config's rules, in one line."""
    with pytest.raises(UsageError) as info:
        config.check_run_options(budget, until, iterations)
    assert str(info.value).startswith(says) and "\n" not in str(info.value)


def test_good_run_options_pass() -> None:
    """Valid limits come back parsed."""
    limits = config.check_run_options("1h30m", "07:00", 5)
    assert (limits.budget, limits.until and limits.until.hour, limits.max_iterations) == (
        5400,
        7,
        5,
    )


def deployloop(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployloop", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_run_with_bad_budget_exits_2_in_one_line(tmp_path: Path) -> None:
    """`run --budget xyz` exits 2 with one line and no traceback, before any session starts."""
    done = deployloop("run", "--budget", "xyz", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "deployloop: --budget: not a duration: 'xyz' (use e.g. '90s', '15m', '8h', '1h30m')"
    ]


@pytest.mark.parametrize("command", ["validate", "run"])
def test_one_problem_prints_like_many(tmp_path: Path, command: str) -> None:
    """A single config problem is a bare FILE:LINE line at `validate` and at `run`'s start."""
    path = tmp_path / "c.toml"
    path.write_text(FULL.replace('poll = "30s"', 'poll = "0s"'), encoding="utf-8")
    done = deployloop(command, "-c", str(path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{path}:32: redeploy.poll: must be at least 0.1 s (got 0 s)"
    ]


WS_SECRET = "WsPw-99812"


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ('"${WS}"', f"wss://u:{WS_SECRET}@h:99999/x"),
        ('"wss://u:${WS_PW}@h:99999/x"', WS_SECRET),
        ('"${WS}"', f"wss://u:{WS_SECRET}@h:99999/" + "x" * 100),  # longer than shown
    ],
)
def test_an_interpolated_value_is_shown_as_written(written: str, value: str) -> None:
    """A bad value that came from ${NAME} is shown in its ${NAME} form, never as its value."""
    text = FULL.replace('websocket = "ws://127.0.0.1:9/ws"', f"websocket = {written}")
    with pytest.raises(ConfigError) as info:
        config.parse(text, "c.toml", {"WS": value, "WS_PW": value})
    [problem] = info.value.problems
    assert problem.startswith("c.toml:9: target.websocket: not a URL"), problem
    assert WS_SECRET not in problem and "${WS" in problem, problem


def test_validate_and_run_print_no_interpolated_value(tmp_path: Path) -> None:
    """`validate` and `run --quiet` print the ${NAME} form of a bad interpolated URL."""
    path = tmp_path / "c.toml"
    path.write_text(FULL.replace('"ws://127.0.0.1:9/ws"', '"${WS}"'), encoding="utf-8")
    env = {"WS": f"wss://u:{WS_SECRET}@h:99999/x"}
    for command in (("validate",), ("run", "--quiet")):
        done = deployloop(*command, "-c", str(path), cwd=tmp_path, env=env)
        assert done.returncode == 2, done.stderr
        assert WS_SECRET not in done.stdout + done.stderr and "${WS}" in done.stderr
