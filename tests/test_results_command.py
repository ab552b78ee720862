"""``deployloop results``: the real CLI in a subprocess, as a user or a script would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "junit"
OWN = Path(__file__).parent / "data" / "junit" / "own"
ENTRY = Path(sys.executable).parent / "deployloop"

PASSING = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest">
  <testcase classname="tests.test_api" name="test_ok" time="0.5"/>
  <testcase classname="tests.test_api" name="test_slow" time="2.5"/>
  <testcase classname="tests.test_api" name="test_skip" time="0">
    <skipped message="later"/>
  </testcase>
</testsuite></testsuites>
"""

FAILING = """<?xml version="1.0"?>
<testsuite name="pytest">
  <testcase classname="tests.test_ws.TestAgent" name="test_a" time="1.0">
    <failure message="ConnectionClosedError: server closed with 1011 (internal error)
 at 10.0.0.5:8443">E   ConnectionClosedError: boom</failure>
  </testcase>
  <testcase classname="tests.test_ws.TestAgent" name="test_b" time="1.0">
    <failure message="ConnectionClosedError: server closed with 1011 (internal error)
 at 10.0.0.9:8443">E   ConnectionClosedError: boom</failure>
  </testcase>
  <testcase classname="tests.test_ws.TestAgent" name="test_c" time="1,000.0">
    <error message="failed on setup with &quot;KeyError: 'token'&quot;"
      >E   KeyError: 'token'</error>
  </testcase>
</testsuite>
"""


def deployloop(*args: str, entry: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    command = entry or [sys.executable, "-m", "deployloop"]
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    (folder / "nested").mkdir(parents=True)
    (folder / "passing.xml").write_text(PASSING, encoding="utf-8")
    (folder / "nested" / "failing.xml").write_text(FAILING, encoding="utf-8")
    (folder / "notes.txt").write_text("not junit", encoding="utf-8")
    return folder


def test_json_over_a_directory(reports: Path) -> None:
    """--json prints one object with the contract's keys, counting across nested files."""
    done = deployloop("results", str(reports), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {k: data[k] for k in ("files", "tests", "passed", "failed", "errors", "skipped")} == {
        "files": 2,
        "tests": 6,
        "passed": 2,
        "failed": 2,
        "errors": 1,
        "skipped": 1,
    }
    assert data["pass_rate"] == 0.4
    assert data["duration_s"] == 1005.0
    assert data["p95_s"] == 1000.0
    assert [c["count"] for c in data["clusters"]] == [2, 1]
    assert data["clusters"][0]["tests"] == [
        "tests/test_ws.py::TestAgent::test_a",
        "tests/test_ws.py::TestAgent::test_b",
    ]


def test_table_for_people(reports: Path) -> None:
    """Without --json it prints counts, pass rate, p95 and clusters with an example message."""
    done = deployloop("results", str(reports / "passing.xml"), str(reports / "nested"))
    assert done.returncode == 0, done.stderr
    for expected in ("pass rate", "40.0%", "1000.00 s", "server closed with 1011", "v2-"):
        assert expected in done.stdout
    assert "\x1b[" not in done.stdout


def test_all_fixtures_read() -> None:
    """Every report together: our own 8 (33 testcases), and the shared corpus when present
    (5224 testcases); exit 0."""
    totals = [(OWN, (8, 33, 9, 2))]
    if FIXTURES.is_dir():
        totals.append((FIXTURES, (24, 5224, 28, 4)))
    for directory, expected in totals:
        done = deployloop("results", str(directory), "--json")
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert (data["files"], data["tests"], data["failed"], data["errors"]) == expected


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("<testsuites><testsuite><testcase name='a'/>", "truncated XML (no closing tag at line 1)"),
        ("", "empty file (0 bytes)"),
        ("<html><body>502</body></html>", "not a JUnit file (root element <html>)"),
    ],
)
def test_corrupt_input_is_one_line_exit_2(tmp_path: Path, content: str, problem: str) -> None:
    """The installed entry point reports a bad file in one line, exit 2, no traceback."""
    bad = tmp_path / "BAD.xml"
    bad.write_text(content, encoding="utf-8")
    done = deployloop("results", str(bad), entry=[str(ENTRY)])
    assert done.returncode == 2
    assert done.stderr == f"deployloop: {bad}: {problem}\n"
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_one_bad_file_among_good_ones_fails_the_lot(reports: Path) -> None:
    """A corrupt file in a directory makes the whole read fail: partial counts would mislead."""
    (reports / "zz-cut.xml").write_text("<testsuite><testcase>", encoding="utf-8")
    done = deployloop("results", str(reports), "--json")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "zz-cut.xml: truncated XML" in done.stderr


