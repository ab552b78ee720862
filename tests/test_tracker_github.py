"""The GitHub tracker through real PyGithub against the local GitHub stand-in: one issue per
root cause, never a duplicate, faults retried within bounds, nothing lost, no secret sent."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from deployloop.errors import TrackerError
from deployloop.issues.deliver import SyncResult, apply
from deployloop.issues.github import GitHubTracker
from deployloop.issues.github_calls import RetryPolicy
from deployloop.issues.outbox import Outbox
from deployloop.issues.records import ClusterRecord, TriageContext
from deployloop.issues.tracker import marker, marker_of
from deployloop.issues.triage import assess, with_issue_numbers
from deployloop.models import SuiteRun
from deployloop.redact import Redactor
from deployloop.testing import CAUSES, NOW, FakeClock, cause_map, context, failing_run
from deployloop.testing.github_server import FakeGitHub, Fault, iter_bodies


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


@dataclass
class Night:
    """One deployloop run against the fake: records carried from iteration to iteration."""

    github: FakeGitHub
    tracker: GitHubTracker
    outbox: Outbox
    clock: FakeClock
    redactor: Redactor = field(default_factory=Redactor)
    records: dict[str, ClusterRecord] = field(default_factory=dict)

    def iterate(self, runs: Sequence[SuiteRun], ctx: TriageContext) -> SyncResult:
        records, actions = assess(self.records, runs, ctx)
        result = apply(actions, self.tracker, self.outbox, self.redactor)
        self.records = with_issue_numbers(records, result.issue_numbers)
        return result


def night_for(
    github: FakeGitHub,
    tmp_path: Path,
    redactor: Redactor | None = None,
    timeout: int = 15,
    policy: RetryPolicy | None = None,
) -> Night:
    clock = FakeClock()
    tracker = GitHubTracker(
        github.repo,
        github.token,
        github.url,
        redactor,
        list_label="deployloop",
        clock=clock,
        policy=policy,
        timeout=timeout,
    )
    return Night(github, tracker, Outbox(tmp_path / "state"), clock, redactor or Redactor())


@pytest.fixture
def night(github: FakeGitHub, tmp_path: Path) -> Iterator[Night]:
    n = night_for(github, tmp_path)
    yield n
    n.tracker.dispose()


def writes(github: FakeGitHub) -> list[tuple[str, str]]:
    return [(c.method, c.path) for c in github.requests() if c.method != "GET"]


def three_causes(fixed: Collection[str] = ()) -> list[SuiteRun]:
    return [failing_run(cause_map(20, 12, 8), passing=60, fixed=fixed)]


ISSUES = "/repos/acme/platform/issues"
LABELS = "/repos/acme/platform/labels"


def test_forty_failures_in_three_causes_file_exactly_three_issues(night: Night) -> None:
    """40 failing tests in 3 causes: 3 issues, each with its marker, labels created first."""
    result = night.iterate(three_causes(), context())
    assert writes(night.github) == [("POST", LABELS)] * 3 + [("POST", ISSUES)] * 3
    posts = night.github.requests("POST", r"/issues$")
    assert [p.body["labels"] for p in posts] == [["deployloop", "e2e-failure", "P1"]] * 3
    assert {marker_of(p.body["body"]) for p in posts} == set(result.created)
    assert sorted(result.created.values()) == [1, 2, 3]
    assert posts[0].body["title"] == f"[deployloop] websocket: {CAUSES[0]} — 20 tests"


def test_second_iteration_with_the_same_failures_sends_nothing(night: Night) -> None:
    """Same failures, same version: no issue, no comment — not even a request."""
    night.iterate(three_causes(), context())
    night.github.reset_calls()
    result = night.iterate(three_causes(), context(2))
    assert night.github.requests() == []
    assert result.created == result.commented == {}


def test_writes_are_spaced_by_min_interval(night: Night) -> None:
    """Writes wait out the 1 s spacing GitHub asks for (measured on the injected clock)."""
    night.iterate(three_causes(), context())
    assert night.clock.sleeps == [1.0] * 5  # six writes, five gaps


def test_server_errors_are_retried_with_backoff(night: Night) -> None:
    """Two 500s on create: backed off, re-listed, then filed once."""
    night.github.inject(Fault("POST", r"/issues$", status=500, times=2))
    result = night.iterate([failing_run(cause_map(3), passing=10)], context())
    assert len(night.github.issues) == 1
    assert len(night.github.requests("POST", r"/issues$")) == 3
    assert {2.0, 4.0} <= set(night.clock.sleeps)
    assert result.queued == 0


def test_create_answered_with_502_after_success_makes_one_issue(night: Night) -> None:
    """GitHub made the issue but answered 502: the re-listing finds the marker, no re-POST."""
    night.github.inject(Fault.lost_create())
    result = night.iterate([failing_run(cause_map(3), passing=10)], context())
    assert len(night.github.issues) == 1
    assert len(night.github.requests("POST", r"/issues$")) == 1
    assert list(result.created.values()) == [1]


def test_secondary_rate_limit_honours_retry_after(night: Night) -> None:
    """403 secondary limit with Retry-After: 7 waits 7 s, then files once."""
    night.github.inject(Fault.secondary_limit(retry_after=7, method="POST"))
    night.iterate([failing_run(cause_map(3), passing=10)], context())
    assert 7.0 in night.clock.sleeps
    assert len(night.github.issues) == 1


def test_429_without_a_hint_waits_a_minute(night: Night) -> None:
    """429 with no Retry-After waits GitHub's recommended minute."""
    night.github.inject(Fault.too_many(method="POST"))
    night.iterate([failing_run(cause_map(3), passing=10)], context())
    assert 60.0 in night.clock.sleeps
    assert len(night.github.issues) == 1


