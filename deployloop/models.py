"""Plain records that flow between the stages: results, verdicts, probes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    """A test's result in pytest's categories (``pytest -ra`` prints the same six words)."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    XFAILED = "xfailed"  # expected to fail, and failed: not judged, like a skip
    XPASSED = "xpassed"  # expected to fail, but passed (pytest's non-strict xpass): a pass


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One test: as read, one ``<testcase>`` record; once folded, one logical test (its id).

    ``junit.iter_cases`` yields records (a test rerun twice is three records);
    ``logical.fold`` merges the records of one id into one CaseResult whose ``records`` says
    how many it stands for, and whose ``flaky`` says it failed before it passed. ``details``
    of a folded test holds every failure text it carried (setup, call, teardown, subtests).
    """

    id: str  # pytest node id when derivable ("tests/test_x.py::TestA::test_b[1]")
    name: str
    classname: str
    outcome: Outcome
    duration_s: float | None  # seconds; None when the report gives no readable time
    message: str = ""
    error_type: str = ""
    details: str = ""
    file: str | None = None
    line: int | None = None
    flaky: bool = False  # failed on an earlier attempt, passed on the last
    records: int = 1  # <testcase> records (attempts, teardown records) folded into this one

    @property
    def broken(self) -> bool:
        """Failed or errored: what counts against the pass rate."""
        return self.outcome in (Outcome.FAILED, Outcome.ERROR)


class RunEnd(enum.StrEnum):
    """How a suite's process ended. Only COMPLETED is a verdict on staging; every other end is a
    harness error, worded for people in ``SuiteRun.harness_error``. Stored by value in the state.
    """

    COMPLETED = "completed"  # exited by itself, and its results are plausible
    TIMEOUT = "timeout"  # the suite's own timeout passed; its process group was stopped
    DEADLINE = "deadline"  # the session's deadline came first; its process group was stopped
    INTERRUPTED = "interrupted"  # a stop signal; group stopped, partial results kept
    FAILED_TO_START = "failed_to_start"  # the command could not be started at all
    KILLED_BY_SIGNAL = "killed_by_signal"  # something other than deployloop killed the runner
    RUNNER_ERROR = "runner_error"  # exited, but no result: pytest exit 2-5, JUnit missing, ...


@dataclass(frozen=True, slots=True)
class SuiteRun:
    """What one suite of one phase produced in one iteration."""

    phase: str
    suite: str
    cases: tuple[CaseResult, ...]
    wall_s: float
    exit_code: int | None
    harness_error: str | None = None  # why the run cannot be trusted as a result
    version: str | None = None
    junit_path: str | None = None
    log_path: str | None = None
    expected_tests: int | None = None
    ended: RunEnd = RunEnd.COMPLETED  # what the loop decides on; harness_error says it in words
    collected: int | None = None  # tests the runner collected, when its plugin said (-x: > ran)
    repairs: tuple[str, ...] = ()  # "FILE: what was repaired" notes on its JUnit files (bounded)

    @property
    def counts(self) -> dict[str, int]:
        """Tests per outcome (``Outcome`` values as keys), over ``cases`` as they are."""
        tally = {o.value: 0 for o in Outcome}
        for case in self.cases:
            tally[case.outcome.value] += 1
        return tally


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A live check against the target: health, version, HTTP or WebSocket probe."""

    name: str
    kind: str
    ok: bool
    detail: str
    latencies_s: tuple[float, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One gate's judgement, always with what was measured against what was required."""

    gate: str
    passed: bool
    measured: str
    threshold: str
    reason: str = ""

    def describe(self) -> str:
        mark = "✅" if self.passed else "❌"
        text = f"{mark} {self.gate}: {self.measured}"
        if self.threshold:
            text += f" (threshold {self.threshold})"
        return f"{text} — {self.reason}" if self.reason else text
