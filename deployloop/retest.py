"""Retests within an iteration: each failed test once more (a pass now is a flake, not a root
cause), and on a new version what failed before, first (a quick signal before the full run).

Both run through the loop's single-suite path (``run``), so each rerun is stored and reported
as its own pass of the suite.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

from deployloop import plan
from deployloop.config import PhaseConfig, SuiteConfig
from deployloop.models import Outcome, RunEnd, SuiteRun

RERUN_LIMIT = 50  # more failures than this is no flake: do not spend the night rerunning them


def rerun_failures(
    phase: PhaseConfig,
    runs: Sequence[SuiteRun],
    stop: threading.Event,
    run: Callable[[SuiteConfig, Sequence[str]], SuiteRun],
) -> tuple[set[str], list[SuiteRun]]:
    """Run each failed test of the phase once more (``run(suite, ids)``); the ids that pass now
    are flaky. Also the reruns that did not run cleanly (a selection that found fewer tests
    than asked, a crash): they prove nothing either way, and the phase's verdicts say so.
    """
    if stop.is_set():
        return set(), []
    flaky: set[str] = set()
    broken: list[SuiteRun] = []
    for done in runs:
        failed = plan.failed_tests([done]).get(done.suite, ())
        if done.ended is not RunEnd.COMPLETED or not failed or len(failed) > RERUN_LIMIT:
            continue
        if not plan.selectable(phase, done.suite):
            continue
        suite = next(s for s in phase.suites if s.name == done.suite)
        again = run(suite, failed)
        if again.ended is not RunEnd.COMPLETED:
            broken.append(again)
            continue
        flaky |= {c.id for c in again.cases if c.id in failed and c.outcome is Outcome.PASSED}
    return flaky, broken


def failed_first(
    phases: Iterable[PhaseConfig],
    previous: Sequence[SuiteRun],
    stop: threading.Event,
    run: Callable[[PhaseConfig, SuiteConfig, Sequence[str]], SuiteRun],
) -> tuple[int, int]:
    """Rerun what failed in ``previous`` (``run(phase, suite, ids)``), suite by suite, until a
    stop; returns (tests that pass now, tests rerun)."""
    passed = total = 0
    for phase in phases:
        failed = plan.failed_tests(r for r in previous if r.phase == phase.name)
        for suite in phase.suites:
            ids = failed.get(suite.name)
            if not ids or not plan.selectable(phase, suite.name) or stop.is_set():
                continue
            again = run(phase, suite, ids)
            total += len(ids)
            passed += sum(1 for c in again.cases if c.id in ids and c.outcome is Outcome.PASSED)
    return passed, total
