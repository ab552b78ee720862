"""One iteration's records and the loop's inputs: why an iteration stopped, what it found,
the session it belongs to and the side effects it may use (``Services``).

Plain data shared by the loop (``loop.py``) and its suite passes (``passes.py``).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deployloop.clock import Clock
from deployloop.config import ProbeConfig
from deployloop.gates import PhaseResult
from deployloop.issues.records import IterationReport
from deployloop.models import ProbeResult, SuiteRun
from deployloop.runner import SuiteJob
from deployloop.wait import WaitResult


class IterationStop(enum.Enum):
    """Why an iteration stopped running phases."""

    DONE = "done"  # every planned phase ran, or fail_fast ended the iteration
    MIXED = "mixed"  # a new version appeared mid-iteration: run it again on that version
    NO_TIME = "no_time"  # the next phase would not fit before the deadline: not started
    INTERRUPTED = "interrupted"  # a stop signal
    DEADLINE = "deadline"  # a suite was cut short by the session deadline


@dataclass(frozen=True, slots=True)
class IterationResult:
    iteration: int
    version: str | None
    phases: tuple[PhaseResult, ...] = ()
    mixed_to: str | None = None  # the version that appeared mid-iteration (ended is MIXED)
    ended: IterationStop = IterationStop.DONE
    reason: str = ""  # why it stopped early, in words (NO_TIME)

    @property
    def green(self) -> bool:
        """Every planned phase ran and passed (a phase left out for lack of time did not)."""
        ran = bool(self.phases) and self.ended is not IterationStop.NO_TIME
        return ran and all(p.passed for p in self.phases)

    @property
    def runs(self) -> list[SuiteRun]:
        return [run for phase in self.phases for run in phase.runs]


@dataclass(frozen=True)
class Services:
    """The loop's side effects, each behind one small callable; built whole, never patched."""

    run_suite: Callable[[SuiteJob], SuiteRun]
    run_probe: Callable[[ProbeConfig], ProbeResult]
    read_version: Callable[[], str | None]
    wait: Callable[[str | None], WaitResult]
    clock: Clock
    stop: threading.Event
    check_health: Callable[[], ProbeResult] | None = None
    trigger: Callable[[int], None] | None = None
    file_issues: Callable[[IterationReport], None] = lambda report: None


@dataclass
class Session:
    id: str
    directory: Path
    deadline: float | None  # wall-clock time; shared by resumed runs
    max_iterations: int
    first_iteration: int = 1
    previous: IterationResult | None = None  # the last finished iteration, on resume
    done_runs: dict[str, SuiteRun] = field(default_factory=dict)  # resumed iteration's suites
    resuming: bool = False  # first_iteration was left unfinished by a killed run
    wait_first: bool = False  # stopped in the wait after ``previous``: wait again before testing
