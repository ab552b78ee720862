"""failed-first's first verdict: told per suite from the live plugin's stream before pytest exits,
checked against the JUnit file, and corrected when the two disagree (issues 15 and 21)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from deployloop import retest
from deployloop.config import PhaseConfig, SuiteConfig
from deployloop.events import Event, FailedFirstSuite, Reporter
from deployloop.models import CaseResult, Outcome, RunEnd, SuiteRun
from deployloop.progress import FinalOutcomes
from deployloop.redact import Redactor
from deployloop.runner import SuiteJob, plain_id, progress_path, run_suite
from deployloop.sessionlog import describe

RELEASE = "release.flag"
# A suite's conftest: ``wait_for_release(name)`` blocks until the test saw what it waits for
# (the early verdict, a progress record: it then creates the flag), at most 20 s, and writes
# ``<name>.marker``: "released" there proves it came while pytest still ran.
WAIT_FOR_RELEASE = f"""
import os, time

def wait_for_release(name="end"):
    deadline = time.monotonic() + 20
    flag = os.path.join(os.path.dirname(__file__), "{RELEASE}")
    while not os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(os.path.join(os.path.dirname(__file__), name + ".marker"), "w") as out:
        out.write("released" if os.path.exists(flag) else "timed out")
"""
BLOCKING_END = (
    WAIT_FOR_RELEASE
    + """
def pytest_sessionfinish(session):
    wait_for_release()
"""
)
TESTS = """
def test_one():
    assert True

def test_two():
    assert True

def test_three():
    assert False, "still broken"
"""
SELECTED = ("test_it.py::test_one", "test_it.py::test_two", "test_it.py::test_three")


class Told:
    """A sink keeping failed-first's per-suite verdicts; ``on_early`` runs at the early one."""

    def __init__(self, on_early: Path | None = None) -> None:
        self.events: list[FailedFirstSuite] = []
        self.release = on_early

    def __call__(self, event: Event) -> None:
        if isinstance(event, FailedFirstSuite):
            self.events.append(event)
            if event.early and self.release is not None:
                self.release.touch()


def suite_dir(tmp_path: Path, tests: str = TESTS, conftest: str = "") -> Path:
    where = tmp_path / "suite"
    where.mkdir()
    (where / "pytest.ini").write_text("[pytest]\n")
    (where / "test_it.py").write_text(tests)
    (where / "conftest.py").write_text(conftest)
    return where


def failed_first(
    where: Path,
    told: Told,
    args: str = "",
    ids: Sequence[str] = SELECTED,
    redactor: Redactor | None = None,
) -> tuple[int, int]:
    """Run failed-first over ``ids`` of the suite in ``where`` through the real runner, as the
    loop does (``retest.failed_first`` around ``runner.run_suite``, with ``redactor``)."""
    run_line = f"{sys.executable} -m pytest -q -p no:cacheprovider {args} {where}"
    suite = SuiteConfig(name="e2e", run=run_line, cwd=str(where))
    phase = PhaseConfig.model_validate({"name": "api", "suite": [suite]})
    logs = where.parent / "logs"
    before = SuiteRun(
        phase="api",
        suite="e2e",
        cases=tuple(case(i, Outcome.FAILED) for i in ids),
        wall_s=1.0,
        exit_code=1,
    )
    stop = threading.Event()

    def run(
        _phase: PhaseConfig, _suite: SuiteConfig, select: Sequence[str], watch: retest.Watch
    ) -> SuiteRun:
        job = SuiteJob(phase, suite, logs / "e2e.xml", logs / "e2e.log", tuple(select))
        with watch(progress_path(job)):
            return run_suite(job, stop, redactor=redactor)

    return retest.failed_first([phase], [before], stop, run, Reporter(told), "v2")


def case(test_id: str, outcome: Outcome) -> CaseResult:
    module, _, name = test_id.partition("::")
    return CaseResult(test_id, name, module, outcome, 0.1)


def verdict(passed: int, total: int, early: bool, **more: object) -> dict[str, object]:
    """The fields a FailedFirstSuite of the suite above should have (``ts`` aside)."""
    fields: dict[str, object] = {
        "phase": "api", "suite": "e2e", "passed": passed, "total": total, "version": "v2",
        "early": early, "corrects": None, "harness_error": None,
    }  # fmt: skip
    return fields | more


def fields(event: FailedFirstSuite) -> dict[str, object]:
    record = event.to_json()
    return {k: v for k, v in record.items() if k not in ("ts", "event")}


# The failing test last, or first: the last test's pass must not wait for the session's end.
LAST_PASSES = """
def test_three():
    assert False, "still broken"

def test_one():
    assert True

def test_two():
    assert True
"""


