"""Property: any value of any type in any key of a full config ends `validate` in exit 0, or in
exit 2 with every line ``FILE:LINE: message`` — never a traceback."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import string
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployloop import config
from deployloop.commands import validate
from deployloop.errors import ConfigError, UsageError

# Every key of a full config, one per line, each value a placeholder; sub-tables, not inline
# tables, so each key has its own line. Defaults are valid, so only the drawn keys are bad.
KEYS: dict[str, str] = {
    "session.name": '"night"', "session.budget": '"8h"', "session.until": '"07:00"',
    "session.max_iterations": "10", "session.logs_dir": '"logs"', "session.interval": '"60s"',
    "target.base_url": '"http://127.0.0.1:9"', "target.health": '"/health"',
    "target.websocket": '"ws://127.0.0.1:9/ws"', "target.subprotocols": '["v1"]',
    "target.proxy": '"http://127.0.0.1:3128"', "target.request_timeout": '"5s"',
    "target.unreachable_timeout": '"10m"', "version.url": '"/version"', "version.json": '"commit"',
    "headers.Authorization": '"Bearer abcdefgh"',
    "phase.name": '"p1"', "phase.priority": '"P1"', "phase.fail_fast": "true",
    "gates.pass_rate": "0.9", "gates.p95_s": "2.0", "gates.max_failures": "3",
    "suite.name": '"critical"', "suite.run": "RUN", "suite.junit": '"reports/*.xml"',
    "suite.cwd": '"."', "suite.expect_tests": "5", "suite.min_seconds": "1",
    "suite.timeout": '"15m"', "env.LEVEL": '"debug"',
    "probe.kind": '"websocket"', "probe.name": '"agents"', "probe.url": '"/ws"',
    "probe.method": '"GET"', "probe.expect_status": "101", "probe.samples": "1",
    "probe.send": '"{}"', "probe.expect_events": '["started"]', "probe.event_key": '"type"',
    "probe.ordered": "false", "probe.timeout": '"30s"',
    "issues.tracker": '"local"', "issues.repo": '"acme/platform"', "issues.token": '"${TOKEN}"',
    "issues.api_url": '"https://api.github.com"', "issues.labels": '["deployloop"]',
    "issues.max_new_per_iteration": "5", "issues.broken_threshold": "0.5",
    "issues.close_on_fix": "true", "issues.reopen_days": "14", "issues.dir": '"issues"',
    "issues.write_interval": '"1s"', "issues.retry_backoff": '"2s"',
    "issues.retry_max_wait": '"5m"', "retest.rerun_failed": "true", "retest.flaky": '"pass"',
    "clusters.mask": "['order-\\\\d+']",
    "clusters.merge": '[["v2-0123456789ab", "v2-ba9876543210"]]',
    "redeploy.trigger": "RUN", "redeploy.cwd": '"."',
    "redeploy.trigger_timeout": '"30m"', "redeploy.poll": '"30s"', "redeploy.settle": '"60s"',
    "redeploy.timeout": '"2h"', "redeploy.on_timeout": '"retest"',
}  # fmt: skip
TABLES = {
    "session": "[session]", "target": "[target]", "version": "[target.version]",
    "headers": "[target.headers]", "phase": "[[phase]]", "gates": "[phase.gates]",
    "suite": "[[phase.suite]]", "env": "[phase.suite.env]", "probe": "[[phase.probe]]",
    "issues": "[issues]", "retest": "[retest]", "clusters": "[clusters]", "redeploy": "[redeploy]",
}  # fmt: skip
RUN = f'"{sys.executable} -c pass"'  # a program validate finds whatever PATH the test has
FIXED = ["gates", "env", "headers", "version", "suite", "probe"]  # tables that must follow theirs


def render(values: dict[str, str]) -> str:
    """The full config with ``values`` (TOML literals) in place of the defaults."""
    out: list[str] = []
    for table, header in TABLES.items():
        out.append(header)
        for key, default in KEYS.items():
            if key.split(".")[0] == table:
                literal = values.get(key, default)
                out.append(f"{key.split('.', 1)[1]} = {RUN if literal == 'RUN' else literal}")
    return "\n".join(out) + "\n"


def toml(value: Any) -> str:
    """``value`` as a TOML literal (strings escaped so that the file stays TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float | dt.datetime | dt.date | dt.time):
        return value.isoformat() if isinstance(value, dt.date | dt.time) else repr(value)
    if isinstance(value, str):
        return '"' + "".join(_char(c) for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml(k)} = {toml(v)}" for k, v in value.items()) + "}"


