"""behave hook errors found in the suite's log and put on the tests they blocked (item 5)."""

from __future__ import annotations

from pathlib import Path

from deployloop import junit
from deployloop.hookerrors import attach_hook_errors
from deployloop.junit_cases import UNTESTED_MESSAGE
from deployloop.models import CaseResult, Outcome
from deployloop.summary import summarize

CASE = Path(__file__).parent / "data" / "junit" / "cases" / "23-behave-variant-a"
HOOK = "HOOK-ERROR in before_feature: ConnectionError: login to staging failed: HTTP 500"


def read_case() -> list[CaseResult]:
    return [c for f in sorted(CASE.glob("*.xml")) for c in junit.read_cases(f)]


def test_case23_hook_error_is_the_blocked_tests_message() -> None:
    """Case 23 (variant A): both login-blocked scenarios carry the hook's error and cluster
    under it; the passing feature is untouched."""
    cases = attach_hook_errors(read_case(), CASE / "behave.log")
    blocked = [c for c in cases if c.outcome is Outcome.ERROR]
    assert [c.message for c in blocked] == [HOOK, HOOK]
    assert blocked[0].error_type == "ConnectionError"
    assert UNTESTED_MESSAGE in blocked[0].details
    (cluster,) = summarize(cases).clusters
    assert (cluster.count, cluster.message) == (2, HOOK)


def test_hook_error_of_another_feature_goes_to_its_own_tests(tmp_path: Path) -> None:
    """With two features' hooks failing, each blocked test gets its own feature's error; a log
    without HOOK-ERROR leaves the tests as the reader gave them."""
    log = tmp_path / "behave.log"
    log.write_text(
        "Feature: Profile\nHOOK-ERROR in before_feature: KeyError: 'token'\n"
        "Feature: Order history\nHOOK-ERROR in before_feature: TimeoutError: orders\n"
    )
    untested = [
        CaseResult("p", "a", "profile.Profile", Outcome.ERROR, 0.0, UNTESTED_MESSAGE),
        CaseResult("o", "b", "orders.Order_history", Outcome.ERROR, 0.0, UNTESTED_MESSAGE),
    ]
    got = [c.message for c in attach_hook_errors(untested, log)]
    assert got == [
        "HOOK-ERROR in before_feature: KeyError: 'token'",
        "HOOK-ERROR in before_feature: TimeoutError: orders",
    ]
    log.write_text("Feature: Profile\n")
    assert attach_hook_errors(untested, log) == untested
