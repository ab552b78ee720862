"""Retests within an iteration: each failed test once more (a pass now is a flake, not a root
cause), and on a new version what failed before, first (a quick signal before the full run).

Both run through the loop's single-suite path (``run``), so each rerun is stored and reported
as its own pass of the suite. failed-first tells each suite's verdict as soon as it is known
(``FirstVerdict``): before pytest has even exited.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeAlias

from deployloop import plan
from deployloop.config import PhaseConfig, SuiteConfig
from deployloop.events import FailedFirstSuite, Reporter
from deployloop.junit_fields import with_files
from deployloop.models import Outcome, RunEnd, SuiteRun
from deployloop.progress import FinalOutcomes
from deployloop.runner import plain_id

RERUN_LIMIT = 50  # more failures than this is no flake: do not spend the night rerunning them
WATCH_S = 0.01  # how often a failed-first pass's progress file is read: its verdict waits no more
# Given the progress file of the pass about to run: what watches it while the pass runs.
Watch: TypeAlias = Callable[[Path], contextlib.AbstractContextManager[None]]


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
        flaky |= with_files(c.id for c in again.cases if c.outcome is Outcome.PASSED) & set(failed)
    return flaky, broken


def failed_first(
    phases: Iterable[PhaseConfig],
    previous: Sequence[SuiteRun],
    stop: threading.Event,
    run: Callable[[PhaseConfig, SuiteConfig, Sequence[str], Watch], SuiteRun],
    reporter: Reporter,
    version: str | None,
) -> tuple[int, int]:
    """Rerun what failed in ``previous`` (``run(phase, suite, ids, watch)``: ``watch`` wraps
    the pass, given its progress file), suite by suite, until a stop, each suite's verdict told
    as soon as it is known (``FirstVerdict``); returns (tests that pass now, tests rerun), as
    the JUnit files count them."""
    passed = total = 0
    for phase in phases:
        failed = plan.failed_tests(r for r in previous if r.phase == phase.name)
        for suite in phase.suites:
            ids = failed.get(suite.name)
            if not ids or not plan.selectable(phase, suite.name) or stop.is_set():
                continue
            verdict = FirstVerdict(phase.name, suite.name, ids, version, reporter)
            again = run(phase, suite, ids, verdict.watching)
            total += len(ids)
            passed += verdict.settle(again, stop)
    return passed, total


class FirstVerdict:
    """The failed-first verdict on one suite (``FailedFirstSuite``), told once, as early as it
    is known: from the live plugin's ``done`` records (``progress.FinalOutcomes``) the moment
    every rerun test has its final outcome, while pytest still tears down, writes its JUnit file
    and exits; else, when the pass ends, from its JUnit file. That file stays the authority for
    every recorded result: when it disagrees with the early verdict, a correction follows
    (``settle``). ``ids`` are the rerun tests' node ids (xdist's ``@group`` ignored).
    """

    def __init__(
        self,
        phase: str,
        suite: str,
        ids: Sequence[str],
        version: str | None,
        reporter: Reporter,
    ) -> None:
        self.phase = phase
        self.suite = suite
        self.wanted = frozenset(plain_id(i) for i in ids)
        self.version = version
        self.reporter = reporter
        self.early: frozenset[str] | None = None  # the tests passing by the stream, once told

    @contextlib.contextmanager
    def watching(self, progress: Path) -> Iterator[None]:
        """While the pass runs: a thread reads ``progress`` (the pass's progress file, as
        ``runner.progress_path``) and tells the early verdict; it is stopped and joined on leaving.
        A file left there before the pass (a killed run's) is removed first: none of its lines
        may pass for this pass's (the runner would remove it at the pass's start anyway)."""
        progress.unlink(missing_ok=True)  # a killed run's: the pass starts it afresh anyway
        finals = FinalOutcomes(progress, self.wanted, plain_id)
        over = threading.Event()
        thread = threading.Thread(
            target=self._watch, args=(finals, over), name=f"first-verdict-{self.suite}"
        )
        thread.start()
        try:
            yield
        finally:
            over.set()
            thread.join()

    def _watch(self, finals: FinalOutcomes, over: threading.Event) -> None:
        while self.early is None and not over.wait(WATCH_S):
            if finals.poll():
                self.early = finals.passed()
                self._tell(len(self.early), early=True)

    def settle(self, run: SuiteRun, stop: threading.Event) -> int:
        """How many rerun tests pass by ``run``'s JUnit file. Without an early verdict, that is
        the verdict told; after one, a correction is told when the file counts other passing
        tests or the pass did not end cleanly. After a stop nothing is told: a cut-short pass
        claims nothing."""
        passing = (
            with_files(plain_id(c.id) for c in run.cases if c.outcome is Outcome.PASSED)
            & self.wanted
        )
        if stop.is_set():
            return len(passing)
        error = run.harness_error
        if self.early is None:
            self._tell(len(passing), early=False, harness_error=error)
        elif passing != self.early or error is not None:
            self._tell(len(passing), early=False, corrects=len(self.early), harness_error=error)
        return len(passing)

    def _tell(
        self,
        passed: int,
        early: bool,
        corrects: int | None = None,
        harness_error: str | None = None,
    ) -> None:
        self.reporter.emit(
            FailedFirstSuite(
                phase=self.phase,
                suite=self.suite,
                passed=passed,
                total=len(self.wanted),
                version=self.version,
                early=early,
                corrects=corrects,
                harness_error=harness_error,
            )
        )
