"""``apply``: deliver triage's actions to a tracker, outbox first, never a duplicate.

Each iteration the desk calls ``apply(actions, tracker, outbox, redactor)``. Every title and body
is redacted and cut to GitHub's limits here, before it leaves. A create whose cluster already
has an open issue (found by the hidden marker) is adopted, not filed again — that covers a
restart that lost its state and a create whose answer was lost. The first write that fails after
the tracker's retries stops delivery: it and everything after it wait in the outbox, in order.

Nothing from a test reaches the tracker live: titles are defanged (no mention, reference or
HTML), every marker-shaped text is broken, and a create's own marker is written last, the one
place the marker reader looks. A person's word stands: an issue closed as not planned is left
closed and silent (the cause is "muted"); one closed as completed while its cause still fails
is reopened with one comment. More creates than ``max_new`` in one call stop filing (a listing
that lost issues would otherwise file them all again): the rest waits in the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from deployloop.errors import TrackerError
from deployloop.issues.neutralize import code_span, defang, defuse_markers
from deployloop.issues.outbox import Entry, Outbox
from deployloop.issues.records import IssueAction, Standing
from deployloop.issues.text import TITLE_LIMIT
from deployloop.issues.tracker import Issue, Tracker, TrackerRejected, marker
from deployloop.redact import Redactor, truncate_body


@dataclass(frozen=True, slots=True)
class Done:
    """One write that reached the tracker (for events and the session log)."""

    action: str  # created, adopted, commented, closed, reopened, re-keyed
    fingerprint: str
    number: int
    title: str


@dataclass
class SyncResult:
    """What one ``apply`` did: fingerprint → issue number per kind of write, and what waits."""

    created: dict[str, int] = field(default_factory=dict)
    adopted: dict[str, int] = field(default_factory=dict)  # create skipped: issue already there
    commented: dict[str, int] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)
    reopened: dict[str, int] = field(default_factory=dict)
    muted: dict[str, int] = field(default_factory=dict)  # issue closed as not planned: quiet
    rekeyed: dict[str, int] = field(default_factory=dict)  # marker moved to the cause's key
    warnings: list[str] = field(default_factory=list)  # the tracker's, one line each
    deferred: list[str] = field(default_factory=list)  # titles over max_new_per_iteration
    skipped: list[str] = field(default_factory=list)  # updates with no issue to update
    rejected: list[str] = field(default_factory=list)  # writes the tracker refused for good
    done: list[Done] = field(default_factory=list)
    dry_run: list[str] = field(default_factory=list)  # "would create issue '…'"
    queued: int = 0  # writes waiting in the outbox after this call
    replayed: int = 0  # outbox writes delivered by this call
    error: str | None = None  # why delivery stopped, when it did

    @property
    def issue_numbers(self) -> dict[str, int]:
        """fingerprint → the issue that now stands for it (for triage.with_issue_numbers)."""
        numbers: dict[str, int] = {}
        parts = (self.rekeyed, self.muted, self.commented, self.closed, self.reopened, self.adopted)
        for part in (*parts, self.created):
            numbers.update(part)
        return numbers


def apply(
    actions: Sequence[IssueAction],
    tracker: Tracker,
    outbox: Outbox,
    redactor: Redactor,
    dry_run: bool = False,
    verify: bool = False,
    max_new: int | None = None,
    listed: bool = False,
) -> SyncResult:
    """Replay the outbox, then deliver ``actions``, in order; see the module docstring.

    ``max_new``: at most this many issues created by this call (None: no limit).
    ``listed``: the caller refreshed the tracker's listing for this iteration already."""
    result = SyncResult()
    cleaned = [_clean(action, redactor) for action in actions]
    result.deferred = [a.title for a in cleaned if a.kind == "defer"]
    if dry_run:
        waiting = len(outbox.pending())
        if waiting:
            result.dry_run.append(f"would replay {waiting} write(s) waiting in the outbox")
        result.dry_run.extend(describe(a) for a in cleaned)
        return result
    queue = [*outbox.pending(), *(Entry(a) for a in cleaned if a.kind != "defer")]
    if queue and not listed:
        tracker.refresh()  # one fresh listing per iteration, read only when needed
    try:
        _deliver_all(queue, tracker, outbox, result, redactor, verify, max_new)
    finally:
        result.warnings = [redactor.redact(line) for line in tracker.warnings()]
    return result


