"""The sinks that keep the state store current as events arrive.

``LiveStatus`` keeps the ``live`` record that ``status`` reads while a run works; ``StoryRecorder``
keeps, per iteration, what the morning report tells beyond suite runs and clusters (gates, flaky
tests, failed-first, skipped phases, issue writes, redeploy waits, the end reason), so the report
reads the state alone.

Both store text that came from suites and the target (a version string, a test id, an issue
title): it goes through the session's redactor first, so ``state.db`` holds no raw secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deployloop.events import (
    Event,
    FailedFirst,
    IssueDone,
    IterationEnd,
    IterationStart,
    Muted,
    NotificationSent,
    NoTime,
    PhaseEnd,
    PhaseStart,
    RedeployTimeout,
    SessionEnd,
    SessionStart,
    Settled,
    SkippedPhases,
    SuiteEnd,
    SuiteStart,
    Trigger,
    VersionSeen,
    Waiting,
)
from deployloop.events.caps import capped
from deployloop.events.journal import scrub
from deployloop.events.kinds import event_from_json
from deployloop.state import Store

# What a restarted iteration (a mixed version, a resumed run) tells afresh.
RESTARTED = (PhaseEnd, FailedFirst, SkippedPhases)


class LiveStatus:
    """Keeps the state's ``live`` record current for ``status`` (cheap: major events only);
    ``redact`` scrubs every string it stores."""

    def __init__(self, store: Store, session_id: str, redact: Callable[[str], str]) -> None:
        self.store = store
        self.session_id = session_id
        self.redact = redact

    def __call__(self, event: Event) -> None:
        changes = self._changes(event)
        if changes is not None:
            changes = scrub(changes, self.redact)
            changes.update(last_event=event.kind, last_event_ts=event.ts)
            self.store.update_live(self.session_id, changes)

    def _changes(self, event: Event) -> dict[str, Any] | None:
        """What ``event`` changes in the live record; None for an event it does not track."""
        match event:
            case IterationStart(iteration=n, version=version):
                return {"iteration": n, "version": version, "gates": {}}
            case PhaseStart(phase=phase):
                return {"phase": phase, "suite": None, "state": "running"}
            case SuiteStart(suite=suite):
                return {"suite": suite, "state": "running"}
            case PhaseEnd(phase=phase, passed=passed, verdicts=verdicts):
                gates = dict(self.store.live(self.session_id).get("gates", {}))
                gates[phase] = {"passed": passed, "verdicts": list(verdicts)}
                return {"gates": gates, "suite": None}
            case Waiting():
                return {"state": "waiting for redeploy", "phase": None, "suite": None}
            case SessionEnd(status=status):
                return {"state": status, "phase": None, "suite": None}
            case SessionStart() | SuiteEnd() | VersionSeen() | IterationEnd() | IssueDone():
                return {}
            case _:
                return None


class StoryRecorder:
    """Stores the report's events in the state, each under the iteration it happened in.

    A redeploy wait belongs to the iteration it follows; an event before any iteration to none.
    ``redact`` scrubs every string of an event before it is stored.
    """

    def __init__(self, store: Store, session_id: str, redact: Callable[[str], str]) -> None:
        self.store = store
        self.session_id = session_id
        self.redact = redact
        self.iteration: int | None = None

    def __call__(self, event: Event) -> None:
        match event:
            case IterationStart(iteration=n):
                self.iteration = n
                self.store.restart_story(self.session_id, n, RESTARTED)
            case (
                PhaseEnd() | FailedFirst() | SkippedPhases() | IssueDone() | VersionSeen()
                | Trigger() | RedeployTimeout() | SessionEnd() | NotificationSent() | NoTime()
                | Settled() | Muted()
            ):  # fmt: skip
                self.store.add_story(self.session_id, self.iteration, self._scrubbed(event))
            case _:
                pass

    def _scrubbed(self, event: Event) -> Event:
        """``event`` within its caps, every string of it redacted (its kind kept)."""
        record = scrub(capped(event).to_json(), self.redact)
        return event_from_json({**record, "event": event.kind})
