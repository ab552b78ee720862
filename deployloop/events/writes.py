"""Events of what the run writes: issues filed, deferred or queued, and the report.

Part of ``kinds.Event``; see ``kinds`` for how sinks read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from deployloop.events.base import EventBase


# what the run writes: issues and the report ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IssueDone(EventBase):
    """One tracker write that went through."""

    kind = "issue"
    action: str  # created, adopted, commented, closed, reopened (tracker.Done)
    number: int | None
    title: str
    fingerprint: str
    dry_run: bool
    reason: str = ""  # why, where it is not the action itself: "verified fixed in rev-0002"


@dataclass(frozen=True, slots=True)
class Deferred(EventBase):
    """Issues not created this iteration: over the new-issue cap."""

    kind = "deferred"
    titles: tuple[str, ...]  # issues not created: over max_new_per_iteration


@dataclass(frozen=True, slots=True)
class OutboxQueued(EventBase):
    """The tracker failed; ``queued`` writes wait in the outbox."""

    kind = "outbox"
    queued: int
    error: str | None


@dataclass(frozen=True, slots=True)
class DryRun(EventBase):
    """What a dry run would have written to the tracker."""

    kind = "dry_run"
    detail: str


@dataclass(frozen=True, slots=True)
class ReportWritten(EventBase):
    """The morning report was written to ``paths`` (or not, and why)."""

    kind = "report"
    paths: tuple[str, ...]
    error: str | None  # why no report was written


@dataclass(frozen=True, slots=True)
class TrackerWarning(EventBase):
    """A problem with the tracker worth a person's attention (e.g. labels GitHub dropped)."""

    kind = "tracker_warning"
    detail: str


@dataclass(frozen=True, slots=True)
class Muted(EventBase):
    """A cause whose issue a person closed as not planned: deployloop stays silent about it."""

    kind = "muted"
    fingerprint: str
    number: int


WriteEvent: TypeAlias = (
    IssueDone | Deferred | OutboxQueued | DryRun | TrackerWarning | Muted | ReportWritten
)