def _deliver_all(
    queue: list[Entry],
    tracker: Tracker,
    outbox: Outbox,
    result: SyncResult,
    redactor: Redactor,
    verify: bool,
    max_new: int | None,
) -> None:
    for index, entry in enumerate(queue):
        try:
            _deliver(entry, tracker, result, verify or entry.replay, max_new)
        except TrackerRejected as exc:
            # Reported, not queued: a write refused for good would block the queue forever.
            result.rejected.append(redactor.redact(str(exc)))
            continue
        except TrackerError as exc:
            result.error = redactor.redact(str(exc))
            rest = [_requeued(e, result.error) for e in queue[index:]]
            outbox.save(rest)
            result.queued = len(rest)
            return
        result.replayed += entry.replay
    outbox.save([])


class FilingStopped(TrackerError):
    """More new issues than allowed in one call: the writes wait in the outbox."""


def _stop_storm(result: SyncResult, max_new: int | None) -> None:
    """Raise FilingStopped before a create past ``max_new``: triage never asks for that many,
    so the tracker's listing (or the state) must have lost issues — never file them again."""
    if max_new is not None and len(result.created) >= max_new:
        raise FilingStopped(
            f"stopped filing: {len(result.created)} issues created this iteration already "
            f"(max_new_per_iteration = {max_new}); the tracker's listing may be incomplete"
        )


def _deliver(
    entry: Entry, tracker: Tracker, result: SyncResult, verify: bool, max_new: int | None = None
) -> None:
    """``verify``: this write may have landed before (a replay, a resumed iteration): look first."""
    action = entry.action
    if action.kind == "create":
        _create(action, tracker, result, max_new)
        return
    number = action.issue_number or _number_for(action.fingerprint, tracker, result)
    if number is None:
        result.skipped.append(f"{action.kind} {action.title!r}: no issue for {action.fingerprint}")
        return
    if action.kind == "rekey":
        _rekey(action, action.aliases[0], number, tracker, result)
        return
    if _respect_human(action, number, tracker, result):
        return
    if action.kind == "close":
        tracker.close(number, action.body, verify=verify)
        _record(result, result.closed, "closed", action, number)
    elif action.kind == "reopen":
        tracker.reopen(number, action.body, verify=verify)
        _record(result, result.reopened, "reopened", action, number)
    else:
        tracker.comment(number, action.body, verify=verify)
        _record(result, result.commented, "commented", action, number)


def _respect_human(action: IssueAction, number: int, tracker: Tracker, result: SyncResult) -> bool:
    """True when a person's close decides this write: closed as not planned, it is skipped
    (muted); closed as completed while the cause still fails, the issue is reopened with
    one comment instead."""
    known = tracker.existing().get(action.fingerprint)
    if known is None or known.number != number or known.state != "closed":
        return False
    if known.muted:
        result.muted.setdefault(action.fingerprint, number)
        return True
    if action.kind != "comment" or action.failing_on is None:
        return False
    tracker.reopen(number, _still_failing(action.failing_on, action.body))
    _record(result, result.reopened, "reopened", action, number)
    return True


def _still_failing(version: str, detail: str) -> str:
    """The one comment that reopens an issue a person closed as completed while its cause
    still fails (issue 16: "still failing on <version>")."""
    why = f"Still failing on {code_span(version)}: reopened, as it was closed as completed "
    return why + "while its tests still fail." + (f"\n\n{detail}" if detail else "")


def _create(action: IssueAction, tracker: Tracker, result: SyncResult, max_new: int | None) -> None:
    """File the cause's issue unless one stands for it: found by its marker under the
    action's fingerprint or one of its aliases (re-keyed then), open, muted or recently
    closed (reopened)."""
    known, alias = _standing(action, tracker)
    if known is None:
        _stop_storm(result, max_new)
        issue = tracker.create(action.title, action.body, action.labels)
        _record(result, result.created, "created", action, issue.number)
        return
    if alias is not None:
        _rekey(action, alias, known.number, tracker, result)
    if known.muted:
        result.muted.setdefault(action.fingerprint, known.number)
    elif known.state == "open":
        _record(result, result.adopted, "adopted", action, known.number)
    else:  # closed as completed within reopen_days (_standing): the body is known there
        tracker.reopen(known.number, _still_failing(action.failing_on or "unknown", ""))
        _record(result, result.reopened, "reopened", action, known.number)


