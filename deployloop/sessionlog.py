"""The human night log: ``session.md``, and the one-line wording the console shares with it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import assert_never

from deployloop.durations import format_duration
from deployloop.events import (
    CommitStatusSet,
    Deferred,
    Deploying,
    DryRun,
    Event,
    FailedFirst,
    FailedFirstSuite,
    Health,
    HookRan,
    IssueDone,
    IterationEnd,
    IterationStart,
    JUnitRepaired,
    MetricsFailed,
    Mixed,
    Muted,
    NotificationSent,
    NoTime,
    OutboxQueued,
    PhaseEnd,
    PhaseStart,
    RedeployTimeout,
    ReportWritten,
    RolloutProgress,
    RunEvent,
    SessionEnd,
    SessionStart,
    Settled,
    SkippedPhases,
    SuiteEnd,
    SuiteStart,
    TargetEvent,
    TellEvent,
    TrackerWarning,
    Trigger,
    VersionSeen,
    Waiting,
    WriteEvent,
)
from deployloop.events.caps import capped
from deployloop.gates import plural
from deployloop.logical import describe_counts
from deployloop.session import status_words


def describe(event: Event) -> str:
    """One grep-able line for an event: every kind has one (mypy checks each match is complete)."""
    if isinstance(event, RunEvent):
        return _run_line(event)
    if isinstance(event, WriteEvent):
        return _write_line(event)
    if isinstance(event, TellEvent):
        return _tell_line(event)
    return _target_line(event)


def _run_line(event: RunEvent) -> str:
    match event:
        case SessionStart():
            how = "resumed" if event.resumed else "started"
            notes = "".join(f"; {note}" for note in event.notes)
            return f"session {event.session} {how} ({event.config}){notes}"
        case IterationStart():
            return f"iteration {event.iteration} started on version {event.version or 'unknown'}"
        case PhaseStart():
            return f"phase {event.phase} started"
        case SuiteStart():
            return f"suite {event.phase}/{event.suite} started{_pass_label(event.pass_name)}"
        case SuiteEnd():
            return _suite_end(event)
        case PhaseEnd():
            return f"phase {event.phase}: {'PASSED' if event.passed else 'FAILED'}"
        case SkippedPhases():
            return f"phases not run: {', '.join(event.phases)} ({event.reason})"
        case NoTime() | JUnitRepaired():
            return event.describe()
        case FailedFirst() | FailedFirstSuite():
            return _failed_first(event)
        case IterationEnd():
            return _iteration_end(event)
        case SessionEnd():
            return _session_end(event)
        case _:
            assert_never(event)


def _write_line(event: WriteEvent) -> str:
    match event:
        case IssueDone():
            return _issue(event)
        case Deferred():
            return f"issue creation deferred (cap reached): {'; '.join(event.titles)}"
        case OutboxQueued():
            return (
                f"tracker unavailable ({event.error or 'error'}): "
                f"{event.queued} write(s) kept in the outbox"
            )
        case DryRun():
            return f"dry run: {event.detail}"
        case TrackerWarning():
            return f"WARNING tracker: {event.detail}"
        case Muted():
            return (
                f"cause {event.fingerprint} muted by #{event.number} (closed as not planned): "
                "not reported"
            )
        case ReportWritten() if not event.error:
            return f"report written: {', '.join(event.paths)}"
        case ReportWritten():
            return f"report NOT written: {event.error}"
        case _:
            assert_never(event)


def _target_line(event: TargetEvent) -> str:
    match event:
        case Health():
            return f"health {'ok' if event.ok else 'FAILED'}: {event.detail}"
        case Mixed():
            return _mixed(event)
        case RolloutProgress():
            return (
                f"rollout still in progress ({event.seen} of {event.needed}): "
                f"{event.old_version} answered while settling on {event.version}"
            )
        case Trigger():
            return f"redeploy trigger {'ran' if event.ok else 'FAILED'}: {event.detail}"
        case RedeployTimeout():
            then = (
                "retesting the same version"
                if event.then == "retest"
                else "stopping (on_timeout = stop)"
            )
            return (
                f"redeploy wait timed out: no new version within "
                f"{format_duration(event.timeout_s)} (tested {event.tested or 'unknown'}); {then}"
            )
        case Waiting():
            return f"waiting for redeploy (tested {event.tested or 'unknown'}): {event.reason}"
        case Deploying():
            return f"staging is deploying: {event.detail}"
        case VersionSeen():
            return f"{event.version} seen after {format_duration(event.after_s)}"
        case Settled():
            return f"settled on {event.version} ({format_duration(event.seconds)} healthy)"
        case _:
            assert_never(event)


def _tell_line(event: TellEvent) -> str:
    match event:
        case NotificationSent(ok=True):
            return f"notification {event.notice} sent to {event.via}: {event.title}"
        case NotificationSent():
            return (
                f"notification {event.notice} to {event.via} FAILED ({event.error}): "
                "kept in the outbox"
            )
        case HookRan():
            return f"hook {event.hook} {'ran' if event.ok else 'FAILED'}: {event.detail}"
        case CommitStatusSet(ok=True):
            return f"commit status {event.state} on {event.sha}: {event.description}"
        case CommitStatusSet():
            return f"commit status {event.state} on {event.sha} NOT set: {event.error}"
        case MetricsFailed():
            return f"metrics NOT written to {event.path}: {event.error}"
        case _:
            assert_never(event)


def _pass_label(pass_name: str) -> str:
    return "" if pass_name == "full" else f" [{pass_name}]"


def _failed_first(event: FailedFirst | FailedFirstSuite) -> str:
    """``failed-first: 12/14 now pass on v2`` (all suites); for one suite
    ``failed-first api/smoke: 10/10 now pass on v2 (live, before pytest exits)``, or the JUnit
    file's correction of such a line."""
    verdict = f"{event.passed}/{event.total} now pass on {event.version or 'unknown'}"
    if isinstance(event, FailedFirst):
        return f"failed-first: {verdict}"
    name = f"{event.phase}/{event.suite}"
    if event.corrects is not None:
        text = (
            f"failed-first {name} CORRECTED by its JUnit file: {verdict} "
            f"(the live stream said {event.corrects}/{event.total})"
        )
    else:
        when = " (live, before pytest exits)" if event.early else ""
        text = f"failed-first {name}: {verdict}{when}"
    if event.harness_error:
        text += f" — HARNESS ERROR: {event.harness_error}"
    return text