def test_primary_rate_limit_waits_for_the_reset(night: Night) -> None:
    """403 with x-ratelimit-remaining 0 waits until x-ratelimit-reset (plus a second)."""
    reset = str(int(night.clock.time()) + 30)
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    night.github.inject(
        Fault("GET", status=403, headers=headers, message="API rate limit exceeded")
    )
    night.iterate([failing_run(cause_map(3), passing=10)], context())
    assert 31.0 in night.clock.sleeps
    assert len(night.github.issues) == 1


def test_slow_answer_within_timeout_is_just_slow(night: Night) -> None:
    """An answer that takes 0.3 s is waited for: no retry."""
    night.github.inject(Fault("POST", r"/issues$", status=None, delay=0.3))
    night.iterate([failing_run(cause_map(3), passing=10)], context())
    assert len(night.github.requests("POST", r"/issues$")) == 1
    assert night.clock.sleeps == [1.0] * 3  # the spacing of 4 writes: no backoff


def test_timed_out_create_is_found_not_refiled(github: FakeGitHub, tmp_path: Path) -> None:
    """A create whose answer comes after the client's timeout exists once, found by marker."""
    n = night_for(github, tmp_path, timeout=1)
    github.inject(Fault("POST", r"/issues$", status=None, delay=1.5))
    try:
        result = n.iterate([failing_run(cause_map(3), passing=10)], context())
    finally:
        n.tracker.dispose()
    assert len(github.issues) == 1
    assert len(github.requests("POST", r"/issues$")) == 1
    assert result.created == {next(iter(n.records)): 1}


def test_retries_are_bounded_then_tracker_error(github: FakeGitHub, tmp_path: Path) -> None:
    """A GitHub that stays down costs at most max_wait, then TrackerError names the call."""
    n = night_for(github, tmp_path, policy=RetryPolicy(attempts=10, max_wait=20))
    github.inject(Fault.down())
    with pytest.raises(TrackerError, match="list issues: HTTP 503"):
        n.tracker.existing()
    n.tracker.dispose()
    assert sum(n.clock.sleeps) <= 20
    assert len(github.requests()) <= 10


