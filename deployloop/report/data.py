"""The report's facts: one ``ReportData`` built from the state store alone.

Renderers (markdown, HTML) only format these; every decision about what the night meant —
green or not, what still fails and since when, which issue was verified fixed where — is here.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from deployloop.errors import UsageError
from deployloop.events import FailureCluster, NotificationSent
from deployloop.logical import Tally, tally
from deployloop.models import CaseResult, SuiteRun
from deployloop.report import versions
from deployloop.report.records import (
    Budget,
    ClusterInfo,
    FailingPhase,
    FlakyTest,
    Gate,
    Headline,
    IssueInfo,
    IterationInfo,
    Notification,
    PhaseStats,
    ReportData,
    SlowTest,
)
from deployloop.report.story import IssueEvent, Story, as_int, read_story
from deployloop.state import SessionRow, Store

SLOWEST = 10

UNFINISHED = ("running", "interrupted")  # left to be resumed: no verdict yet


def build(store: Store, session_id: str | None = None) -> ReportData:
    """Everything the morning report says about one session (the latest when None)."""
    row = store.session(session_id)
    if row is None:
        raise UsageError(f"no session {session_id!r}" if session_id else "no session found")
    story = read_story(store, row.id)
    ran = _Ran.read(store.stream_runs(row.id), story)
    iterations = tuple(_iterations(store.iterations(row.id), ran, story))
    phases = _phase_order(story.phase_order, iterations)
    clusters = tuple(
        replace(c, muted_by=story.muted.get(c.fingerprint)) if c.status == "open" else c
        for c in _clusters(store.clusters(row.id), story, iterations)
    )
    return ReportData(
        session=row.id,
        name=row.name,
        directory=str(row.directory),
        generated=time.time(),
        headline=_headline(row, iterations, clusters, story.end_reason),
        phases=phases,
        iterations=iterations,
        clusters=clusters,
        issues=_issues(story.issues),
        flaky=_flaky(story.flaky),
        slowest=ran.slowest,
        waits=tuple(story.waits),
        redeploy_problems=tuple(story.redeploy_problems),
        notifications=tuple(
            Notification(e.ts, e.notice, e.via, e.ok, e.title)
            for _, e in store.story(row.id, NotificationSent)
        ),
        budget=_budget(row, iterations, story.end_reason),
        versions=versions.timeline(store, row.id, iterations),
        causes=versions.cause_lines(store.clusters(row.id), iterations),
        not_started=versions.not_started(store, row.id),
    )


@dataclass(frozen=True, slots=True)
class _PhaseRuns:
    """What one phase's runs of one iteration add up to: their tests and harness errors."""

    counts: Tally = field(default_factory=Tally)
    harness_errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Ran:
    """The session's runs, read one at a time and counted (never held all at once: a night of
    100,000-failure iterations would be gigabytes): per iteration, per phase in run order."""

    phases: Mapping[int, Mapping[str, _PhaseRuns]]
    slowest: tuple[SlowTest, ...]  # the SLOWEST slowest tests of the last iteration that ran any

    @classmethod
    def read(cls, runs: Iterable[tuple[int, SuiteRun, Iterator[CaseResult]]], story: Story) -> _Ran:
        phases: dict[int, dict[str, _PhaseRuns]] = {}
        slowest: list[SlowTest] = []
        for n, run, cases in runs:
            if n not in phases:
                phases[n], slowest = {}, []  # runs come in iteration order
            flaky = story.flaky.get(n, {})
            forgiven = {test for test, where in flaky.items() if where == run.phase}
            timed: list[SlowTest] = []
            counts = tally(_timed(run, cases, timed), forgiven)
            slowest = heapq.nlargest(SLOWEST, [*slowest, *timed], key=_seconds)
            was = phases[n].get(run.phase, _PhaseRuns())
            errors = (f"{run.suite}: {run.harness_error}",) if run.harness_error else ()
            phases[n][run.phase] = _PhaseRuns(was.counts + counts, was.harness_errors + errors)
        return cls(phases, tuple(slowest))


def _timed(
    run: SuiteRun, cases: Iterable[CaseResult], slowest: list[SlowTest]
) -> Iterator[CaseResult]:
    """``cases`` as they pass; the SLOWEST slowest of them with a time kept in ``slowest``
    (ties: the first seen), as each comes."""
    for case in cases:
        if case.duration_s is not None:
            slow = SlowTest(case.id, run.phase, run.suite, case.duration_s, str(case.outcome))
            if len(slowest) < SLOWEST or slow.duration_s > slowest[-1].duration_s:
                slowest[:] = heapq.nlargest(SLOWEST, [*slowest, slow], key=_seconds)
        yield case