def _char(c: str) -> str:
    if c in '"\\' or ord(c) < 32 or ord(c) == 127:
        return f"\\u{ord(c):04x}"
    return c


SPICY = st.sampled_from(
    ["90s", "0s", "-1s", "1e308", "inf", "nan", "07:00", "25:99", "http://127.0.0.1:9", "http://",
     "wss://x/ws", "(", "[a-", "pytest 'x", "${UNSET_VAR}", "${EMPTY_VAR}", "${EMPTY_VAR:-}",
     "/health", "local", "github", "pass", "fail", "stop", "websocket", "http", "", " ", "\x00",
     "a\nb", "~/x", "../..", "acme/platform"]
)  # fmt: skip
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(alphabet=string.printable + "é€\u2028", max_size=12),
    SPICY,
    st.times(),
    st.dates(),
)
TRICKY = st.sampled_from([math.inf, -math.inf, math.nan, 1e308, 2**63 - 1, -1, 0, 0.0, 1.5])
# The wrong values that matter are drawn often, beside random values of every TOML type.
VALUES = (
    SPICY
    | TRICKY
    | st.lists(SPICY, min_size=1, max_size=2)
    | st.recursive(
        SCALARS,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["a", "url", "x"]), inner, max_size=2)
        ),
        max_leaves=4,
    )
)
PROBLEM = re.compile(r"^\S+:\d+: \S")


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.sampled_from(sorted(KEYS)), VALUES.map(toml), min_size=1, max_size=3))
def test_any_value_in_any_key_is_ok_or_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: dict[str, str]
) -> None:
    """validate returns 0, or raises ConfigError (exit 2) whose every line is FILE:LINE: ..."""
    monkeypatch.setenv("TOKEN", "tok-123456")
    monkeypatch.setenv("EMPTY_VAR", "")
    path = tmp_path / "deployloop.toml"
    path.write_text(render(values), encoding="utf-8")
    problems = validate_problems(path)  # any other exception fails the test: a traceback
    assert all(PROBLEM.match(line) and line.startswith(f"{path}:") for line in problems), problems
    if not problems:  # accepted: then nothing in it is inf or nan (`status --json`, deadlines)
        json.dumps(config.load(path).model_dump(mode="json"), allow_nan=False)


def validate_problems(path: Path) -> list[str]:
    """The lines `validate` exits 2 with (ConfigError is a UsageError: exit 2); [] for exit 0."""
    try:
        code = validate.run(path)
    except ConfigError as exc:
        return exc.problems or ["(a ConfigError without problems)"]
    assert code == 0
    return []


def test_the_rendered_defaults_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The property's base config validates, so every failure it finds comes from a drawn value."""
    monkeypatch.setenv("TOKEN", "tok-123456")
    path = tmp_path / "deployloop.toml"
    path.write_text(render({}), encoding="utf-8")
    assert config.load(path).phases[0].suites[0].cwd == str(tmp_path)
    assert validate.run(path) == 0


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.one_of(st.none(), st.text(max_size=10), SPICY),
    st.one_of(st.none(), SPICY, st.text(max_size=6)),
    st.one_of(st.none(), st.integers()),
)
def test_any_run_option_is_ok_or_one_line(
    budget: str | None, until: str | None, n: int | None
) -> None:
    """--budget/--until/--max-iterations of any text end in limits or one UsageError line."""
    message = ""
    try:
        config.check_run_options(budget, until, n)
    except UsageError as exc:  # exit 2
        message = str(exc)
    assert not message or ("\n" not in message and message.startswith("--"))
