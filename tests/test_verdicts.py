"""Verdicts that hold on real suites (issue 15): logical tests, categories, times, repairs.

Real pytest runs (pytest-rerunfailures, pytest-xdist, subtests, xfail) are generated here; the
other runners' shapes come from the handed cases, copied to tests/data/junit/cases/.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deployloop import gates, junit, junit_cases
from deployloop.config import PhaseConfig
from deployloop.errors import JUnitError
from deployloop.junit_fields import parse_time
from deployloop.logical import fold, tally
from deployloop.models import CaseResult, Outcome, SuiteRun
from deployloop.summary import summarize

CASES = Path(__file__).parent / "data" / "junit" / "cases"

SUITE = """
import os
import pytest

def test_payment_backend_answers():
    assert 503 == 200, "payment backend returned 503"

def test_flaky_once(tmp_path_factory):
    marker = os.path.join(os.environ["FLAG_DIR"], "tried")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise AssertionError("first attempt fails")

@pytest.mark.parametrize("n", range(3))
def test_catalog(n):
    pass

@pytest.mark.xfail(reason="known bug", strict=True)
def test_known_bug():
    assert False

def test_not_today():
    pytest.skip("not today")
"""

TEARDOWN_AND_SUBTESTS = """
import pytest

@pytest.fixture
def temp_order():
    yield {"id": "ord-1"}
    raise RuntimeError("cleanup: could not delete temp order")

def test_create_order(temp_order):
    assert temp_order["id"] == "ord-2", "order id mismatch"

def test_list_orders():
    pass

def test_get_order():
    pass

def test_cancel_order():
    pass

def test_regions(subtests):
    for region in ("eu", "us", "ap"):
        with subtests.test(region=region):
            assert region == "eu", f"region {region} answered 500"
"""

SUMMARY_WORD = re.compile(r"(\d+) (failed|passed|skipped|xfailed|xpassed|errors?)\b")


def run_pytest(tmp_path: Path, source: str, *args: str) -> tuple[list[CaseResult], dict[str, int]]:
    """Run ``source`` with real pytest; its tests as read, and pytest's own summary counts."""
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(source), encoding="utf-8")
    report = tmp_path / "report.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=",
         f"--junitxml={report}", *args, "test_suite.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "FLAG_DIR": str(tmp_path)},
    )  # fmt: skip
    last = done.stdout.strip().splitlines()[-1]
    own = {word.rstrip("s") if word.startswith("error") else word: int(n)
           for n, word in SUMMARY_WORD.findall(last)}  # fmt: skip
    return junit.read_cases(report), own


def categories(cases: list[CaseResult]) -> dict[str, int]:
    """Non-zero counts per category, keyed as pytest's summary line keys them."""
    t = tally(cases)
    found = {"passed": t.passed, "failed": t.failed, "error": t.errors, "skipped": t.skipped}
    found |= {"xfailed": t.xfailed, "xpassed": t.xpassed}
    return {k: v for k, v in found.items() if v}


def phase(**gate: float) -> PhaseConfig:
    return PhaseConfig.model_validate(
        {"name": "api", "gates": gate, "suite": [{"name": "e2e", "run": "pytest"}]}
    )


def judged(cases: list[CaseResult], **gate: float) -> dict[str, tuple[bool, str]]:
    run = SuiteRun("api", "e2e", tuple(cases), wall_s=1.0, exit_code=1)
    result = gates.judge(phase(**gate), [run], [])
    return {v.gate: (v.passed, v.measured) for v in result.verdicts}


# --- real pytest runs ------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_reruns_fold_attempts_into_pytests_own_counts(tmp_path: Path, extra: tuple[str]) -> None:
    """With --reruns (and -n 2), attempt records fold: pytest's own counts, the always-failing
    test failed (not flaky), the one that passed on its second attempt flaky."""
    cases, own = run_pytest(tmp_path, SUITE, "--reruns", "2", *extra)
    assert categories(cases) == {k: v for k, v in own.items() if k != "rerun"}
    assert own == {"failed": 1, "passed": 4, "skipped": 1, "xfailed": 1}
    named = {c.name: c for c in cases}
    payment = named["test_payment_backend_answers"]
    assert (payment.outcome, payment.flaky, payment.records) == (Outcome.FAILED, False, 3)
    assert "payment backend returned 503" in payment.message
    assert (named["test_flaky_once"].outcome, named["test_flaky_once"].flaky) == (
        Outcome.PASSED,
        True,
    )
    assert summarize(cases).to_json()["tests"] == 10  # the SPEC's count: records
    assert judged(cases)["pass_rate"] == (False, "80.0% (4/5)")