def _suite_end(event: SuiteEnd) -> str:
    text = (
        f"suite {event.phase}/{event.suite}{_pass_label(event.pass_name)}: "
        f"{describe_counts(event.counts)} in {format_duration(event.wall_s)}"
    )
    if event.harness_error:
        text += f" — HARNESS ERROR: {event.harness_error}"
    return text


def _mixed(event: Mixed) -> str:
    seen = f"{event.from_version} → {event.to_version}"
    if not event.suite:
        then = f"restarting it on {event.to_version}" if event.rerun else "going on"
        return f"version changed mid-iteration ({seen}): {then}"
    if event.rerun:
        return f"suite {event.suite} saw two versions ({seen}): rerunning it on {event.to_version}"
    pair = "/".join(sorted((event.from_version, event.to_version)))
    return (
        f"suite {event.suite} saw two versions again ({seen}): staging serves mixed versions {pair}"
    )


def _issue(event: IssueDone) -> str:
    prefix = "would " if event.dry_run else ""
    number = f" #{event.number}" if event.number else ""
    reason = f"{event.reason}: " if event.reason else ""
    return f"issue {prefix}{event.action}{number}: {reason}{event.title}"


def _iteration_end(event: IterationEnd) -> str:
    verdict = "all gates green" if event.green else f"failing: {', '.join(event.failing)}"
    took = format_duration(event.duration_s)
    version = event.version or "unknown version"
    return f"iteration {event.iteration} ended on {version}: {verdict} ({took})"


def _session_end(event: SessionEnd) -> str:
    return (
        f"session ended: {status_words(event.status)} after {event.iterations} iteration(s), "
        f"exit {event.exit_code}" + (f" — {event.reason}" if event.reason else "")
    )


class SessionLog:
    """Appends markdown entries to ``session.md`` as events arrive."""

    def __init__(self, path: Path, redact: Callable[[str], str] = str) -> None:
        self.path = path
        self.redact = redact
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: Event) -> None:
        text = self._entry(capped(event))
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(self.redact(text))

    def _entry(self, event: Event) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(event.ts))
        match event:
            case SessionStart():
                day = time.strftime("%Y-%m-%d %H:%M", time.localtime(event.ts))
                return f"# deployloop session {event.session}\n\n- {day} {describe(event)}\n"
            case IterationStart():
                version = event.version or "unknown version"
                return f"\n## Iteration {event.iteration} — {version}\n\n"
            case PhaseEnd():
                return _phase_block(stamp, event)
            case SessionEnd():
                return f"\n## Summary\n\n- {stamp} {describe(event)}\n"
            case _:
                return f"- {stamp} {describe(event)}\n"


def _phase_block(stamp: str, event: PhaseEnd) -> str:
    lines = [f"\n### {stamp} Phase {event.phase}: {'✅ passed' if event.passed else '❌ failed'}\n"]
    lines += [_item(v) for v in event.verdicts]
    if event.flaky:
        lines.append(f"- flaky (passed on rerun): {', '.join(event.flaky)}")
    for cluster in event.clusters:
        head = f"failing cluster `{cluster.fingerprint}` ({plural(cluster.count, 'test')})"
        lines.append(_item(f"{head}: {cluster.message}"))
        shown = cluster.tests[:20]
        lines += [f"  - {test}" for test in shown]
        if shown and cluster.count > len(shown):
            lines.append(f"  - … and {cluster.count - len(shown)} more")
    return "\n".join(lines) + "\n\n"


def _item(text: str) -> str:
    """A list item whose first line is ``text``'s; further lines (pytest's ``+ where`` lines,
    tracebacks) follow as a code block inside the item, not as stray bullets or paragraphs."""
    head, _, rest = text.strip("\n").partition("\n")
    if not rest.strip():
        return f"- {head}"
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", rest)), default=0))
    body = "\n".join(f"  {line}" for line in rest.splitlines())
    return f"- {head}\n\n  {fence}\n{body}\n  {fence}\n"
