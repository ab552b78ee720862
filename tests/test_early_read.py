"""The plugin's report is read while pytest still exits, and read again when it changed after.

pytest writes its JUnit report at its session's end and then takes tens of milliseconds more to
exit; deployloop reads, keeps and scrubs the report in that time (``runner._EarlyRead``). Real
pytest subprocesses: one held in its exit until the test says so, and a run line that runs
pytest twice, the second run writing the report again after deployloop read the first.
"""

from __future__ import annotations

import shlex
import threading
from pathlib import Path

from deployloop.models import Outcome, SuiteRun
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


def _in_thread(job: SuiteJob) -> tuple[threading.Thread, list[SuiteRun]]:
    runs: list[SuiteRun] = []
    thread = threading.Thread(target=lambda: runs.append(run_suite(job, threading.Event())))
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