def test_stopped_early_counts_what_ran(tmp_path: Path) -> None:
    """With -x, what ran is counted as pytest counts it (the rest is the runner's to report)."""
    cases, own = run_pytest(tmp_path, SUITE, "-x")
    assert categories(cases) == own == {"failed": 1}


def test_coloured_assertion_reads_without_its_escapes(tmp_path: Path) -> None:
    """A message coloured with ANSI escapes, as real pytest writes it to JUnit (``#x1B[31m``),
    reads "red failure": no ``[31m`` left in the message a title is made of (item 5)."""
    source = 'def test_red():\n    assert False, "\\x1b[31mred failure\\x1b[0m"\n'
    cases, _ = run_pytest(tmp_path, source)
    assert cases[0].message.startswith("AssertionError: red failure")
    assert "E       AssertionError: red failure\n" in cases[0].details


def test_teardown_record_and_subtests_count_once(tmp_path: Path) -> None:
    """Case 02: fail + teardown error is one failed test with both texts; subtests one test
    with every failure text; so expect_tests sees 5 tests, not 6 records."""
    cases, _ = run_pytest(tmp_path, TEARDOWN_AND_SUBTESTS)
    assert categories(cases) == {"passed": 3, "failed": 2}
    assert sum(c.records for c in cases) == 6
    named = {c.name: c for c in cases}
    order = named["test_create_order"]
    assert "order id mismatch" in order.details
    assert "could not delete temp order" in order.details
    regions = named["test_regions"]
    assert "region us answered 500" in regions.details
    assert "region ap answered 500" in regions.details
    run = SuiteRun("api", "e2e", tuple(cases[:4]), 1.0, 1, expected_tests=5)
    verdicts = {v.gate: v for v in gates.judge(phase(), [run], []).verdicts}
    assert verdicts["e2e: tests"].reason == "collection shrank from 5 to 4"


# --- folding rules -----------------------------------------------------------------------------


def record(test_id: str, outcome: Outcome, message: str = "") -> CaseResult:
    return CaseResult(test_id, test_id, "", outcome, 0.5, message, details=message)


def test_fold_keeps_distinct_non_pytest_tests_that_share_a_name() -> None:
    """Passing records of one non-pytest id are distinct tests (jest names them alike);
    a pytest id's passing records are attempts; a broken record always folds."""
    jest = [record("renders", Outcome.PASSED), record("renders", Outcome.PASSED)]
    assert [c.records for c in fold(jest)] == [1, 1]
    attempts = [record("t.py::a", Outcome.PASSED), record("t.py::a", Outcome.PASSED)]
    (folded,) = fold(attempts)
    assert (folded.outcome, folded.flaky, folded.records) == (Outcome.PASSED, True, 2)
    retried = [record("T::x", Outcome.SKIPPED), record("T::x", Outcome.FAILED, "boom")]
    assert [(c.outcome, c.records) for c in fold(retried)] == [(Outcome.FAILED, 2)]
    assert fold(fold(retried)) == fold(retried)


def test_flaky_policy_fail_holds_flaky_passes_against_the_rate() -> None:
    """flaky = "fail": a test that passed only on a later attempt counts as not passed."""
    cases = fold([record("t.py::a", Outcome.FAILED, "x"), record("t.py::a", Outcome.PASSED)])
    counts = tally([*cases, record("t.py::b", Outcome.PASSED)])
    assert (counts.rate(), counts.rate(flaky_passes=False)) == (1.0, 0.5)


# --- the handed cases --------------------------------------------------------------------------


def test_case05_jest_suite_failed_to_run_counts_as_errors() -> None:
    """Case 05: both files that could not load are errors; pass rate 3/5."""
    summary = summarize(junit.read_cases(CASES / "05-jest-suite-failed-to-run.xml"))
    assert (summary.errors, summary.passed, summary.pass_rate) == (2, 3, 0.6)


