"""Events: the core reports what happens through one Reporter; sinks render, log and persist.

``kinds`` holds one frozen dataclass per kind of event of the run itself and ``Event``, the
union of every kind (``writes``, ``target`` and ``telling`` hold the other groups); ``base``
their JSON; ``journal`` the ``events.jsonl`` sink and reader.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from deployloop.events.base import EventBase, EventShapeError
from deployloop.events.journal import Journal, journal_record, read_journal, scrub
from deployloop.events.kinds import (
    KINDS,
    Event,
    FailedFirst,
    FailedFirstSuite,
    FailureCluster,
    IterationEnd,
    IterationStart,
    JUnitRepaired,
    NoTime,
    PhaseEnd,
    PhaseStart,
    RunEvent,
    SessionEnd,
    SessionStart,
    SkippedPhases,
    SuiteEnd,
    SuiteStart,
    event_from_json,
)
from deployloop.events.target import (
    Deploying,
    Health,
    Mixed,
    RedeployTimeout,
    RolloutProgress,
    Settled,
    TargetEvent,
    Trigger,
    VersionSeen,
    Waiting,
)
from deployloop.events.telling import (
    CommitStatusSet,
    HookRan,
    MetricsFailed,
    NotificationSent,
    TellEvent,
)
from deployloop.events.writes import (
    Deferred,
    DryRun,
    IssueDone,
    Muted,
    OutboxQueued,
    ReportWritten,
    TrackerWarning,
    WriteEvent,
)

Sink = Callable[[Event], None]

__all__ = [
    "KINDS",
    "CommitStatusSet",
    "Deferred",
    "Deploying",
    "DryRun",
    "Event",
    "EventBase",
    "EventShapeError",
    "FailedFirst",
    "FailedFirstSuite",
    "FailureCluster",
    "Health",
    "HookRan",
    "IssueDone",
    "IterationEnd",
    "IterationStart",
    "JUnitRepaired",
    "Journal",
    "MetricsFailed",
    "Mixed",
    "Muted",
    "NoTime",
    "NotificationSent",
    "OutboxQueued",
    "PhaseEnd",
    "PhaseStart",
    "RedeployTimeout",
    "ReportWritten",
    "Reporter",
    "RolloutProgress",
    "RunEvent",
    "SessionEnd",
    "SessionStart",
    "Settled",
    "Sink",
    "SkippedPhases",
    "SuiteEnd",
    "SuiteStart",
    "TargetEvent",
    "TellEvent",
    "TrackerWarning",
    "Trigger",
    "VersionSeen",
    "Waiting",
    "WriteEvent",
    "event_from_json",
    "journal_record",
    "read_journal",
    "scrub",
]


class Reporter:
    """Fans each event out to every sink, in order; one event at a time, whichever thread emits
    (suites of a phase run side by side: dispatch.py), so sinks never see two at once."""

    def __init__(self, *sinks: Sink) -> None:
        self.sinks = list(sinks)
        self._lock = threading.RLock()  # re-entrant: a sink may emit in turn

    def add(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def emit(self, event: Event) -> None:
        with self._lock:
            for sink in self.sinks:
                sink(event)
