"""The kinds of event of the run itself (session, iterations, phases, suites), one frozen
dataclass each, and ``Event``: the union of every kind, with ``writes``, ``target`` and
``telling``.

A sink ``match``es on these types, so mypy checks every read; a sink that must speak of every
kind ends its ``match`` with ``assert_never(event)``: a new kind fails ``make lint`` until it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias, get_args

from deployloop.events.base import EventBase, EventShapeError
from deployloop.events.target import TargetEvent
from deployloop.events.telling import TellEvent
from deployloop.events.writes import WriteEvent
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
class JUnitRepaired(EventBase):
    """A suite's JUnit files needed repairs to be read (``xmlrepair``, trailing bytes): its
    ``notes`` say "FILE: what" per kind, at most ``runner.MAX_REPAIR_NOTES`` and a count."""

    kind = "junit_repaired"
    phase: str
    suite: str
    notes: tuple[str, ...]

    def describe(self) -> str:
        """``suite P/S: JUnit repaired: FILE: what; …``: the log's and the console's words."""
        return f"suite {self.phase}/{self.suite}: JUnit repaired: {'; '.join(self.notes)}"


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
class FailedFirstSuite(EventBase):
    """The quick retest's verdict on one suite, as soon as it is known: ``passed`` of the
    ``total`` tests that failed before pass now on ``version``.

    ``early``: read from the live plugin's per-test stream the moment every rerun test had its
    final outcome, before pytest exited; else read from the pass's JUnit file. The JUnit file
    stays the authority for every recorded result: when it disagrees with the early verdict
    (other tests pass, or the pass then broke: ``harness_error``), a correction follows, with
    ``corrects`` the early verdict's passed count (None: no correction).
    """

    kind = "failed_first_suite"
    phase: str
    suite: str
    passed: int
    total: int
    version: str | None
    early: bool
    corrects: int | None = None
    harness_error: str | None = None  # why the pass's own result cannot be trusted


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
    | JUnitRepaired
    | PhaseEnd
    | SkippedPhases
    | NoTime
    | FailedFirst
    | FailedFirstSuite
    | IterationEnd
    | SessionEnd
)


def _rough(seconds: float) -> str:
    """An estimate as said aloud: ``25 min``, or ``40 s`` under a minute."""
    return f"{round(seconds / 60)} min" if seconds >= 60 else f"{seconds:.0f} s"


Event: TypeAlias = RunEvent | WriteEvent | TargetEvent | TellEvent
KINDS: dict[str, type[Event]] = {cls.kind: cls for cls in get_args(Event)}


def event_from_json(record: Mapping[str, Any]) -> Event:
    """The event of a journal record; raises EventShapeError for an unknown kind or shape."""
    cls = KINDS.get(str(record.get("event")))
    if cls is None:
        raise EventShapeError(f"unknown event {record.get('event')!r}")
    return cls.from_json(record)
