"""The session's story as the state keeps it: what the report tells, by iteration.

``statesinks.StoryRecorder`` stores these events while the session runs; sessions recorded
before it existed have no story, and their report shows what the runs and iterations say.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from deployloop.events import (
    FailedFirst,
    FailureCluster,
    IssueDone,
    Muted,
    PhaseEnd,
    RedeployTimeout,
    SessionEnd,
    SkippedPhases,
    Trigger,
    VersionSeen,
)
from deployloop.report.records import Gate, IssueStep, RedeployProblem, RedeployWait
from deployloop.sessionlog import describe
from deployloop.state import Store

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IssueEvent:
    number: int | None
    title: str
    fingerprint: str
    step: IssueStep


@dataclass
class Story:
    """What the state tells beyond runs and clusters, grouped by iteration."""

    gates: dict[int, list[Gate]] = field(default_factory=dict)
    flaky: dict[int, dict[str, str]] = field(default_factory=dict)  # test → phase
    clusters: dict[int, list[tuple[str, FailureCluster]]] = field(default_factory=dict)
    failed_first: dict[int, tuple[int, int]] = field(default_factory=dict)
    skipped: dict[int, list[str]] = field(default_factory=dict)
    issues: list[IssueEvent] = field(default_factory=list)
    waits: list[RedeployWait] = field(default_factory=list)
    redeploy_problems: list[RedeployProblem] = field(default_factory=list)
    phase_order: list[str] = field(default_factory=list)
    end_reason: str = ""
    muted: dict[str, int] = field(default_factory=dict)  # fingerprint → its not-planned issue


def read_story(store: Store, session_id: str) -> Story:
    """The story of ``session_id`` from the state store."""
    story = Story()
    for n, end in _in_iterations(store.story(session_id, PhaseEnd)):
        _phase_end(story, n, end)
    for n, quick in _in_iterations(store.story(session_id, FailedFirst)):
        story.failed_first[n] = (quick.passed, quick.total)
    for n, skipped in _in_iterations(store.story(session_id, SkippedPhases)):
        story.skipped.setdefault(n, []).extend(skipped.phases)
    versions = {int(row["n"]): row["version"] for row in store.iterations(session_id)}
    for at, done in store.story(session_id, IssueDone):
        version = None if at is None else versions.get(at)
        step = IssueStep(action(done.action), at, version, done.ts, done.dry_run)
        story.issues.append(IssueEvent(done.number, done.title, done.fingerprint, step))
    for at, seen in store.story(session_id, VersionSeen):
        story.waits.append(RedeployWait(at, seen.version, seen.after_s, seen.ts))
    problems: list[tuple[int | None, Trigger | RedeployTimeout]] = [
        (at, e) for at, e in store.story(session_id, Trigger) if not e.ok
    ]
    problems += store.story(session_id, RedeployTimeout)
    for at, problem in sorted(problems, key=lambda found: found[1].ts):
        story.redeploy_problems.append(RedeployProblem(at, describe(problem), problem.ts))
    story.muted = {m.fingerprint: m.number for _, m in store.story(session_id, Muted)}
    ends = store.story(session_id, SessionEnd)
    story.end_reason = ends[-1][1].reason if ends else ""
    return story


def _in_iterations(found: Iterable[tuple[int | None, T]]) -> Iterable[tuple[int, T]]:
    """The records that belong to an iteration (a phase is always judged inside one)."""
    return ((n, record) for n, record in found if n is not None)


def _phase_end(story: Story, n: int, end: PhaseEnd) -> None:
    if end.phase not in story.phase_order:
        story.phase_order.append(end.phase)
    story.gates.setdefault(n, []).extend(
        Gate(end.phase, v.gate, v.passed, v.measured, v.threshold, v.reason, v.describe())
        for v in end.gates
    )
    for test in end.flaky:
        story.flaky.setdefault(n, {})[test] = end.phase
    story.clusters.setdefault(n, []).extend((end.phase, c) for c in end.clusters)


# The tracker reports in the past tense ("created"); the report speaks of create/comment/close.
_PRESENT = {"created": "create", "commented": "comment", "updated": "comment", "closed": "close",
            "reopened": "reopen"}  # fmt: skip


def action(raw: str) -> str:
    return _PRESENT.get(raw, raw)


def as_int(value: Any) -> int | None:
    """State values are trusted for shape only: a bad one reads as missing."""
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None
