"""Triage: new / persisting / fixed / flaky classification and the issue actions it decides."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from deployloop.config import IssuesConfig, RetestConfig
from deployloop.issues.records import (
    BROKEN_ERROR,
    ClusterRecord,
    IssueAction,
    PhaseInfo,
    TriageContext,
)
from deployloop.issues.text import TITLE_LIMIT
from deployloop.issues.tracker import marker
from deployloop.issues.triage import assess, with_issue_numbers
from deployloop.models import CaseResult, Outcome, SuiteRun
from deployloop.testing import CAUSES, case, cause_map, failing_run

NOW = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


def ctx(
    iteration: int = 1,
    version: str | None = "rev-001",
    now: datetime = NOW,
    flaky_ids: frozenset[str] = frozenset(),
    complete: frozenset[str] = frozenset({"websocket"}),
    **issues: Any,
) -> TriageContext:
    phase = PhaseInfo("websocket", "P1", ("❌ pass_rate: 60.0% (60/100) (threshold ≥ 100%)",))
    return TriageContext(
        iteration=iteration,
        version=version,
        previous_version=None,
        issues=IssuesConfig(labels=["deployloop", "e2e-failure"], **issues),
        now=now,
        phases={"websocket": phase},
        complete_phases=complete,
        flaky={"websocket": flaky_ids},
        repro={"agents": "pytest tests/e2e/test_agents.py"},
        log_excerpts={"agents": "2025-03-01 02:00:01 ERROR ws closed 1011"},
    )


def kinds(actions: Sequence[IssueAction]) -> list[str]:
    return [a.kind for a in actions]


def filed(
    records: Mapping[str, ClusterRecord], actions: Sequence[IssueAction]
) -> dict[str, ClusterRecord]:
    """Records as the loop keeps them after the tracker filed the creates as #1, #2, …"""
    numbers = {a.fingerprint: n for n, a in enumerate(actions, start=1) if a.kind == "create"}
    return with_issue_numbers(records, numbers)


def first_iteration(*counts: int) -> tuple[dict[str, ClusterRecord], list[IssueAction]]:
    return assess({}, [failing_run(cause_map(*counts), passing=60)], ctx())


def test_new_failures_become_one_create_per_root_cause() -> None:
    """40 failing tests in 3 causes make exactly 3 creates, biggest cause first."""
    records, actions = first_iteration(20, 12, 8)
    assert kinds(actions) == ["create", "create", "create"]
    assert [len(records[a.fingerprint].tests) for a in actions] == [20, 12, 8]
    assert actions[0].title == f"[deployloop] websocket: {CAUSES[0]} — 20 tests"
    assert actions[0].labels == ("deployloop", "e2e-failure", "P1")
    assert all(r.status == "open" and r.issue_number is None for r in records.values())


def test_issue_body_carries_what_a_developer_needs() -> None:
    """The body has version, phase, verdicts, tests, error, traceback, log, repro and marker."""
    _, actions = first_iteration(3)
    body = actions[0].body
    for expected in (
        "`rev-001`",
        "`websocket` (priority P1)",
        "❌ pass_rate",
        "tests/e2e/test_agents.py::test_cause0_2",
        f"AssertionError: {CAUSES[0]}",
        "Traceback (most recent call last)",
        "ERROR ws closed 1011",
        "pytest tests/e2e/test_agents.py",
    ):
        assert expected in body
    assert body.rstrip().endswith(marker(actions[0].fingerprint))


def test_long_test_lists_are_capped() -> None:
    """A cluster of 70 tests lists 50 and says how many more."""
    _, actions = first_iteration(70)
    body = actions[0].body
    assert "test_cause0_49`" in body
    assert "test_cause0_50`" not in body
    assert "… and 20 more" in body