def test_missing_path_is_one_line_exit_2(tmp_path: Path) -> None:
    """A path that does not exist is exit 2 with one line naming it."""
    done = deployloop("results", str(tmp_path / "nowhere"), "--json")
    assert done.returncode == 2
    assert done.stderr == f"deployloop: {tmp_path / 'nowhere'}: no such file or directory\n"


LEAKING = """<?xml version="1.0"?>
<testsuite name="pytest">
  <testcase classname="tests.test_auth" name="test_login" time="1.0">
    <failure message="AssertionError: login with password=Hunter2-Sekret failed">
E   token ghp_abcdefghijklmnopqrstuvwxyz0123456789 refused</failure>
  </testcase>
</testsuite>
"""


def test_results_output_is_scrubbed_of_secret_shapes(tmp_path: Path) -> None:
    """`results --json --explain` and the table show no ghp_ token or password value."""
    report = tmp_path / "leaking.xml"
    report.write_text(LEAKING, encoding="utf-8")
    for args in (["--json", "--explain"], ["--explain"]):
        done = deployloop("results", str(report), *args)
        assert done.returncode == 0, done.stderr
        assert "[REDACTED]" in done.stdout
        assert "ghp_abcdefghijklmnop" not in done.stdout and "Hunter2-Sekret" not in done.stdout


def test_an_iteration_folder_counts_each_suites_tests_once(tmp_path: Path) -> None:
    """An iteration's folder holds a suite's own result (a sharded suite's merged file) beside
    its extra passes (shards, failed-first, rerun): read together, every test of theirs counted
    twice. They are left out, and said to be; a pass without its suite's file (an interrupted
    iteration) is read, and so is a file named on its own."""
    folder = tmp_path / "3"
    (folder / "api+shard-2.junit").mkdir(parents=True)  # a runner's several kept files
    (folder / "api.xml").write_text(FAILING, encoding="utf-8")
    (folder / "api+shard-1.xml").write_text(FAILING, encoding="utf-8")
    (folder / "api+shard-2.junit" / "part.xml").write_text(FAILING, encoding="utf-8")
    (folder / "api+failed-first.xml").write_text(FAILING, encoding="utf-8")
    (folder / "ui+rerun.xml").write_text(PASSING, encoding="utf-8")  # no ui.xml: read
    (folder / "api+ui.xml").write_text(PASSING, encoding="utf-8")  # the user's own: read
    (folder / "api++.xml").write_text(PASSING, encoding="utf-8")
    done = deployloop("results", str(folder), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["files"], data["tests"]) == (4, 12)  # api's 3 tests once, ui's, the user's
    assert "left out 3 file(s) of deployloop's extra passes" in done.stderr
    alone = deployloop("results", str(folder / "api+shard-1.xml"), "--json")
    assert json.loads(alone.stdout)["tests"] == 3
    (folder / "api.xml").unlink()  # a shard's report could not be merged: the shards are read
    done = deployloop("results", str(folder), "--json")
    data = json.loads(done.stdout)
    assert (data["files"], data["tests"]) == (5, 15)  # api's 2 shards, ui's, the user's two
    assert "left out 1 file(s)" in done.stderr  # api+failed-first.xml
