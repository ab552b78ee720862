"""The local tracker: the same issue lifecycle as GitHub, as markdown files under logs/issues."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from deployloop.config import IssuesConfig
from deployloop.errors import TrackerError
from deployloop.issues.deliver import SyncResult, apply
from deployloop.issues.desk import make_tracker
from deployloop.issues.local import LocalTracker
from deployloop.issues.outbox import Outbox
from deployloop.issues.records import ClusterRecord, TriageContext
from deployloop.issues.tracker import marker
from deployloop.issues.triage import assess, with_issue_numbers
from deployloop.models import SuiteRun
from deployloop.redact import Redactor
from deployloop.testing import CAUSES, NOW, cause_map, context, failing_run


@dataclass
class Night:
    tracker: LocalTracker
    outbox: Outbox
    redactor: Redactor = field(default_factory=Redactor)
    records: dict[str, ClusterRecord] = field(default_factory=dict)

    def iterate(self, runs: list[SuiteRun], ctx: TriageContext) -> SyncResult:
        records, actions = assess(self.records, runs, ctx)
        result = apply(actions, self.tracker, self.outbox, self.redactor)
        self.records = with_issue_numbers(records, result.issue_numbers)
        return result


@pytest.fixture
def night(tmp_path: Path) -> Night:
    return Night(LocalTracker(tmp_path / "logs" / "issues"), Outbox(tmp_path / "state"))


def three_causes(fixed: set[str] | None = None) -> list[SuiteRun]:
    return [failing_run(cause_map(20, 12, 8), passing=60, fixed=fixed or set())]


def files(night: Night) -> list[str]:
    return sorted(p.name for p in night.tracker.directory.iterdir())


def test_three_causes_make_three_numbered_markdown_files(night: Night) -> None:
    """One file per root cause, numbered in order, with title, state, labels, body, marker."""
    result = night.iterate(three_causes(), context())
    names = files(night)
    assert [n[:5] for n in names] == ["0001-", "0002-", "0003-"]
    assert names[0] == "0001-websocket-server-closed-with-1011-internal-error.md"
    text = night.tracker.text(1)
    assert text.startswith(f"# [deployloop] websocket: {CAUSES[0]} — 20 tests\n")
    assert "- state: open\n- labels: deployloop, e2e-failure, P1\n" in text
    fp = next(fp for fp, n in result.created.items() if n == 1)
    assert marker(fp) in text


def test_existing_reads_the_files_back(night: Night) -> None:
    """existing() maps each marker to its issue, as a fresh tracker would find it."""
    result = night.iterate(three_causes(), context())
    fresh = LocalTracker(night.tracker.directory)
    found = fresh.existing()
    assert {fp: i.number for fp, i in found.items()} == result.created
    assert {i.state for i in found.values()} == {"open"}


def test_same_failures_again_change_nothing(night: Night) -> None:
    """A second identical iteration leaves every file as it was."""
    night.iterate(three_causes(), context())
    before = {n: night.tracker.text(n) for n in (1, 2, 3)}
    result = night.iterate(three_causes(), context(2))
    assert {n: night.tracker.text(n) for n in (1, 2, 3)} == before
    assert result.done == []


def test_state_loss_does_not_duplicate(night: Night, tmp_path: Path) -> None:
    """A restart without its records finds the open issues by marker: no new files."""
    night.iterate(three_causes(), context())
    again = Night(LocalTracker(night.tracker.directory), Outbox(tmp_path / "state2"))
    result = again.iterate(three_causes(), context())
    assert len(files(night)) == 3
    assert sorted(result.adopted.values()) == [1, 2, 3]


def test_verified_fix_closes_with_a_comment(night: Night) -> None:
    """Fixed on a new version: the file says closed, when, and why."""
    night.iterate(three_causes(), context())
    night.iterate(three_causes(fixed={CAUSES[2]}), context(2, version="rev-002"))
    issue = night.tracker.issue(3)
    assert (issue.state, issue.closed_at is not None) == ("closed", True)
    assert "Verified fixed in `rev-002`" in night.tracker.text(3)
    assert night.tracker.issue(1).state == "open"


def test_same_version_never_closes(night: Night) -> None:
    """The cluster gone on the same version: the issue stays open."""
    night.iterate(three_causes(), context())
    night.iterate(three_causes(fixed={CAUSES[2]}), context(2))
    assert night.tracker.issue(3).state == "open"


def test_recurrence_reopens(night: Night) -> None:
    """Failing again after a verified fix reopens the same file with a comment."""
    night.iterate(three_causes(), context())
    night.iterate(three_causes(fixed={CAUSES[2]}), context(2, version="rev-002"))
    later = NOW + timedelta(days=1)
    night.iterate(three_causes(), context(3, version="rev-003", now=later))
    issue = night.tracker.issue(3)
    assert (issue.state, issue.closed_at) == ("open", None)
    assert "Regressed in `rev-003`" in night.tracker.text(3)
    assert len(files(night)) == 3


def test_new_version_still_failing_appends_one_comment(night: Night) -> None:
    """Still failing on a new version: one comment per issue."""
    night.iterate(three_causes(), context())
    night.iterate(three_causes(), context(2, version="rev-002"))
    assert night.tracker.text(1).count("**Comment**") == 1


def test_numbers_never_reuse_a_taken_file(tmp_path: Path) -> None:
    """A number claimed by another writer meanwhile is skipped, never overwritten."""
    tracker = LocalTracker(tmp_path / "issues")
    first = tracker.create("[deployloop] a: one — 1 test", marker("v1-aaaaaaaaaaaa"), ("x",))
    (tmp_path / "issues" / "0002-someone-else.md").write_text("# other\n")
    second = tracker.create("[deployloop] a: two — 1 test", marker("v1-bbbbbbbbbbbb"), ("x",))
    assert (first.number, second.number) == (1, 3)
    assert (tmp_path / "issues" / "0002-someone-else.md").read_text() == "# other\n"
    assert not [p for p in (tmp_path / "issues").iterdir() if p.name.startswith(".tmp")]


def test_unknown_issue_number_is_a_tracker_error(tmp_path: Path) -> None:
    """Commenting on an issue that has no file fails clearly."""
    with pytest.raises(TrackerError, match="no issue #7"):
        LocalTracker(tmp_path / "issues").comment(7, "hello")


def test_secrets_are_redacted_in_files(tmp_path: Path) -> None:
    """The local tracker writes no secret either."""
    tracker = LocalTracker(tmp_path / "issues", Redactor(["hunter2-password"]))
    tracker.create("t", "pw hunter2-password token ghp_" + "b" * 36, ())
    text = tracker.text(1)
    assert "hunter2-password" not in text
    assert "ghp_" not in text


def test_make_tracker_picks_local_under_logs(tmp_path: Path) -> None:
    """The default config makes a local tracker in <logs_dir>/issues; dir moves it."""
    tracker = make_tracker(IssuesConfig(), tmp_path / "logs", Redactor())
    assert isinstance(tracker, LocalTracker)
    assert tracker.directory == tmp_path / "logs" / "issues"
    moved = make_tracker(IssuesConfig(dir=str(tmp_path / "x")), tmp_path / "logs", Redactor())
    assert isinstance(moved, LocalTracker)
    assert moved.directory == tmp_path / "x"
