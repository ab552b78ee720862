"""The outbox: writes the tracker could not take wait on disk, in order, and land exactly once."""

from __future__ import annotations

import json
from pathlib import Path

from deployloop.errors import TrackerError
from deployloop.issues.deliver import apply
from deployloop.issues.local import LocalTracker
from deployloop.issues.outbox import Entry, Outbox
from deployloop.issues.records import ActionKind, IssueAction
from deployloop.issues.tracker import Issue, marker
from deployloop.issues.triage import assess
from deployloop.redact import Redactor
from deployloop.testing import cause_map, context, failing_run


class FlakyTracker(LocalTracker):
    """A local tracker whose writes fail while ``down`` is set (a tracker outage)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.down = False
        self.attempts = 0

    def _check(self) -> None:
        self.attempts += 1
        if self.down:
            raise TrackerError("tracker down")

    def existing(self) -> dict[str, Issue]:
        self._check()
        return super().existing()

    def create(self, title: str, body: str, labels: tuple[str, ...]) -> Issue:
        self._check()
        return super().create(title, body, labels)

    def comment(self, number: int, body: str, *, verify: bool = False) -> None:
        self._check()
        super().comment(number, body, verify=verify)


def action(n: int, kind: ActionKind = "create", number: int | None = None) -> IssueAction:
    fp = f"v1-{n:012x}"
    body = f"body {n}\n{marker(fp)}" if kind == "create" else f"{kind} on {n}"
    return IssueAction(kind, fp, f"issue {n}", body, ("deployloop",), number)


def test_round_trip_keeps_order(tmp_path: Path) -> None:
    """Saved entries come back in order, as JSON on disk; an empty queue removes the file."""
    outbox = Outbox(tmp_path)
    outbox.save([Entry(action(1)), Entry(action(2), error="503")])
    assert json.loads(outbox.path.read_text())["version"] == 1
    pending = outbox.pending()
    assert [e.action for e in pending] == [action(1), action(2)]
    assert all(e.replay for e in pending)
    outbox.save([])
    assert not outbox.path.exists()
    assert outbox.pending() == []


def test_corrupt_outbox_is_set_aside(tmp_path: Path) -> None:
    """A truncated outbox file is renamed, not deleted, and the queue starts empty."""
    outbox = Outbox(tmp_path)
    outbox.path.write_text('{"pending": [')
    assert outbox.pending() == []
    assert [p.name for p in tmp_path.iterdir() if "corrupt" in p.name]


def test_outage_queues_everything_after_the_first_failure(tmp_path: Path) -> None:
    """The first failing write stops delivery: it and all after it are queued, in order."""
    tracker = FlakyTracker(tmp_path / "issues")
    outbox = Outbox(tmp_path / "state")
    tracker.down = True
    result = apply([action(1), action(2), action(3)], tracker, outbox, Redactor())
    assert (result.queued, result.created, tracker.attempts) == (3, {}, 1)
    assert [e.action.fingerprint for e in outbox.pending()] == [
        action(n).fingerprint for n in (1, 2, 3)
    ]


def test_replay_delivers_in_order_exactly_once(tmp_path: Path) -> None:
    """After the outage the queue is delivered first, then the new work; twice changes nothing."""
    tracker = FlakyTracker(tmp_path / "issues")
    outbox = Outbox(tmp_path / "state")
    tracker.down = True
    apply([action(1), action(2)], tracker, outbox, Redactor())
    tracker.down = False
    result = apply([action(3)], tracker, outbox, Redactor())
    assert result.created == {action(n).fingerprint: n for n in (1, 2, 3)}
    assert (result.replayed, result.queued) == (2, 0)
    again = apply([action(1), action(2), action(3)], tracker, outbox, Redactor())
    assert again.created == {}
    assert len(again.adopted) == 3
    assert len(list(tracker.directory.iterdir())) == 3


def test_a_comment_queued_behind_its_create_finds_the_new_issue(tmp_path: Path) -> None:
    """Create then comment on the same cluster, both queued: the comment lands on the issue."""
    tracker = FlakyTracker(tmp_path / "issues")
    outbox = Outbox(tmp_path / "state")
    tracker.down = True
    apply([action(1), action(1, "comment")], tracker, outbox, Redactor())
    tracker.down = False
    result = apply([], tracker, outbox, Redactor())
    assert result.commented == {action(1).fingerprint: 1}
    assert tracker.text(1).count("**Comment**") == 1


def test_replayed_comment_that_landed_is_not_doubled(tmp_path: Path) -> None:
    """A queued comment already present (its answer was lost) is not posted again."""
    tracker = FlakyTracker(tmp_path / "issues")
    outbox = Outbox(tmp_path / "state")
    apply([action(1)], tracker, outbox, Redactor())
    tracker.comment(1, action(1, "comment", 1).body)  # landed, but the caller never knew
    outbox.save([Entry(action(1, "comment", 1), replay=True)])
    apply([], tracker, outbox, Redactor())
    assert tracker.text(1).count("**Comment**") == 1


def test_attempts_are_counted_across_failed_replays(tmp_path: Path) -> None:
    """Each failed replay bumps the entry's attempt count and keeps the latest error."""
    tracker = FlakyTracker(tmp_path / "issues")
    outbox = Outbox(tmp_path / "state")
    tracker.down = True
    apply([action(1)], tracker, outbox, Redactor())
    apply([], tracker, outbox, Redactor())
    apply([], tracker, outbox, Redactor())
    (entry,) = outbox.pending()
    assert entry.attempts == 3
    assert entry.error == "tracker down"


def test_dry_run_neither_replays_nor_writes(tmp_path: Path) -> None:
    """--dry-run says what waits in the outbox and what it would do, and touches nothing."""
    tracker = FlakyTracker(tmp_path / "issues")
    outbox = Outbox(tmp_path / "state")
    outbox.save([Entry(action(1))])
    _records, actions = assess({}, [failing_run(cause_map(3, 2), passing=10)], context())
    result = apply(actions, tracker, outbox, Redactor(), dry_run=True)
    assert result.dry_run[0] == "would replay 1 write(s) waiting in the outbox"
    assert [line.split(" '")[0] for line in result.dry_run[1:]] == ["would create issue"] * 2
    assert tracker.attempts == 0
    assert len(outbox.pending()) == 1
