"""The kinds of event, one frozen dataclass each, and ``Event``: their union.

A sink ``match``es on these types, so mypy checks every read; a sink that must speak of every
kind ends its ``match`` with ``assert_never(event)``: a new kind fails ``make lint`` until it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias, get_args

from deployloop.events.base import EventBase, EventShapeError
from deployloop.models import Verdict


@dataclass(frozen=True, slots=True)
class FailureCluster:
    """Failures of one phase that share a fingerprint (``summary.Cluster`` as the log shows it)."""

    fingerprint: str
    count: int
    message: str
    tests: tuple[str, ...]


# the session, its iterations, phases and suites --------------------------------------------------
@dataclass(frozen=True, slots=True)
class SessionStart(EventBase):
    """A run opened (or resumed) the session."""

    kind = "session_start"
    session: str
    config: str  # the config file's path
    resumed: bool
    deadline: float | None  # wall time
    max_iterations: int
    logs_dir: str
    notes: tuple[str, ...] = ()  # what the start did that a person should know (state recovered)


@dataclass(frozen=True, slots=True)
class IterationStart(EventBase):
    """An iteration began on the version staging reported (None: it could not say)."""

    kind = "iteration_start"
    iteration: int
    version: str | None


@dataclass(frozen=True, slots=True)
class PhaseStart(EventBase):
    """A phase's suites are about to run."""

    kind = "phase_start"
    phase: str


@dataclass(frozen=True, slots=True)
class SuiteStart(EventBase):
    """One pass of a suite starts (the live view tails its progress file)."""

    kind = "suite_start"
    phase: str
    suite: str
    tests: int | None  # how many tests are expected, when known
    progress: str  # the live plugin's progress file
    previous_s: float | None  # the suite's last full wall time
    pass_name: str  # full, rerun, failed-first


@dataclass(frozen=True, slots=True)
class SuiteEnd(EventBase):
    """One pass of a suite ended; ``harness_error`` says why its result cannot be trusted."""

    kind = "suite_end"
    phase: str
    suite: str
    counts: Mapping[str, int]  # outcome value → cases
    wall_s: float
    harness_error: str | None
    exit_code: int | None
    pass_name: str


@dataclass(frozen=True, slots=True)
class PhaseEnd(EventBase):
    """A phase was judged: its gates, its failure clusters and its flaky tests."""

    kind = "phase_end"
    phase: str
    passed: bool
    verdicts: tuple[str, ...]  # Verdict.describe() lines
    gates: tuple[Verdict, ...] = ()  # the same verdicts whole (absent from older journals)
    clusters: tuple[FailureCluster, ...] = ()
    flaky: tuple[str, ...] = ()  # test ids that passed on rerun


@dataclass(frozen=True, slots=True)
class SkippedPhases(EventBase):
    """Phases left out of this iteration (an earlier fail_fast phase failed)."""

    kind = "skipped_phases"
    phases: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class NoTime(EventBase):
    """A phase not started: its expected duration (``needs_s``, from earlier runs' wall times)
    is more than the ``left_s`` seconds before the session deadline. The session ends."""

    kind = "no_time"
    phase: str
    needs_s: float
    left_s: float

    def describe(self) -> str:
        """``phase P skipped: needs ~25 min, 12 min left``: the log's and the verdict's words."""
        return (
            f"phase {self.phase} skipped: needs ~{_rough(self.needs_s)}, {_rough(self.left_s)} left"
        )


@dataclass(frozen=True, slots=True)
class FailedFirst(EventBase):
    """The quick retest of what failed before, on a new version: ``passed`` of ``total``."""

    kind = "failed_first"
    passed: int
    total: int
    version: str | None


@dataclass(frozen=True, slots=True)
class IterationEnd(EventBase):
    """An iteration finished; ``duration_s`` in seconds."""

    kind = "iteration_end"
    iteration: int
    green: bool
    version: str | None
    duration_s: float
    failing: tuple[str, ...]  # phases whose gates failed


