"""Plain records that flow between the stages: results, verdicts, probes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One ``<testcase>`` element: a test that ran twice is two CaseResults."""

    id: str  # pytest node id when derivable ("tests/test_x.py::TestA::test_b[1]")
    name: str
    classname: str
    outcome: Outcome
    duration_s: float
    message: str = ""
    error_type: str = ""
    details: str = ""
    file: str | None = None
    line: int | None = None

    @property
    def broken(self) -> bool:
        """Failed or errored: what counts against the pass rate."""
        return self.outcome in (Outcome.FAILED, Outcome.ERROR)


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

    @property
    def counts(self) -> dict[str, int]:
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