@pytest.mark.parametrize("tests", [TESTS, LAST_PASSES], ids=["last-fails", "last-passes"])
@pytest.mark.parametrize("args", ["", "-n 2"], ids=["plain", "xdist"])
def test_early_verdict_arrives_while_pytest_still_runs(
    tmp_path: Path, args: str, tests: str
) -> None:
    """The verdict is told from the stream while the session's end waits on it; JUnit agrees."""
    where = suite_dir(tmp_path, tests, conftest=BLOCKING_END)
    told = Told(on_early=where / RELEASE)
    assert failed_first(where, told, args) == (2, 3)
    assert (where / "end.marker").read_text() == "released"
    assert [fields(e) for e in told.events] == [verdict(2, 3, early=True)]  # no correction


# Each xdist worker's session end (a team's cleanup) waits for the early verdict.
WORKERS_END = (
    WAIT_FOR_RELEASE
    + """
def pytest_sessionfinish(session):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        wait_for_release(os.environ["PYTEST_XDIST_WORKER"])
"""
)


def test_xdist_early_verdict_comes_before_the_workers_sessions_end(tmp_path: Path) -> None:
    """Under xdist the controller's run loop ends only after every worker's session has; the
    early verdict must not wait for that: each worker's end is released by it."""
    where = suite_dir(tmp_path, conftest=WORKERS_END)
    told = Told(on_early=where / RELEASE)
    assert failed_first(where, told, "-n 2") == (2, 3)
    markers = {p.name: p.read_text() for p in where.glob("gw*.marker")}
    assert markers == {"gw0.marker": "released", "gw1.marker": "released"}, markers
    assert [fields(e) for e in told.events] == [verdict(2, 3, early=True)]


def test_early_verdict_for_ids_holding_a_secret(tmp_path: Path) -> None:
    """Rerun tests whose ids hold a secret (tagged ``[REDACTED:xxxxxx]`` in the results): the
    kept progress lines tag them alike, so the early verdict finds them, two distinct tests."""
    first, second = ("ghp_" + "0123456789abcdefghijklmnopqrstuvwxyzAB", "ghp_" + "Zx8" * 12)
    tests = (
        f"import pytest\n@pytest.mark.parametrize('tok', [{first!r}, {second!r}])\n"
        f"def test_tok(tok):\n    assert tok == {first!r}\n"
    )
    where = suite_dir(tmp_path, tests, BLOCKING_END)
    redactor = Redactor().with_id_key(b"k" * 32)
    ids = [redactor.redact_id(f"test_it.py::test_tok[{tok}]") for tok in (first, second)]
    assert len(set(ids)) == 2
    told = Told(on_early=where / RELEASE)
    assert failed_first(where, told, ids=ids, redactor=redactor) == (1, 2)
    assert (where / "end.marker").read_text() == "released"
    assert [fields(e) for e in told.events] == [verdict(1, 2, early=True)]


# True on a test's second attempt, which takes 0.5 s: the first attempt's record is read alone.
AGAIN = """
import os, time
import pytest

def again(test_file, name):
    mark = os.path.join(os.path.dirname(test_file), name + ".once")
    if os.path.exists(mark):
        time.sleep(0.5)
        return True
    open(mark, "w").close()
    return False
"""
RERUN_BODIES = {
    "test_always": """
def test_always():
    again(__file__, "always")
    assert False, "every attempt fails"
""",
    "test_teardown": """
@pytest.fixture
def breaks_after():
    yield
    raise RuntimeError("teardown fails")

def test_teardown(breaks_after):
    assert True
""",
    "test_xfail": """
@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False
""",
    "test_flaky": """
def test_flaky():
    if not again(__file__, "flaky"):
        assert False, "first attempt fails"
""",
}


@pytest.mark.parametrize("last", ["test_flaky", "test_always"])
def test_attempts_and_teardown_errors_are_not_final_passes(tmp_path: Path, last: str) -> None:
    """A rerun attempt is no final outcome, a teardown error no pass: early says 1/4, as JUnit.

    ``last`` runs last: when its first attempt ends every other test is final, so were that
    attempt taken for final (a fail for the flaky test, anything for the other), the early
    verdict would differ from the JUnit file's and be corrected."""
    order = sorted(RERUN_BODIES, key=lambda name: name == last)
    where = suite_dir(tmp_path, AGAIN + "".join(RERUN_BODIES[n] for n in order))
    told = Told()
    ids = tuple(f"test_it.py::{name}" for name in order)
    assert failed_first(where, told, "--reruns 1", ids) == (1, 4)
    assert [fields(e) for e in told.events] == [verdict(1, 4, early=True)]