def _seconds(test: SlowTest) -> float:
    return test.duration_s


def _iterations(
    rows: Sequence[Mapping[str, Any]], ran: _Ran, story: Story
) -> Iterable[IterationInfo]:
    for row in rows:
        n = int(row["n"])
        data = row.get("data") or {}
        verdicts: Mapping[str, Any] = data.get("phases") or {}
        stats = _phase_stats(ran.phases.get(n, {}), verdicts, story.gates.get(n, []))
        yield IterationInfo(
            n=n,
            version=row.get("version"),
            started=float(row["started"]),
            ended=row.get("ended"),
            duration_s=_duration(row, data),
            green=None
            if row.get("ended") is None or row.get("green") is None
            else bool(row["green"]),
            phases=stats,
            gates=tuple(story.gates.get(n, [])),
            flaky=tuple(sorted(story.flaky.get(n, {}))),
            failed_first=story.failed_first.get(n),
            skipped_phases=tuple(story.skipped.get(n, [])),
        )


def _duration(row: Mapping[str, Any], data: Mapping[str, Any]) -> float | None:
    if data.get("duration_s") is not None:
        return float(data["duration_s"])
    if row.get("ended") is not None:
        return float(row["ended"]) - float(row["started"])
    return None


def _phase_stats(
    runs: Mapping[str, _PhaseRuns], verdicts: Mapping[str, Any], gates: Sequence[Gate]
) -> tuple[PhaseStats, ...]:
    names = list(dict.fromkeys([*verdicts, *runs, *(g.phase for g in gates)]))
    out = []
    for name in names:
        mine = runs.get(name, _PhaseRuns())
        counts = mine.counts
        passed = verdicts.get(name)
        if passed is None and any(g.phase == name for g in gates):
            passed = all(g.passed for g in gates if g.phase == name)
        out.append(
            PhaseStats(
                phase=name,
                passed=counts.passing(),
                failed=counts.failed,
                errors=counts.errors,
                skipped=counts.skipped,
                xfailed=counts.xfailed,
                xpassed=counts.xpassed,
                gate_passed=None if passed is None else bool(passed),
                harness_errors=mine.harness_errors,
            )
        )
    return tuple(out)


def _phase_order(seen: Sequence[str], iterations: Sequence[IterationInfo]) -> tuple[str, ...]:
    names = list(seen)
    for it in iterations:
        names += [p.phase for p in it.phases if p.phase not in names]
    return tuple(names)


def _clusters(
    records: Mapping[str, Mapping[str, Any]], story: Story, iterations: Sequence[IterationInfo]
) -> tuple[ClusterInfo, ...]:
    """The triage records when there are any; otherwise the clusters the phases showed."""
    if records:
        found = [_cluster_from_record(fp, data) for fp, data in records.items()]
    else:
        found = _clusters_from_events(story, iterations)
    rank = {"open": 0, "flaky": 1, "fixed": 2}
    return tuple(sorted(found, key=lambda c: (rank.get(c.status, 3), c.first_seen_iteration or 0)))


def _cluster_from_record(fp: str, d: Mapping[str, Any]) -> ClusterInfo:
    return ClusterInfo(
        fingerprint=str(d.get("fingerprint") or fp),
        message=str(d.get("message") or d.get("title") or ""),
        error_type=str(d.get("error_type") or ""),
        phase=str(d.get("phase") or ""),
        tests=tuple(str(t) for t in d.get("tests") or ()),
        first_seen_iteration=as_int(d.get("first_seen_iteration")),
        first_seen_version=d.get("first_seen_version"),
        last_seen_iteration=as_int(d.get("last_seen_iteration")),
        last_seen_version=d.get("last_seen_version"),
        status=str(d.get("status") or "open"),
        size=as_int(d.get("count")) or len(d.get("tests") or ()),
        issue_number=as_int(d.get("issue_number")),
        fixed_in=d.get("fixed_in"),
        closed_at=d.get("closed_at"),
    )


