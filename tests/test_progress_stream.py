"""The live plugin's records reach the kept progress file as they happen (issue 21): the
plugin writes in batches, and no record may wait in its buffer behind a slow step.

Each suite blocks (``WAIT_FOR_RELEASE``, at most 20 s) until the test has seen the record it
waits for in the kept progress file, then writes "released" or "timed out" to a marker: a
record held back in the plugin's buffer shows as "timed out", never as a hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployloop.config import PhaseConfig, SuiteConfig
from deployloop.progress import SuiteProgress
from deployloop.runner import PLUGIN_DIR, PLUGINS, PROGRESS_ENV, SuiteJob, progress_path, run_suite
from tests.test_first_verdict import WAIT_FOR_RELEASE, suite_dir


def waiting_suite(tmp_path: Path, tests: str) -> Path:
    """``suite_dir`` with ``wait_for_release`` in its conftest, for its tests to call."""
    return suite_dir(tmp_path, "from conftest import wait_for_release\n" + tests, WAIT_FOR_RELEASE)


def run_watching(where: Path, args: str, seen: Callable[[dict[str, Any]], bool]) -> None:
    """Run the suite through the runner; release it once ``seen(record)`` holds for a record
    of the kept progress file."""
    run_line = f"{sys.executable} -m pytest -q -p no:cacheprovider {args} {where}"
    suite = SuiteConfig(name="e2e", run=run_line, cwd=str(where))
    phase = PhaseConfig.model_validate({"name": "api", "suite": [suite]})
    job = SuiteJob(
        phase, suite, where.parent / "logs" / "e2e.xml", where.parent / "logs" / "e2e.log"
    )
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.02):
            try:
                lines = progress_path(job).read_text().splitlines()
            except FileNotFoundError:
                continue
            if any(seen(json.loads(line)) for line in lines):
                (where / "release.flag").touch()
                return

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        run_suite(job, threading.Event())
    finally:
        done.set()
        thread.join()


def test_a_failure_shows_while_its_teardown_runs(tmp_path: Path) -> None:
    """A failed call is a failure in the live view at once, not after its (slow) teardown."""
    tests = """
import pytest

@pytest.fixture
def slow_cleanup():
    yield
    wait_for_release("teardown")

def test_broken(slow_cleanup):
    assert False
"""
    where = waiting_suite(tmp_path, tests)
    run_watching(where, "", lambda r: r.get("event") == "test" and r.get("outcome") == "failed")
    assert (where / "teardown.marker").read_text() == "released"


@pytest.mark.parametrize("quick", ["assert False", "pass"])
def test_xdist_a_finished_test_shows_while_another_worker_runs(tmp_path: Path, quick: str) -> None:
    """Under xdist a test that ended on one worker is done in the live view while a long test
    goes on on the other, a pass too: no other test starts to take its records along."""
    tests = f"""
def test_long():
    wait_for_release("long")

def test_quick():
    {quick}
"""
    where = waiting_suite(tmp_path, tests)
    run_watching(
        where, "-n 2", lambda r: r.get("event") == "done" and r["id"].endswith("test_quick")
    )
    assert (where / "long.marker").read_text() == "released"


def test_a_setup_error_rerun_is_no_skip_in_the_live_counts(tmp_path: Path) -> None:
    """``--reruns 1``: a setup error's first attempt is reported as ``rerun`` at setup; the
    live counts took it for a skip (1 passed, 1 failed, 1 skipped of 2 tests)."""
    where = suite_dir(
        tmp_path,
        "import pytest\n@pytest.fixture\ndef bad():\n    raise RuntimeError\n"
        "def test_ok():\n    pass\ndef test_bad(bad):\n    pass\n",
    )
    progress = tmp_path / "p.jsonl"
    env = {**os.environ, "PYTHONPATH": str(PLUGIN_DIR), PROGRESS_ENV: str(progress)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--reruns", "1"]
    subprocess.run(
        [*argv, *PLUGINS.split(), str(where)], cwd=where, env=env, capture_output=True, timeout=120
    )
    live = SuiteProgress("api", "e2e")
    for line in progress.read_bytes().splitlines():
        live.apply(line)
    assert (live.passed, live.failed, live.skipped) == (1, 1, 0)


# Appends, at each of these moments, whether each test's ``done`` record is in the progress
# file yet: run after the live plugin's own hooks, but at the session's end before them.
SEEN_AT = """
import json, os, pytest

def _seen(moment):
    with open(os.environ["DEPLOYLOOP_PROGRESS"]) as progress:
        done = [json.loads(line)["id"].rsplit("::", 1)[1] for line in progress
                if '"done"' in line]
    with open(os.path.join(os.path.dirname(__file__), "seen.jsonl"), "a") as out:
        out.write(json.dumps([moment, done]) + "\\n")

@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid):
    _seen("finish " + nodeid.rsplit("::", 1)[1])

@pytest.hookimpl(trylast=True)
def pytest_runtest_logstart(nodeid):
    _seen("start " + nodeid.rsplit("::", 1)[1])

@pytest.hookimpl(hookwrapper=True)  # a wrapper of the suite's: it ends later
def pytest_runtestloop(session):
    yield
    _seen("loop end")

@pytest.hookimpl(tryfirst=True)  # the suite's own session end: the last done is out before it
def pytest_sessionfinish():
    _seen("session end")
"""


def test_a_pass_goes_out_with_the_next_start_and_a_failure_at_once(tmp_path: Path) -> None:
    """One write a test: a passing test's ``done`` waits for the next test's ``start``, which
    pytest reports straight after it, and the last one for the end of the test loop, before
    any session-end hook; a failure's ``done`` does not wait."""
    where = suite_dir(
        tmp_path,
        "def test_a():\n    pass\ndef test_b():\n    assert False\ndef test_c():\n    pass\n",
        SEEN_AT,
    )
    progress = tmp_path / "progress.jsonl"
    env = {**os.environ, "PYTHONPATH": str(PLUGIN_DIR), PROGRESS_ENV: str(progress)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PLUGINS.split()]
    subprocess.run([*argv, str(where)], cwd=where, env={**env, "DEPLOYLOOP_JUNIT": ""},
                   capture_output=True, timeout=120)  # fmt: skip
    seen = [json.loads(line) for line in (where / "seen.jsonl").read_text().splitlines()]
    assert seen == [
        ["start test_a", []],
        ["finish test_a", []],  # held: test_b's start follows
        ["start test_b", ["test_a"]],
        ["finish test_b", ["test_a", "test_b"]],  # a failure goes out at once
        ["start test_c", ["test_a", "test_b"]],
        ["finish test_c", ["test_a", "test_b"]],
        ["loop end", ["test_a", "test_b", "test_c"]],
        ["session end", ["test_a", "test_b", "test_c"]],
    ]
