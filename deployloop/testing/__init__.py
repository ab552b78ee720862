"""Fakes and builders for deployloop's external boundaries, shipped so tests, soak runs and
benchmarks share them: ``github_server.FakeGitHub`` stands in for the GitHub REST API; the
builders below make suite results with a chosen number of failures per root cause."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from deployloop.config import IssuesConfig
from deployloop.issues.records import PhaseInfo, TriageContext
from deployloop.models import CaseResult, Outcome, SuiteRun

NOW = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)

# Distinct root causes: their fingerprints differ even after numbers and ids are masked.
CAUSES = (
    "server closed with 1011 (internal error)",
    "expected event agent_completed never arrived",
    "database connection refused by upstream",
    "response schema mismatch: field 'status' missing",
    "login redirect loop detected",
    "tool_executing event carried an empty payload",
    "billing service answered with status 503",
    "search index not ready",
)
ERROR_TYPES = ("AssertionError", "TimeoutError", "ConnectionError", "KeyError")


def case(
    test_id: str,
    outcome: Outcome = Outcome.PASSED,
    message: str = "",
    error_type: str = "",
    details: str = "",
) -> CaseResult:
    """One test result with a pytest-style node id."""
    classname, _, name = test_id.rpartition("::")
    return CaseResult(test_id, name, classname, outcome, 0.05, message, error_type, details)


def failing_run(
    causes: Mapping[str, int],
    passing: int = 0,
    phase: str = "websocket",
    suite: str = "agents",
    fixed: Collection[str] = (),
) -> SuiteRun:
    """A suite run where ``causes`` maps each message to how many tests fail with it.

    Test ids are stable per (cause position, n), so a second call fails the same tests. The
    tests of causes named in ``fixed`` pass instead; ``passing`` more tests pass.
    """
    cases: list[CaseResult] = []
    for index, (message, count) in enumerate(causes.items()):
        error_type = ERROR_TYPES[index % len(ERROR_TYPES)]
        for n in range(count):
            test_id = f"tests/e2e/test_{suite}.py::test_cause{index}_{n}"
            if message in fixed:
                cases.append(case(test_id))
                continue
            details = f"Traceback (most recent call last):\n  ...\n{error_type}: {message}"
            cases.append(case(test_id, Outcome.FAILED, message, error_type, details))
    cases.extend(case(f"tests/e2e/test_{suite}.py::test_ok_{n}") for n in range(passing))
    return SuiteRun(phase, suite, tuple(cases), wall_s=30.0, exit_code=1 if causes else 0)


def cause_map(*counts: int) -> dict[str, int]:
    """``cause_map(20, 12, 8)``: the first causes of CAUSES with those failure counts."""
    return {CAUSES[i]: count for i, count in enumerate(counts)}


class FakeClock:
    """A ``deployloop.clock.Clock`` whose waits return at once and are recorded in ``sleeps``.

    Backoffs and polls cost tests nothing; ``wait`` returns True once ``stop`` is set.
    """

    def __init__(self, wall: float = 1_750_000_000.0, stop: threading.Event | None = None) -> None:
        self.now = 0.0
        self.wall = wall
        self.stop = stop
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall + self.now

    def wait(self, seconds: float) -> bool:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds
        return self.stop is not None and self.stop.is_set()


def context(
    iteration: int = 1,
    version: str | None = "rev-001",
    now: datetime = NOW,
    phase: str = "websocket",
    **issues: Any,
) -> TriageContext:
    """A triage context for one fully run phase (priority P1) of the runs ``failing_run`` makes."""
    verdict = "❌ pass_rate: 60.0% (60/100) (threshold ≥ 100%)"
    return TriageContext(
        iteration=iteration,
        version=version,
        previous_version=None,
        issues=IssuesConfig(**{"labels": ["deployloop", "e2e-failure"], **issues}),
        now=now,
        phases={phase: PhaseInfo(phase, "P1", (verdict,))},
        complete_phases=frozenset({phase}),
        repro={"agents": "pytest tests/e2e/test_agents.py"},
    )