def test_title_never_exceeds_github_limit() -> None:
    """A huge error message still gives a title of at most 256 characters with the count."""
    message = "boom " * 200
    _, actions = assess({}, [failing_run({message: 2}, passing=10)], ctx())
    assert len(actions[0].title) <= TITLE_LIMIT
    assert actions[0].title.endswith("— 2 tests")


def test_same_failures_on_same_version_say_nothing() -> None:
    """A second iteration with the same failures on the same version: no action at all."""
    records, actions = first_iteration(20, 12, 8)
    records = filed(records, actions)
    again, actions2 = assess(records, [failing_run(cause_map(20, 12, 8), passing=60)], ctx(2))
    assert actions2 == []
    assert all(r.last_seen_iteration == 2 and r.issue_number for r in again.values())


def test_new_version_still_failing_comments_once_per_issue() -> None:
    """A new version that still fails gets one comment per open issue, naming both versions."""
    records, actions = first_iteration(20, 12)
    records = filed(records, actions)
    run = failing_run(cause_map(20, 12), passing=60)
    _, actions2 = assess(records, [run], ctx(2, version="rev-002"))
    assert kinds(actions2) == ["comment", "comment"]
    assert {a.issue_number for a in actions2} == {1, 2}
    assert "Still failing on `rev-002` (was `rev-001`)" in actions2[0].body


def test_tests_joining_a_cluster_comment_on_the_same_version() -> None:
    """More tests failing with a known error is worth one comment listing the newcomers."""
    records, actions = first_iteration(5)
    records = filed(records, actions)
    _, actions2 = assess(records, [failing_run(cause_map(7), passing=60)], ctx(2))
    assert kinds(actions2) == ["comment"]
    assert "Newly failing (2)" in actions2[0].body
    assert "test_cause0_6" in actions2[0].body


def test_fixed_on_a_new_version_closes_verified() -> None:
    """A cluster whose tests pass on a new version, phase fully run, is closed as verified."""
    records, actions = first_iteration(20, 12)
    records = filed(records, actions)
    run = failing_run(cause_map(20, 12), passing=60, fixed={CAUSES[1]})
    after, actions2 = assess(records, [run], ctx(2, version="rev-002"))
    assert kinds(actions2) == ["comment", "close"]  # the other cause still fails on rev-002
    close = actions2[1]
    assert close.issue_number == 2
    assert "Verified fixed in `rev-002`" in close.body
    fixed = after[close.fingerprint]
    assert (fixed.status, fixed.fixed_in) == ("fixed", "rev-002")
    assert fixed.closed_at == NOW.isoformat(timespec="seconds")


def test_gone_on_the_same_version_is_not_a_fix() -> None:
    """The cluster vanishing without a new deploy is not verified: no close, still open."""
    records, actions = first_iteration(20, 12)
    records = filed(records, actions)
    run = failing_run(cause_map(20, 12), passing=60, fixed={CAUSES[1]})
    after, actions2 = assess(records, [run], ctx(2))
    assert actions2 == []
    assert after[actions[1].fingerprint].status == "open"


def test_no_close_when_the_phase_did_not_run_fully() -> None:
    """A phase cut short (fail-fast, --phase) cannot verify a fix."""
    records, actions = first_iteration(20, 12)
    records = filed(records, actions)
    run = failing_run(cause_map(20, 12), passing=60, fixed={CAUSES[1]})
    _, actions2 = assess(records, [run], ctx(2, version="rev-002", complete=frozenset()))
    assert "close" not in kinds(actions2)


def test_close_on_fix_off_comments_instead() -> None:
    """With close_on_fix = false a verified fix is announced but the issue stays open."""
    records, actions = first_iteration(4)
    records = filed(records, actions)
    run = failing_run(cause_map(4), passing=60, fixed={CAUSES[0]})
    after, actions2 = assess(records, [run], ctx(2, version="rev-002", close_on_fix=False))
    assert kinds(actions2) == ["comment"]
    assert "Left open" in actions2[0].body
    assert after[actions[0].fingerprint].closed_at is None


