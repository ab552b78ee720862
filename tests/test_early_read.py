"""The plugin's report is read while pytest still exits, and read again when it changed after.

pytest writes its JUnit report at its session's end and then takes tens of milliseconds more to
exit; deployloop reads, keeps and scrubs the report in that time (``runner._EarlyRead``). Real
pytest subprocesses: one held in its exit until the test says so, and a run line that runs
pytest twice, the second run writing the report again after deployloop read the first.
"""

from __future__ import annotations

import shlex
import sys
import threading
import time
from pathlib import Path

from deployloop.models import Outcome, SuiteRun
from deployloop.redact import Redactor
from deployloop.runner import SuiteJob, run_suite
from tests.helpers import python_pytest, wait_for, write_tests
from tests.test_runner import make_job

TWO_TESTS = "def test_{0}_a():\n    pass\n\ndef test_{0}_b():\n    pass\n"
# pytest held in its exit (after its report is written) until the file RELEASE exists.
HELD_AT_EXIT = """
import os
import time

def pytest_unconfigure(config):
    release = os.path.join(os.path.dirname(__file__), "RELEASE")
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.01)
"""


def _in_thread(
    job: SuiteJob, redactor: Redactor | None = None
) -> tuple[threading.Thread, list[SuiteRun]]:
    """``run_suite(job)`` started in a thread; the list gets its run once it ends."""
    runs: list[SuiteRun] = []

    def run() -> None:
        runs.append(run_suite(job, threading.Event(), redactor=redactor))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, runs


def test_the_report_is_read_while_pytest_still_exits(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    write_tests(suite, "pytest.ini", "[pytest]\n")  # the suite is pytest's rootdir: short ids
    write_tests(suite, "test_it.py", TWO_TESTS.format("it"))
    write_tests(suite, "conftest.py", HELD_AT_EXIT)
    job = make_job(tmp_path, python_pytest(str(suite)))
    thread, runs = _in_thread(job)
    try:
        wait_for(job.junit_path.exists)  # the scrubbed copy beside the log: read, kept
        assert thread.is_alive()  # and pytest has not exited yet
    finally:
        (suite / "RELEASE").touch()
        thread.join(timeout=60)
    assert not thread.is_alive()
    (run,) = runs
    assert run.harness_error is None
    assert sorted(c.id for c in run.cases if c.outcome is Outcome.PASSED) == [
        "test_it.py::test_it_a",
        "test_it.py::test_it_b",
    ]


def test_a_report_written_again_after_the_early_read_is_read_again(tmp_path: Path) -> None:
    """The second pytest of one run line rewrites the report deployloop already read: the
    results are the second run's, as they were before reports were read early."""
    suite = tmp_path / "suite"
    write_tests(suite, "pytest.ini", "[pytest]\n")
    write_tests(suite, "test_one.py", TWO_TESTS.format("one"))
    write_tests(suite, "test_two.py", TWO_TESTS.format("two"))
    kept = tmp_path / "out" / "s.xml"  # make_job's report path
    # The shell starts the second run only once deployloop has kept the first run's report.
    wait_kept = f"i=0; while [ ! -f {shlex.quote(str(kept))} ] && [ $i -lt 3000 ]; do"
    wait_kept += " sleep 0.01; i=$((i+1)); done"
    first, second = (python_pytest(str(suite / name)) for name in ("test_one.py", "test_two.py"))
    job = make_job(tmp_path, f"{first}; {wait_kept}; {second}")
    assert job.junit_path == kept
    run = run_suite(job, threading.Event())
    assert run.harness_error is None
    assert sorted(c.id for c in run.cases) == ["test_two.py::test_two_a", "test_two.py::test_two_b"]
    assert "test_one" not in kept.read_text(encoding="utf-8")


SECRET = "tok-9f8e7d6c5b4a3928"
# A report written in two parts, the first ending inside a secret; the second only once the
# file RELEASE exists. Run as the suite (no pytest: the file is written where the plugin's is).
TWO_PART_REPORT = f"""
import os, sys, time
report = (
    '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="s" tests="1">'
    '<testcase classname="t" name="test_a[{SECRET}]" time="0.1"/></testsuite></testsuites>'
)
cut = report.index("{SECRET}") + len("{SECRET}") - 3
with open(os.environ["DEPLOYLOOP_JUNIT"], "w") as handle:
    handle.write(report[:cut])
    handle.flush()
    open(sys.argv[1] + "/PART1", "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(sys.argv[1] + "/RELEASE") and time.monotonic() < deadline:
        time.sleep(0.01)
    handle.write(report[cut:])
"""


def test_a_half_written_report_is_never_kept(tmp_path: Path) -> None:
    """A report read early but cut inside a secret is not copied beside the log, where its
    scrubbed copy could not mask the secret; the whole report, read after the exit, is."""
    (tmp_path / "report.py").write_text(TWO_PART_REPORT, encoding="utf-8")
    run_line = f"{shlex.quote(sys.executable)} report.py {shlex.quote(str(tmp_path))}"
    job = make_job(tmp_path, run_line, cwd=str(tmp_path))
    thread, runs = _in_thread(job, Redactor([SECRET]))
    try:
        wait_for((tmp_path / "PART1").exists)
        # The run is polled every process.POLL_S: half a second is some 25 early reads.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            assert not job.junit_path.exists()
            time.sleep(0.02)
    finally:
        (tmp_path / "RELEASE").touch()
        thread.join(timeout=60)
    (run,) = runs
    kept = job.junit_path.read_text(encoding="utf-8")
    assert SECRET[:8] not in kept and "[REDACTED" in kept
    assert [c.outcome for c in run.cases] == [Outcome.PASSED]
