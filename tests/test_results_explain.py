"""`deployloop results` keys clusters by v2 through the real CLI: the handed cases' counts,
``--explain`` (normalized line, rules, merges) and ``[clusters] merge`` rules from a config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deployloop import config
from deployloop.errors import ConfigError
from tests.corpus import CORPUS

HANDED = CORPUS / "handed"
TWO_CAUSES = """<?xml version="1.0"?>
<testsuite name="pytest">
  <testcase classname="tests.test_search" name="test_a" time="1.0">
    <failure message="search index not ready" type="RuntimeError"/></testcase>
  <testcase classname="tests.test_search" name="test_b" time="1.0">
    <failure message="indexer queue is stuck" type="RuntimeError"/></testcase>
  <testcase classname="tests.test_search" name="test_c" time="1.0"/>
</testsuite>
"""
CONFIG = """\
[target]
base_url = "http://127.0.0.1:9"

[[phase]]
name = "p"
  [[phase.suite]]
  name = "s"
  run = "true"

[clusters]
merge = [[{prints}]]
"""


def results(*args: str | Path) -> dict[str, Any]:
    """``deployloop results --json ARGS`` in a subprocess; its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "deployloop", "results", "--json", *map(str, args)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize(
    ("file", "sizes"),
    [
        ("03-xdist-worker-crash.xml", [3]),
        ("05-jest-suite-failed-to-run.xml", [1, 1]),
        ("20-playwright-1.58.2.xml", [3]),
        ("21-jest-junit-first-line.xml", [2, 2]),
        ("22-mocha-ci-path.xml", [3]),
        ("22-mocha-tmp-path.xml", [3]),
    ],
)
def test_handed_cases_through_the_cli(file: str, sizes: list[int]) -> None:
    """shared/cases 03, 05, 20, 21, 22 via `results --json`: the right clusters, v2 keyed."""
    clusters = results(HANDED / file)["clusters"]
    assert sorted(c["count"] for c in clusters) == sizes
    assert all(c["fingerprint"].startswith("v2-") for c in clusters)


def test_explain_names_the_line_and_the_rules() -> None:
    """--explain: per failure its cluster, the normalized line and the rules that chose it."""
    found = results("--explain", HANDED / "20-playwright-1.58.2.xml")
    rows = found["explain"]
    assert len(rows) == 3 and {r["cluster"] for r in rows} == {found["clusters"][0]["fingerprint"]}
    assert all(r["rules"] == ["names-test", "matcher"] for r in rows)
    assert all("Received: 500" in r["line"] for r in rows)


def test_merge_rule_from_the_config_joins_two_causes(tmp_path: Path) -> None:
    """A `[clusters] merge` rule naming both prints makes one cluster; --explain says why."""
    junit = tmp_path / "search.xml"
    junit.write_text(TWO_CAUSES, encoding="utf-8")
    before = results("--explain", junit)
    prints = sorted(r["fingerprint"] for r in before["explain"])
    assert len(before["clusters"]) == 2 and all(r["joined"] is None for r in before["explain"])
    cfg = tmp_path / "deployloop.toml"
    cfg.write_text(CONFIG.format(prints=", ".join(f'"{p}"' for p in prints)), encoding="utf-8")
    after = results("--explain", "-c", cfg, junit)
    assert [c["count"] for c in after["clusters"]] == [2]
    assert sorted(r["joined"] for r in after["explain"] if r["joined"]) == ["merge rule"]


def test_explain_table_off_a_terminal() -> None:
    """Without --json, --explain prints a table with the rule and the normalized line."""
    done = subprocess.run(
        [sys.executable, "-m", "deployloop", "results", "--explain",
         str(HANDED / "21-jest-junit-first-line.xml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "How each failure was read" in done.stdout and "matcher" in done.stdout


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('"v2-0123456789ab", "v1-0123456789ab"', "not a v2 fingerprint: 'v1-0123456789ab'"),
        ('"v2-0123456789ab"', "at least 2 items"),
        ('"v2-XYZ"', "not a v2 fingerprint"),
    ],
)
def test_bad_merge_rule_is_one_located_problem(tmp_path: Path, value: str, says: str) -> None:
    """A malformed print or a one-print rule is refused as FILE:LINE: message."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG.format(prints=value), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config.load(cfg)
    [problem] = info.value.problems
    assert problem.startswith(f"{cfg}:11: ") and says in problem, problem