def fixed_then_failing(days_later: float) -> tuple[list[IssueAction], ClusterRecord]:
    records, actions = first_iteration(4)
    records = filed(records, actions)
    fixed_run = failing_run(cause_map(4), passing=60, fixed={CAUSES[0]})
    records, _ = assess(records, [fixed_run], ctx(2, version="rev-002"))
    later = NOW + timedelta(days=days_later)
    run = failing_run(cause_map(4), passing=60)
    records, actions3 = assess(records, [run], ctx(3, version="rev-003", now=later))
    return actions3, records[actions[0].fingerprint]


def test_recurrence_within_reopen_days_reopens() -> None:
    """A fixed cluster failing again within reopen_days reopens its issue."""
    actions, record = fixed_then_failing(days_later=2)
    assert kinds(actions) == ["reopen"]
    assert actions[0].issue_number == 1
    assert "Regressed in `rev-003` (fixed in `rev-002`)" in actions[0].body
    assert (record.status, record.issue_number, record.closed_at) == ("open", 1, None)


def test_recurrence_after_reopen_days_files_a_new_issue_linking_the_old() -> None:
    """Past reopen_days the recurrence is a new issue whose body links the old one."""
    actions, record = fixed_then_failing(days_later=30)
    assert kinds(actions) == ["create"]
    assert "This failed before in #1" in actions[0].body
    assert record.issue_number is None


def test_broken_deploy_files_one_issue_for_the_phase() -> None:
    """80 of 100 tests failing for 4 reasons is one 'deployment broken' issue, not four."""
    records, actions = assess({}, [failing_run(cause_map(30, 25, 15, 10), passing=20)], ctx())
    assert kinds(actions) == ["create"]
    assert actions[0].title == "[deployloop] websocket: deployment broken — 80 of 100 tests failing"
    assert "30 × `AssertionError: " in actions[0].body
    assert [r.error_type for r in records.values()] == [BROKEN_ERROR]


def test_broken_deploy_closes_when_the_phase_recovers() -> None:
    """Once a new version leaves the phase unbroken, the broken issue closes and the
    remaining causes are filed on their own."""
    records, actions = assess({}, [failing_run(cause_map(30, 25, 15, 10), passing=20)], ctx())
    records = filed(records, actions)
    run = failing_run(cause_map(30, 25, 15, 10), passing=20, fixed=set(CAUSES[:3]))
    _, actions2 = assess(records, [run], ctx(2, version="rev-002"))
    assert kinds(actions2) == ["close", "create"]
    assert "no longer broken" in actions2[0].body
    assert actions2[1].title.endswith("— 10 tests")


def test_one_cause_failing_everything_stays_a_plain_cluster() -> None:
    """All tests failing with one error already make one issue: titled by the error."""
    _, actions = assess({}, [failing_run(cause_map(90), passing=10)], ctx())
    assert kinds(actions) == ["create"]
    assert CAUSES[0] in actions[0].title


def test_flaky_failures_form_no_issue_when_flaky_counts_as_pass() -> None:
    """Tests that failed then passed on rerun are recorded as flaky, never filed."""
    run = failing_run(cause_map(3, 2), passing=60)
    flaky = frozenset(c.id for c in run.cases if CAUSES[1] in c.message)
    records, actions = assess({}, [run], ctx(flaky_ids=flaky))
    assert kinds(actions) == ["create"]
    assert sorted(r.status for r in records.values()) == ["flaky", "open"]


def test_flaky_in_another_phase_forgives_nothing_here() -> None:
    """Item 2: ids that passed on rerun in another phase are still failures in this one."""
    run = failing_run(cause_map(3, 2), passing=60)
    flaky = frozenset(c.id for c in run.cases if c.broken)
    _, actions = assess({}, [run], replace(ctx(), flaky={"business": flaky}))
    assert kinds(actions) == ["create", "create"]


