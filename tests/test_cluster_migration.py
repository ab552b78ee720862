"""v1 -> v2: issues filed under v1 markers are found, re-keyed in place, never filed again.

Real PyGithub against the local GitHub server: the "v1 era" files its issues exactly as the
last v1 release did (one create per v1 print, the marker on the body's last line), then the
v2 triage runs over the same failures, with the state kept and with the state lost.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from deployloop.clustering import key_cases
from deployloop.fingerprint import v1_fingerprint
from deployloop.issues.deliver import SyncResult, apply
from deployloop.issues.github import GitHubTracker
from deployloop.issues.local import LocalTracker
from deployloop.issues.outbox import Outbox
from deployloop.issues.records import ClusterRecord, IssueAction
from deployloop.issues.tracker import marker, marker_of, remark
from deployloop.issues.triage import assess, with_issue_numbers
from deployloop.junit import read_cases
from deployloop.models import Outcome, SuiteRun
from deployloop.redact import Redactor
from deployloop.testing import FakeClock, case, cause_map, context, failing_run
from deployloop.testing.github_server import FakeGitHub
from tests.corpus import CORPUS

MOCHA = CORPUS / "handed" / "22-mocha-ci-path.xml"  # one slow backend: 3 v1 prints, 1 cause
ISSUES = "/repos/acme/platform/issues"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def tracker(github: FakeGitHub) -> Iterator[GitHubTracker]:
    made = GitHubTracker(github.repo, github.token, github.url, clock=FakeClock())
    yield made
    made.dispose()


def runs() -> list[SuiteRun]:
    """Three causes v1 and v2 both tell apart, and one cause v1 split by file path."""
    mocha = tuple(found for found in read_cases(MOCHA) if found.broken)
    return [
        failing_run(cause_map(4, 3, 2), passing=20),
        SuiteRun("websocket", "mocha", mocha, wall_s=3.0, exit_code=1),
    ]


def file_as_v1(tracker: GitHubTracker, tmp_path: Path) -> dict[str, ClusterRecord]:
    """What the v1 release left: one issue per v1 print, and records keyed by those prints."""
    broken = [found for run in runs() for found in run.cases if found.broken]
    groups: dict[str, list[str]] = {}
    for found in broken:
        groups.setdefault(v1_fingerprint(found), []).append(found.id)
    actions = [
        IssueAction("create", fp, f"[deployloop] websocket: v1 cause {n}", f"{len(ids)} tests")
        for n, (fp, ids) in enumerate(groups.items())
    ]
    done = apply(actions, tracker, Outbox(tmp_path / "v1-state"), Redactor())
    return {fp: v1_record(fp, ids, done.created[fp]) for fp, ids in groups.items()}


def v1_record(fp: str, tests: list[str], number: int) -> ClusterRecord:
    """A cluster record as the v1 release saved it: keyed by its v1 print, issue filed."""
    return ClusterRecord(
        fp, f"v1 {fp}", "m", "E", "websocket", tuple(tests), 1, "rev-001", 1, "rev-001",
        issue_number=number,
    )  # fmt: skip


def migrate(
    tracker: GitHubTracker, previous: Mapping[str, ClusterRecord], tmp_path: Path
) -> tuple[dict[str, ClusterRecord], SyncResult]:
    records, actions = assess(previous, runs(), context(2, max_new_per_iteration=50))
    result = apply(actions, tracker, Outbox(tmp_path / "state"), Redactor())
    return with_issue_numbers(records, result.issue_numbers), result


def markers(github: FakeGitHub) -> list[str | None]:
    return [marker_of(issue["body"]) for _, issue in sorted(github.issues.items())]


@pytest.mark.parametrize("state_kept", [True, False])
def test_v1_issues_are_rekeyed_not_filed_again(
    github: FakeGitHub, tracker: GitHubTracker, tmp_path: Path, state_kept: bool
) -> None:
    """6 v1 issues, 4 v2 causes: no new issue, no comment; 4 markers now v2, records v2."""
    v1_records = file_as_v1(tracker, tmp_path)
    assert len(github.issues) == 6 and all(m and m.startswith("v1-") for m in markers(github))
    github.reset_calls()
    tracker.refresh()
    records, result = migrate(tracker, v1_records if state_kept else {}, tmp_path)
    assert github.requests("POST", ISSUES + "$") == []
    assert github.requests("POST", "/comments") == []
    assert len(github.issues) == 6
    v2 = [m for m in markers(github) if m and m.startswith("v2-")]
    assert len(v2) == 4 and set(v2) == set(result.rekeyed)
    open_v2 = {fp: r for fp, r in records.items() if fp.startswith("v2-")}
    assert set(open_v2) == set(v2)
    assert all(r.issue_number == result.rekeyed[fp] for fp, r in open_v2.items())


def test_the_next_night_after_migration_is_quiet(
    github: FakeGitHub, tracker: GitHubTracker, tmp_path: Path
) -> None:
    """Once re-keyed, the same failures send nothing at all: no write of any kind."""
    records, _ = migrate(tracker, file_as_v1(tracker, tmp_path), tmp_path)
    github.reset_calls()
    tracker.refresh()
    _, actions = assess(records, runs(), context(3, max_new_per_iteration=50))
    apply(actions, tracker, Outbox(tmp_path / "state"), Redactor())
    assert [c for c in github.requests() if c.method != "GET"] == []


def test_remark_edits_only_the_marker_line() -> None:
    """remark swaps the last line's v1 marker for v2, keeps every other byte, else None."""
    old, new = "v1-0123456789ab", "v2-ba9876543210"
    quoted = f"text {marker(old)}\nmore\n\n"  # a marker quoted in the text stays as it is
    edited = remark(f"{quoted}{marker(old)}\n", old, new)
    assert edited == f"{quoted}{marker(new)}\n"
    assert marker_of(edited) == new
    assert remark(edited, old, new) is None  # already re-keyed: nothing to write
    assert remark("a person rewrote it", old, new) is None


def test_local_tracker_rekeys_head_and_marker(tmp_path: Path) -> None:
    """LocalTracker.rekey moves the head field and the body's marker; a second call is a no-op."""
    old, new = "v1-0123456789ab", "v2-ba9876543210"
    tracker = LocalTracker(tmp_path / "issues")
    issue = tracker.create("[deployloop] p: boom — 1 test", f"body\n\n{marker(old)}\n", ("x",))
    tracker.comment(issue.number, "a comment")
    tracker.rekey(issue.number, old, new)
    before = tracker.text(issue.number)
    tracker.rekey(issue.number, old, new)
    assert tracker.text(issue.number) == before
    assert f"- fingerprint: {new}" in before and marker(old) not in before
    assert before.count("a comment") == 1
    tracker.refresh()
    assert set(tracker.existing()) == {new}


def test_a_cause_keeps_the_print_its_issue_has() -> None:
    """When another member becomes the most frequent, the key stays the one already filed."""
    line = "replica set web-{} is lagging behind its primary"
    night1 = [case(f"t.py::test_{i}", Outcome.FAILED, line.format("abcdeq"), "E") for i in range(3)]
    night2 = [case(f"t.py::test_{i}", Outcome.FAILED, line.format("abuoeq"), "E") for i in range(3)]
    filed = key_cases(night1)[0].key
    mixed = [*night2, night1[0]]  # the other spelling is now the most frequent
    assert key_cases(mixed)[0].key != filed
    assert {found.key for found in key_cases(mixed, prefer={filed})} == {filed}
