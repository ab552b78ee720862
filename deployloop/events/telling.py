"""Events of telling people and systems: notifications, hooks, commit statuses, metrics.

Part of ``kinds.Event``; see ``kinds`` for how sinks read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from deployloop.events.base import EventBase


# telling people and systems: notifications, hooks, commit statuses, metrics -------------------
@dataclass(frozen=True, slots=True)
class NotificationSent(EventBase):
    """A notification (``notice``: red, green, new_cause, session_end, unreachable) went to
    ``via`` (the receiver's URL with its secrets hidden), or failed and waits in the outbox."""

    kind = "notification"
    notice: str
    via: str
    ok: bool
    title: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class HookRan(EventBase):
    """A ``[hooks]`` command ran for an event (``hook``: on_issue, on_red, ...)."""

    kind = "hook"
    hook: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class CommitStatusSet(EventBase):
    """A GitHub commit status (pending, success, failure, error) on a tested commit."""

    kind = "commit_status"
    sha: str
    state: str
    description: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MetricsFailed(EventBase):
    """The ``[metrics]`` textfile could not be written (the night goes on)."""

    kind = "metrics_failed"
    path: str
    error: str


TellEvent: TypeAlias = NotificationSent | HookRan | CommitStatusSet | MetricsFailed