def test_outage_queues_in_the_outbox_and_delivers_exactly_once(night: Night) -> None:
    """GitHub down for a whole iteration: writes wait in the outbox; next time each lands once."""
    night.github.inject(Fault.down())
    first = night.iterate(three_causes(), context())
    assert first.queued == 3
    assert first.error and "503" in first.error
    assert night.github.issues == {}
    night.github.clear_faults()
    second = night.iterate(three_causes(), context(2))
    assert len(night.github.issues) == 3
    assert second.queued == 0
    assert second.replayed == 3
    assert len(second.adopted) == 3  # the same creates decided again were recognised
    assert not night.outbox.path.exists()


def test_queued_comment_is_replayed_once(night: Night) -> None:
    """A comment whose write failed is posted by the next apply, and only once."""
    night.iterate(three_causes(), context())
    night.github.inject(Fault("POST", r"/comments$", status=502, times=None, process=True))
    night.github.inject(Fault.down())
    result = night.iterate(three_causes(), context(2, version="rev-002"))
    assert result.queued == 3
    night.github.clear_faults()
    night.iterate(three_causes(), context(3, version="rev-002"))
    assert [len(night.github.comments(n)) for n in (1, 2, 3)] == [1, 1, 1]


def test_lost_comment_answer_is_not_posted_twice(night: Night) -> None:
    """A comment that landed but answered 502 is found among the comments, not re-posted."""
    night.iterate([failing_run(cause_map(3), passing=10)], context())
    night.github.inject(Fault("POST", r"/comments$", status=502, process=True))
    night.iterate([failing_run(cause_map(3), passing=10)], context(2, version="rev-002"))
    assert len(night.github.comments(1)) == 1


def test_no_secret_leaves_in_any_request(github: FakeGitHub, tmp_path: Path) -> None:
    """Tokens, Authorization values and secret env values printed by a test never reach GitHub,
    and the tracker's own token appears only in the Authorization header."""
    environ = {"STAGING_API_TOKEN": "stg-0123456789-secret", "HOME": "/root"}
    redactor = Redactor.from_env(environ, extra=[github.token])
    n = night_for(github, tmp_path, redactor)
    leaked = (
        "request failed: Authorization: Bearer abc.def.ghi token ghp_"
        + "a" * 36
        + " env stg-0123456789-secret key AKIAIOSFODNN7EXAMPLE"
    )
    run = failing_run({leaked: 3}, passing=10)
    n.iterate([run], context())
    n.iterate([failing_run({leaked: 4}, passing=10)], context(2, version="rev-002"))
    n.tracker.dispose()
    sent = "\n".join(iter_bodies(github.requests()))
    assert "[REDACTED]" in sent
    for secret in ("abc.def.ghi", "ghp_" + "a" * 36, "stg-0123456789-secret", "AKIAIOSFODNN7"):
        assert secret not in sent
    assert github.token not in sent
    authorized = [c.headers["Authorization"] for c in github.requests()]
    assert all(github.token in value for value in authorized)


def test_verified_fix_on_a_new_version_closes_the_issue(night: Night) -> None:
    """Cause fixed in rev-002: its issue is closed, state_reason completed, with the verdict."""
    night.iterate(three_causes(), context())
    night.github.reset_calls()
    night.iterate(three_causes(fixed={CAUSES[2]}), context(2, version="rev-002"))
    patches = night.github.requests("PATCH")
    assert [(p.path, p.body) for p in patches] == [
        (f"{ISSUES}/3", {"state": "closed", "state_reason": "completed"})
    ]
    assert night.github.issues[3]["state"] == "closed"
    assert "Verified fixed in `rev-002`" in night.github.comments(3)[-1]


def test_no_close_on_the_same_version(night: Night) -> None:
    """Cause gone without a redeploy: nothing is closed."""
    night.iterate(three_causes(), context())
    night.github.reset_calls()
    night.iterate(three_causes(fixed={CAUSES[2]}), context(2))
    assert night.github.requests("PATCH") == []
    assert night.github.issues[3]["state"] == "open"