def test_waiting_causes_are_announced_in_their_own_phase_only() -> None:
    """Item 15: causes of phase B held back by the cap are not announced on phase A's issue."""
    first = failing_run(cause_map(9, 7), passing=50)
    second = failing_run({CAUSES[2]: 5}, passing=50, phase="business", suite="shop")
    _, actions = assess({}, [first, second], ctx(max_new_per_iteration=2))
    assert kinds(actions) == ["create", "create", "defer"]


def test_flaky_failures_are_filed_when_flaky_counts_as_fail() -> None:
    """With flaky = 'fail' a flaky test is a failure like any other."""
    run = failing_run(cause_map(3, 2), passing=60)
    flaky = frozenset(c.id for c in run.cases if CAUSES[1] in c.message)
    _, actions = assess({}, [run], replace(ctx(flaky_ids=flaky), retest=RetestConfig(flaky="fail")))
    assert kinds(actions) == ["create", "create"]


def test_max_new_per_iteration_defers_the_rest_with_a_summary() -> None:
    """Over the cap: creates up to it, one summary comment on the first, the rest deferred."""
    run = failing_run(cause_map(9, 7, 5, 3), passing=200)
    _records, actions = assess({}, [run], ctx(max_new_per_iteration=2))
    assert kinds(actions) == ["create", "create", "comment", "defer", "defer"]
    summary = actions[2]
    assert summary.fingerprint == actions[0].fingerprint
    assert summary.issue_number is None
    assert "2 more new failure clusters" in summary.body
    assert actions[3].title in summary.body


def test_deferred_clusters_are_filed_first_next_iteration() -> None:
    """What waited gets its issue before anything newer, still within the cap."""
    run = failing_run(cause_map(9, 7, 5, 3), passing=200)
    records, actions = assess({}, [run], ctx(max_new_per_iteration=2))
    records = filed(records, actions)
    deferred = {a.fingerprint for a in actions if a.kind == "defer"}
    run2 = failing_run(cause_map(9, 7, 5, 3, 20), passing=200)
    _, actions2 = assess(records, [run2], ctx(2, max_new_per_iteration=2))
    assert {a.fingerprint for a in actions2 if a.kind == "create"} == deferred
    assert kinds(actions2).count("defer") == 1


def test_versionless_targets_never_close() -> None:
    """Without a version to compare, a fix cannot be verified."""
    records, actions = first_iteration(4)
    records = filed(records, actions)
    run = failing_run(cause_map(4), passing=60, fixed={CAUSES[0]})
    _, actions2 = assess(records, [run], ctx(2, version=None))
    assert actions2 == []


def test_records_round_trip_through_json() -> None:
    """to_dict/from_dict survive json.dumps: the lead's SQLite keeps them as JSON."""
    records, _ = first_iteration(3)
    record = replace(next(iter(records.values())), issue_number=7, closed_at="2025-01-01")
    again = ClusterRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record
    action = IssueAction("create", "v1-000000000000", "t", "b", ("x",))
    assert IssueAction.from_dict(json.loads(json.dumps(action.to_dict()))) == action


def test_failures_are_grouped_across_suites_of_a_phase() -> None:
    """The same error in two suites of a phase is one cluster with both suites' tests."""
    runs: list[SuiteRun] = [
        failing_run(cause_map(3), passing=20, suite="agents"),
        failing_run(cause_map(2), passing=20, suite="pipeline"),
    ]
    records, actions = assess({}, runs, ctx())
    assert kinds(actions) == ["create"]
    assert len(records[actions[0].fingerprint].tests) == 5