@dataclass(frozen=True, slots=True)
class SessionEnd(EventBase):
    """The run ended; ``reason`` in words, ``exit_code`` the process's."""

    kind = "session_end"
    status: str  # running (interrupted), green, failing, unreachable, stopped
    exit_code: int
    iterations: int
    reason: str


RunEvent: TypeAlias = (
    SessionStart
    | IterationStart
    | PhaseStart
    | SuiteStart
    | SuiteEnd
    | PhaseEnd
    | SkippedPhases
    | NoTime
    | FailedFirst
    | IterationEnd
    | SessionEnd
)


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


# the target: its health, its versions, the redeploy between iterations ---------------------------
@dataclass(frozen=True, slots=True)
class Health(EventBase):
    """A health check before the tests (reported when it fails)."""

    kind = "health"
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Mixed(EventBase):
    """Staging answered two versions around a run. ``suite`` set: that suite saw both (read
    before and after it); ``rerun`` says it runs again on ``to_version`` (once per iteration),
    else its result stands as "staging serves mixed versions". ``suite`` empty: the iteration
    saw two versions and, ``rerun``, restarts on ``to_version`` (once)."""

    kind = "mixed"
    from_version: str
    to_version: str
    suite: str = ""
    rerun: bool = True


@dataclass(frozen=True, slots=True)
class RolloutProgress(EventBase):
    """While settling on ``version``, a read answered the old one: the rollout is not done.

    ``seen`` of ``needed`` consecutive reads had answered ``version``; the count restarts."""

    kind = "rollout"
    version: str
    old_version: str
    seen: int
    needed: int


@dataclass(frozen=True, slots=True)
class Trigger(EventBase):
    """The redeploy trigger command ran."""

    kind = "trigger"
    command: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Waiting(EventBase):
    """Waiting for a redeploy (or the interval) before the next iteration."""

    kind = "waiting"
    tested: str | None  # the version just tested
    reason: str


@dataclass(frozen=True, slots=True)
class Deploying(EventBase):
    """Staging stopped answering its version: a deploy under way."""

    kind = "deploying"
    detail: str


@dataclass(frozen=True, slots=True)
class VersionSeen(EventBase):
    """A new version appeared ``after_s`` seconds into the wait."""

    kind = "version_seen"
    version: str
    after_s: float


@dataclass(frozen=True, slots=True)
class Settled(EventBase):
    """The new version stayed healthy ``seconds`` long: retesting."""

    kind = "settled"
    version: str
    seconds: float  # how long it was healthy


@dataclass(frozen=True, slots=True)
class RedeployTimeout(EventBase):
    """No new version came within ``[redeploy] timeout``; ``then``: retest or stop."""

    kind = "redeploy_timeout"
    tested: str | None  # the version just tested
    timeout_s: float
    then: str  # [redeploy] on_timeout


TargetEvent: TypeAlias = (
    Health
    | Mixed
    | Trigger
    | Waiting
    | RedeployTimeout
    | Deploying
    | VersionSeen
    | Settled
    | RolloutProgress
)


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


def _rough(seconds: float) -> str:
    """An estimate as said aloud: ``25 min``, or ``40 s`` under a minute."""
    return f"{round(seconds / 60)} min" if seconds >= 60 else f"{seconds:.0f} s"


TellEvent: TypeAlias = NotificationSent | HookRan | CommitStatusSet | MetricsFailed


Event: TypeAlias = RunEvent | WriteEvent | TargetEvent | TellEvent
KINDS: dict[str, type[Event]] = {cls.kind: cls for cls in get_args(Event)}


def event_from_json(record: Mapping[str, Any]) -> Event:
    """The event of a journal record; raises EventShapeError for an unknown kind or shape."""
    cls = KINDS.get(str(record.get("event")))
    if cls is None:
        raise EventShapeError(f"unknown event {record.get('event')!r}")
    return cls.from_json(record)