def test_case06_suite_error_without_testcase_is_a_failure() -> None:
    """Case 06: <testsuite errors="1" tests="0"> is an error record, counted and clustered."""
    cases = junit.read_cases(CASES / "06-vitest-suite-error.xml")
    summary = summarize(cases)
    assert (summary.passed, summary.errors) == (3, 1)
    assert summary.pass_rate == 0.75
    (cluster,) = summary.clusters
    assert cluster.tests == ("src/payments.e2e.ts",)
    assert "1 failure(s) with no test record" in cluster.message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("08-a-raw-esc.xml", (1, 1)),
        ("08-b-charref-esc.xml", (1, 1)),
        ("08-c-latin1-byte.xml", (1, 1)),
        ("08-d-all-pass-charref-in-output.xml", (2, 0)),
    ],
)
def test_case08_bad_characters_are_repaired_and_noted(name: str, expected: tuple[int, int]) -> None:
    """Case 08: a file with escapes or a stray Latin-1 byte keeps every record; the repair
    is reported to the caller."""
    repairs: list[str] = []
    summary = summarize(junit.read_cases(CASES / name, repairs))
    assert (summary.passed, summary.failed) == expected
    assert len(repairs) == 1
    assert repairs[0].startswith(str(CASES / name))
    if "latin1" in name:
        assert repairs[0].endswith("1 byte(s) not valid UTF-8 read as Latin-1")


def test_latin1_byte_inside_a_text_is_read_as_latin1(tmp_path: Path) -> None:
    """A stray Latin-1 byte in a failure text keeps its letter: "caf\xe9" reads "café"."""
    path = tmp_path / "r.xml"
    path.write_bytes(b'<testsuite><testcase name="a"><failure>caf\xe9 closed</failure></testcase>'
                     b"</testsuite>")  # fmt: skip
    assert junit.read_cases(path)[0].details == "café closed"


def test_case23_behave_untested_scenarios_are_errors() -> None:
    """Case 23: scenarios a failed hook kept from running are errors, clustered apart."""
    files = sorted((CASES / "23-behave-variant-b").glob("*.xml"))
    summary = summarize(c for f in files for c in junit.read_cases(f))
    assert (summary.passed, summary.failed, summary.errors, summary.skipped) == (2, 1, 2, 0)
    messages = {c.message for c in summary.clusters}
    assert junit_cases.UNTESTED_MESSAGE in messages
    assert "expected 200, got 500" in messages


def test_p95_with_untimed_tests_still_gives_the_timed_p95() -> None:
    """Three tests timed at 5 s and one untimed: the p95 gate fails naming the 5.0 s the
    timed ones measure against 2 s, and the one untimed test in the singular."""
    timed = [CaseResult(f"t{n}", f"t{n}", "", Outcome.PASSED, 5.0) for n in range(3)]
    untimed = CaseResult("u", "u", "", Outcome.PASSED, None)
    assert judged([*timed, untimed], p95_s=2.0)["p95_s"] == (
        False,
        "p95 5.0 s over 3 timed tests > 2 s; no timing data for 1 test",
    )
    one = judged([timed[0], untimed, untimed], p95_s=9.0)["p95_s"]
    assert one == (False, "p95 5.0 s over 1 timed test ≤ 9 s; no timing data for 2 tests")


def test_case25_times_with_units_fail_the_p95_gate() -> None:
    """Case 25: kotest's "3.412s" times give p95 5.77 s (the gate fails); k6's missing times
    fail it with "no timing data", never a p95 of 0."""
    kotest = junit.read_cases(CASES / "25-kotest.xml")
    assert summarize(kotest).p95_s == pytest.approx(5.77)
    assert judged(kotest, p95_s=2.0)["p95_s"] == (False, "5.77 s")
    k6 = junit.read_cases(CASES / "25-k6.xml")
    assert summarize(k6).to_json()["p95_s"] is None
    assert judged(k6, p95_s=2.0)["p95_s"] == (False, "no timing data for 3 tests")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3.412s", 3.412),
        ("450ms", 0.45),
        ("80.803us", 80.803e-6),
        ("1m 2.5s", 62.5),
        ("0,160", 0.16),
        ("1,234.5", 1234.5),
        ("1.234,5", 1234.5),
        ("2.401,100", 2401.1),
        ("1.0E-4", 1e-4),
        ("soon", None),
        ("", None),
        ("nan", None),
    ],
)
def test_locale_and_unit_times(text: str, seconds: float | None) -> None:
    """Units, decimal commas and grouped thousands in both conventions; the rest unknown."""
    assert parse_time(text) == (seconds if seconds is None else pytest.approx(seconds))


def test_truncated_file_is_still_refused(tmp_path: Path) -> None:
    """Repairs never hide a truncated file: it is refused, naming the file."""
    path = tmp_path / "cut.xml"
    path.write_bytes(b'<testsuite><testcase name="a">\x1b[31m<failure>&#x1B;boom')
    with pytest.raises(JUnitError, match="truncated"):
        junit.read_cases(path)