def _clusters_from_events(story: Story, iterations: Sequence[IterationInfo]) -> list[ClusterInfo]:
    versions = {it.n: it.version for it in iterations}
    order = sorted(story.clusters)
    last = iterations[-1].n if iterations else (order[-1] if order else None)
    seen: dict[str, tuple[str, FailureCluster, int, int]] = {}
    for n in order:
        for phase, cluster in story.clusters[n]:
            fp = cluster.fingerprint
            first = seen[fp][2] if fp in seen else n
            seen[fp] = (phase, cluster, first, n)
    out = []
    for fp, (phase, cluster, first, latest) in seen.items():
        following = [n for n in versions if n > latest]
        out.append(
            ClusterInfo(
                fingerprint=fp,
                message=cluster.message,
                error_type="",
                phase=phase,
                tests=cluster.tests,
                first_seen_iteration=first,
                first_seen_version=versions.get(first),
                last_seen_iteration=latest,
                last_seen_version=versions.get(latest),
                status="open" if latest == last else "fixed",
                size=cluster.count or len(cluster.tests),
                fixed_in=versions.get(min(following)) if following and latest != last else None,
            )
        )
    return out


def _issues(events: Sequence[IssueEvent]) -> tuple[IssueInfo, ...]:
    """One entry per issue number (per fingerprint for a dry run, which has no number)."""
    grouped: dict[str, list[IssueEvent]] = {}
    for event in events:
        key = f"#{event.number}" if event.number is not None else f"fp:{event.fingerprint}"
        grouped.setdefault(key, []).append(event)
    out = []
    for group in grouped.values():
        named = next((e for e in group if e.step.action == "create"), group[-1])
        steps = tuple(e.step for e in group)
        out.append(IssueInfo(named.number, named.title, named.fingerprint, steps))
    return tuple(sorted(out, key=lambda i: (i.number is None, i.number or 0)))


def _flaky(by_iteration: Mapping[int, Mapping[str, str]]) -> tuple[FlakyTest, ...]:
    tests: dict[tuple[str, str], list[int]] = {}
    for n in sorted(by_iteration):
        for test, phase in by_iteration[n].items():
            tests.setdefault((test, phase), []).append(n)
    ranked = sorted(tests.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return tuple(FlakyTest(test, phase, tuple(ns)) for (test, phase), ns in ranked)


def _budget(row: SessionRow, iterations: Sequence[IterationInfo], reason: str) -> Budget:
    return Budget(
        started=row.started,
        deadline=row.deadline,
        ended=row.ended,
        iterations_used=len(iterations),
        max_iterations=row.max_iterations,
        status=row.status,
        exit_code=row.exit_code,
        reason=reason,
    )


# the verdict -------------------------------------------------------------------------------
def _headline(
    row: SessionRow,
    iterations: Sequence[IterationInfo],
    clusters: Sequence[ClusterInfo],
    reason: str,
) -> Headline:
    """Green, or what still fails; the session's end reason when it ran out of budget."""
    finished = [it for it in iterations if it.green is not None]
    if not finished:
        text = "no iteration finished yet" if row.status in UNFINISHED else "no iteration ran"
        return Headline(row.status if row.status in UNFINISHED else "empty", text, None, None)
    last = finished[-1]
    where = f"iteration {last.n} on version {last.version or 'unknown'}"
    if last.green:
        return Headline("green", f"every gate passed in {where}", last.version, last.n)
    failing = tuple(_since(name, finished) for name in _failing_phases(last))
    open_clusters = tuple(c for c in clusters if c.status == "open")
    names = ", ".join(f.phase for f in failing) or "gates"
    state = row.status if row.status in UNFINISHED else "failing"
    text = f"{names} still failing in {where}"
    if state == "failing" and reason:
        text += f" ({reason})"
    return Headline(state, text, last.version, last.n, failing, open_clusters)


def _failing_phases(last: IterationInfo) -> list[str]:
    return [p.phase for p in last.phases if p.gate_passed is False]


def _since(phase: str, finished: Sequence[IterationInfo]) -> FailingPhase:
    """Walk back over the iterations where the phase failed (or did not run) to where it began."""
    since = finished[-1]
    for it in reversed(finished):
        stats = it.phase(phase)
        if stats is not None and stats.gate_passed:
            break
        if stats is not None:
            since = it
    gates = tuple(g for g in finished[-1].gates if g.phase == phase and not g.passed)
    return FailingPhase(phase, since.n, since.version, gates)