def standing(tracker: Tracker, reopen_days: float) -> dict[str, Standing]:
    """fingerprint → how its issue stands, for every issue a create would adopt, reopen or
    leave muted (``_standing``): triage counts none of these as new (refresh first)."""
    found: dict[str, Standing] = {}
    for fp, issue in tracker.existing().items():
        if issue.muted:
            found[fp] = Standing.MUTED
        elif issue.state == "open":
            found[fp] = Standing.OPEN
        elif _recently_closed(issue, reopen_days):
            found[fp] = Standing.CLOSED
    return found


def _standing(action: IssueAction, tracker: Tracker) -> tuple[Issue | None, str | None]:
    """The issue that stands for a create's cause, and the alias it was found under (None:
    its own fingerprint): the first print, in order, whose issue is open, muted or closed
    within ``reopen_days``."""
    existing = tracker.existing()
    for fp in (action.fingerprint, *action.aliases):
        issue = existing.get(fp)
        if issue is not None and (
            issue.muted or issue.state == "open" or _recently_closed(issue, action.reopen_days)
        ):
            return issue, None if fp == action.fingerprint else fp
    return None, None


def _rekey(
    action: IssueAction, old: str, number: int, tracker: Tracker, result: SyncResult
) -> None:
    tracker.rekey(number, old, action.fingerprint)
    _record(result, result.rekeyed, "re-keyed", action, number)


def _recently_closed(issue: Issue, days: float | None) -> bool:
    if days is None or issue.closed_at is None:
        return False
    closed = datetime.fromisoformat(issue.closed_at.replace("Z", "+00:00"))
    if closed.tzinfo is None:
        closed = closed.replace(tzinfo=UTC)
    return datetime.now(UTC) - closed <= timedelta(days=days)


def _number_for(fp: str, tracker: Tracker, result: SyncResult) -> int | None:
    """The issue of a cluster whose number the caller did not know (filed this iteration, or
    state lost): what this call created, else the tracker's listing."""
    if fp in result.created or fp in result.adopted:
        return result.created.get(fp) or result.adopted[fp]
    issue = tracker.existing().get(fp)
    return issue.number if issue is not None else None


def _record(
    result: SyncResult, into: dict[str, int], what: str, action: IssueAction, number: int
) -> None:
    into.setdefault(action.fingerprint, number)
    result.done.append(Done(what, action.fingerprint, number, action.title))


def _requeued(entry: Entry, error: str) -> Entry:
    attempts = entry.attempts + 1 if entry.replay else entry.attempts
    return replace(entry, attempts=attempts, error=error, replay=True)


def _clean(action: IssueAction, redactor: Redactor) -> IssueAction:
    """No secret leaves, nothing live from a test, and nothing GitHub would refuse for its
    size; a create's body ends with its own marker, the only one it carries."""
    title = defang(redactor.redact(action.title).replace("\n", " "))
    if len(title) > TITLE_LIMIT:
        title = title[: TITLE_LIMIT - 1] + "…"
    own = marker(action.fingerprint)
    body = defuse_markers(redactor.redact(action.body).rstrip().removesuffix(own))
    if action.kind == "create":
        body = f"{body.rstrip()}\n\n{own}\n"
    return replace(action, title=title, body=truncate_body(body))


def describe(action: IssueAction) -> str:
    """What a dry run prints for ``action``."""
    where = f"#{action.issue_number}" if action.issue_number else "the issue of"
    first = action.body.strip().splitlines()[0] if action.body.strip() else ""
    if action.kind == "create":
        return f"would create issue '{action.title}' (labels: {', '.join(action.labels) or 'none'})"
    if action.kind == "defer":
        return f"would defer issue '{action.title}' (max_new_per_iteration reached)"
    if action.kind == "rekey":
        return f"would re-key {where} '{action.title}' to {action.fingerprint}"
    verb = {"comment": "comment on", "close": "close", "reopen": "reopen"}[action.kind]
    return f"would {verb} {where} '{action.title}': {first[:160]}"