# A reporting plugin that amends the JUnit file at the session's end: the JUnit file is the
# authority, so the early verdict, read from the stream, gets corrected.
AMENDS_JUNIT = (
    WAIT_FOR_RELEASE
    + r"""
import re
import pytest

@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    wait_for_release()
    path = os.environ["DEPLOYLOOP_JUNIT"]
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    broken = '><failure message="amended">amended at the end</failure></testcase>'
    text = re.sub(r'(<testcase [^>]*name="test_one"[^>]*?) ?/>', r"\1" + broken, text, count=1)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
"""
)
# Session teardown that dies after every test reported, before the JUnit file is written.
DIES_AT_END = (
    WAIT_FOR_RELEASE
    + """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    wait_for_release()
    os._exit(3)
"""
)


def test_junit_that_disagrees_corrects_the_early_verdict(tmp_path: Path) -> None:
    """The JUnit file fails a test the stream passed: a correction 1/3 follows the early 2/3."""
    where = suite_dir(tmp_path, conftest=AMENDS_JUNIT)
    told = Told(on_early=where / RELEASE)
    assert failed_first(where, told) == (1, 3)
    assert [fields(e) for e in told.events] == [
        verdict(2, 3, early=True),
        verdict(1, 3, early=False, corrects=2),
    ]
    assert "CORRECTED by its JUnit file: 1/3" in describe(told.events[1])


def test_pass_that_breaks_after_the_early_verdict_is_corrected(tmp_path: Path) -> None:
    """pytest dies before writing its JUnit file: the early 2/3 is corrected to 0/3, said why."""
    where = suite_dir(tmp_path, conftest=DIES_AT_END)
    told = Told(on_early=where / RELEASE)
    assert failed_first(where, told) == (0, 3)
    early, corrected = told.events
    assert fields(early) == verdict(2, 3, early=True)
    assert corrected.corrects == 2 and corrected.passed == 0 and not corrected.early
    assert corrected.harness_error and "exit 3" in corrected.harness_error


def test_no_early_verdict_when_a_test_never_reports(tmp_path: Path) -> None:
    """An id the run never reports (a rerun that selects fewer): the JUnit verdict alone, late."""
    where = suite_dir(tmp_path)
    told = Told()
    missing = (*SELECTED, "test_it.py::test_gone")
    assert failed_first(where, told, ids=missing) == (2, 4)
    (only,) = told.events
    assert not only.early and only.corrects is None and only.passed == 2
    assert only.harness_error  # fewer tests ran than asked: said so


def test_final_outcomes_count_only_final_outcomes_of_wanted_tests(tmp_path: Path) -> None:
    """A rerun attempt, a test record, another test and a torn line are no final outcomes."""
    path = tmp_path / "e2e.progress.jsonl"
    finals = FinalOutcomes(path, {"t.py::a", "t.py::b"}, plain_id)
    assert not finals.poll()  # no file yet
    lines = [
        {"event": "done", "id": "t.py::a@grp", "outcome": "passed"},
        {"event": "done", "id": "t.py::b", "outcome": "rerun"},
        {"event": "test", "id": "t.py::b", "outcome": "passed"},
        {"event": "done", "id": "t.py::other", "outcome": "passed"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"torn')
    assert not finals.poll()  # b's attempt was rerun: not final yet
    with path.open("a") as handle:
        handle.write('\n{"event": "done", "id": "t.py::b", "outcome": "failed"}\n')
    assert finals.poll()
    assert finals.outcomes == {"t.py::a": "passed", "t.py::b": "failed"}
    assert finals.passed() == {"t.py::a"}


def test_a_stale_progress_file_is_never_read(tmp_path: Path) -> None:
    """A killed run's progress file saying every test passed tells no verdict for a new pass."""
    path = tmp_path / "e2e.progress.jsonl"
    path.write_text(json.dumps({"event": "done", "id": "t.py::a", "outcome": "passed"}) + "\n")
    told = Told()
    first = retest.FirstVerdict("api", "e2e", ("t.py::a",), "v2", Reporter(told))
    with first.watching(path):
        assert not path.exists()
    assert told.events == []


def test_settle_without_early_verdict_tells_the_junit_one(tmp_path: Path) -> None:
    """No stream (another runner): the JUnit verdict is told once, not as early, no correction."""
    told = Told()
    first = retest.FirstVerdict("api", "e2e", ("t.py::a", "t.py::b"), "v2", Reporter(told))
    with first.watching(tmp_path / "absent.progress.jsonl"):
        pass
    run = SuiteRun(
        phase="api",
        suite="e2e",
        cases=(case("t.py::a", Outcome.PASSED), case("t.py::b", Outcome.XPASSED)),
        wall_s=1.0,
        exit_code=0,
        ended=RunEnd.COMPLETED,
    )
    assert first.settle(run, threading.Event()) == 1
    assert [fields(e) for e in told.events] == [verdict(1, 2, early=False)]
    assert describe(told.events[0]) == "failed-first api/e2e: 1/2 now pass on v2"