def test_recurrence_reopens_the_closed_issue(night: Night) -> None:
    """Fixed in rev-002, failing again in rev-003: the same issue reopens with a comment."""
    night.iterate(three_causes(), context())
    night.iterate(three_causes(fixed={CAUSES[2]}), context(2, version="rev-002"))
    night.github.reset_calls()
    later = NOW + timedelta(days=1)
    result = night.iterate(three_causes(), context(3, version="rev-003", now=later))
    assert result.reopened == {next(fp for fp, n in result.issue_numbers.items() if n == 3): 3}
    assert night.github.issues[3]["state"] == "open"
    assert "Regressed in `rev-003`" in night.github.comments(3)[-1]
    assert night.github.requests("POST", r"/issues$") == []


def test_labels_are_created_only_when_missing_and_once(night: Night) -> None:
    """Existing labels are not re-created; the label list is read once per run."""
    night.github.add_label("deployloop")
    night.iterate([failing_run(cause_map(3), passing=10)], context())
    night.iterate([failing_run(cause_map(3, 2), passing=10)], context(2))
    created = [c.body["name"] for c in night.github.requests("POST", r"/labels$")]
    assert created == ["e2e-failure", "P1"]
    assert len(night.github.requests("GET", r"/labels$")) == 1


def test_an_open_issue_from_an_earlier_run_is_adopted(night: Night) -> None:
    """State lost, issue still open on GitHub: found by its marker, not filed again."""
    run = failing_run(cause_map(3), passing=10)
    fp = next(iter(assess({}, [run], context())[0]))
    number = night.github.add_issue("old", f"body\n{marker(fp)}", ["deployloop"])
    result = night.iterate([run], context())
    assert result.adopted == {fp: number}
    assert night.github.requests("POST", r"/issues$") == []


def test_listing_follows_pagination(night: Night) -> None:
    """Hundreds of labelled issues are read page by page through the Link header."""
    for n in range(250):
        night.github.add_issue(f"other {n}", f"{marker(f'v1-{n:012x}')}", ["deployloop"])
    found = night.tracker.existing()
    assert len(found) == 250
    pages = night.github.requests("GET", r"/issues$")
    assert [p.query.get("page", ["1"])[0] for p in pages] == ["1", "2", "3"]


def test_dry_run_sends_nothing_and_says_what_it_would_do(night: Night) -> None:
    """--dry-run decides the issues but sends not one request."""
    _records, actions = assess({}, three_causes(), context())
    result = apply(actions, night.tracker, night.outbox, night.redactor, dry_run=True)
    assert night.github.requests() == []
    assert result.dry_run[0].startswith(f"would create issue '[deployloop] websocket: {CAUSES[0]}")
    assert len(result.dry_run) == 3


def test_state_loss_reopens_a_recently_closed_issue(night: Night, tmp_path: Path) -> None:
    """Records lost after a verified close: the recurrence reopens the issue found by marker."""
    night.iterate(three_causes(), context())
    night.iterate(three_causes(fixed={CAUSES[2]}), context(2, version="rev-002"))
    night.github.reset_calls()
    night.records = {}
    result = night.iterate(three_causes(), context(3, version="rev-003"))
    assert sorted(result.adopted.values()) == [1, 2]
    assert list(result.reopened.values()) == [3]
    assert night.github.requests("POST", r"/issues$") == []
    assert night.github.issues[3]["state"] == "open"


def test_a_write_github_refuses_for_good_does_not_block_the_rest(night: Night) -> None:
    """A 422 on one create is reported and dropped; the other causes are still filed."""
    night.github.inject(Fault("POST", r"/issues$", status=422, message="Validation Failed"))
    result = night.iterate(three_causes(), context())
    assert len(result.rejected) == 1
    assert "HTTP 422: Validation Failed" in result.rejected[0]
    assert (len(night.github.issues), result.queued) == (2, 0)