def test_recurrence_of_a_fix_left_open_comments() -> None:
    """With close_on_fix off, failing again after a verified fix says so on the open issue."""
    records, actions = first_iteration(4)
    records = filed(records, actions)
    run = failing_run(cause_map(4), passing=60, fixed={CAUSES[0]})
    records, _ = assess(records, [run], ctx(2, version="rev-002", close_on_fix=False))
    again = failing_run(cause_map(4), passing=60)
    after, actions3 = assess(records, [again], ctx(3, version="rev-003", close_on_fix=False))
    assert kinds(actions3) == ["comment"]
    assert "Regressed in `rev-003` (fixed in `rev-002`)" in actions3[0].body
    assert after[actions[0].fingerprint].status == "open"


def test_title_drops_the_module_path_of_the_exception() -> None:
    """Titles read 'ConnectionClosedError: …', not the exception's full module path."""
    from deployloop.issues.text import _short_type

    assert _short_type("websockets.exceptions.ConnectionClosedError: 1011") == (
        "ConnectionClosedError: 1011"
    )
    assert _short_type("assert resp.status == 200") == "assert resp.status == 200"


def test_issue_text_says_where_to_reproduce_and_shows_only_its_own_log() -> None:
    """Item 15: no "`None`" for an unknown version; Reproduce gives the suite's directory and
    its run line as configured; the log excerpt holds this cause's pytest sections only."""
    from deployloop.config import SuiteConfig
    from deployloop.issues.desk import repro_lines

    run = failing_run(cause_map(2, 1), passing=5)
    mine, other = (next(c.id for c in run.cases if cause in c.message) for cause in CAUSES[:2])
    log = (
        f"____ {other.rpartition('::')[2]} ____\nOtherError: not this cause\n"
        f"____ {mine.rpartition('::')[2]} ____\nthis cause's traceback\n"
        f"FAILED {mine} - boom\n"
    )
    suite = SuiteConfig(name="agents", run="pytest ${E2E}", cwd="/srv/e2e", env={"TOKEN": "s3cret"})
    context = replace(
        ctx(version=None), log_excerpts={"agents": log}, repro={"agents": repro_lines(suite)}
    )
    _, actions = assess({}, [run], context)
    body = actions[0].body
    assert "| First seen | iteration 1 |" in body
    assert "cd /srv/e2e\n# with the environment its config sets: TOKEN\npytest ${E2E}" in body
    assert "s3cret" not in body
    assert "this cause's traceback" in body and "not this cause" not in body


def test_titles_and_error_use_the_chosen_line_not_the_placeholder() -> None:
    """Go ``message="Failed"`` and a Playwright message naming the test: the issue title and
    its Error section show the line errorline chose, so two causes get two titles."""
    go = [
        CaseResult(
            f"TestCheckout{n}",
            f"TestCheckout{n}",
            "github.com/acme/e2e",
            Outcome.FAILED,
            0.3,
            "Failed",
            "",
            f"=== RUN   TestCheckout{n}\n    checkout_test.go:42: {why}\n--- FAIL",
        )
        for n, why in enumerate(("POST /api/checkout: unexpected status 500", "cart is empty"))
    ]
    playwright = CaseResult(
        "agents.spec.js::list agents", "list agents", "agents.spec.js", Outcome.FAILED, 1.0,
        "agents.spec.js:2:1 list agents", "", "Error: page.goto: net::ERR_CONNECTION_REFUSED",
    )  # fmt: skip
    passing = tuple(case(f"t.py::test_ok{n}", Outcome.PASSED) for n in range(10))
    run = SuiteRun("websocket", "agents", (*go, playwright, *passing), 1.0, 1)
    _, actions = assess({}, [run], ctx())
    titles = sorted(a.title for a in actions)
    assert not any("Failed" in t or "list agents" in t for t in titles), titles
    assert any("unexpected status 500" in t for t in titles), titles
    assert any("cart is empty" in t for t in titles), titles
    (pw,) = [a for a in actions if "ERR_CONNECTION_REFUSED" in a.title]
    assert "Error: page.goto: net::ERR_CONNECTION_REFUSED" in pw.body.split("### Error")[1]
