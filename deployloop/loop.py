"""The loop: iterations of plan → run suites → read results → judge gates → triage → tracker →
wait for the redeploy, until every gate is green or the budget is spent.

Side effects come in through ``Services`` so tests can drive many iterations fast.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deployloop import gates, plan
from deployloop.clock import Clock
from deployloop.config import ClustersConfig, Config, PhaseConfig, ProbeConfig, SuiteConfig
from deployloop.errors import TargetUnreachable
from deployloop.events import (
    FailedFirst,
    FailureCluster,
    Health,
    IterationEnd,
    IterationStart,
    Mixed,
    PhaseEnd,
    PhaseStart,
    RedeployTimeout,
    Reporter,
    SkippedPhases,
    SuiteEnd,
    SuiteStart,
)
from deployloop.gates import PhaseResult
from deployloop.issues.records import IterationReport
from deployloop.models import Outcome, ProbeResult, RunEnd, SuiteRun
from deployloop.runner import SuiteJob, progress_path
from deployloop.state import Store
from deployloop.wait import WaitEnd, WaitResult

RERUN_LIMIT = 50  # more failures than this is no flake: do not spend the night rerunning them


class Status(enum.Enum):
    """How the session ended; ``session.final_reduce`` alone turns it into an exit code."""

    GREEN = "green"  # every gate passed
    FAILING = "failing"  # gates still failing when the budget, deadline or iterations ran out
    UNREACHABLE = "unreachable"  # staging unhealthy, or no redeploy, past its timeout
    INTERRUPTED = "interrupted"  # a stop signal: the session stays open to be resumed


class IterationStop(enum.Enum):
    """Why an iteration stopped running phases."""

    DONE = "done"  # every planned phase ran, or fail_fast ended the iteration
    MIXED = "mixed"  # a new version appeared mid-iteration: run it again on that version
    INTERRUPTED = "interrupted"  # a stop signal
    DEADLINE = "deadline"  # a suite was cut short by the session deadline


@dataclass(frozen=True, slots=True)
class LoopResult:
    status: Status
    iterations: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class IterationResult:
    iteration: int
    version: str | None
    phases: tuple[PhaseResult, ...] = ()
    mixed_to: str | None = None  # the version that appeared mid-iteration (ended is MIXED)
    ended: IterationStop = IterationStop.DONE

    @property
    def green(self) -> bool:
        return bool(self.phases) and all(p.passed for p in self.phases)

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


class Loop:
    def __init__(
        self,
        config: Config,
        the_plan: plan.Plan,
        session: Session,
        store: Store,
        services: Services,
        reporter: Reporter,
    ) -> None:
        self.config = config
        self.plan = the_plan
        self.session = session
        self.store = store
        self.services = services
        self.reporter = reporter

    # the session -------------------------------------------------------------------------
    def run(self) -> LoopResult:
        n = self.session.first_iteration
        previous = self.session.previous
        if previous is not None and self.session.wait_first and not self.plan.once:
            # the trigger already ran before the stop: wait only, never deploy twice
            tested = previous.version
            stopped = self._after_wait(self.services.wait(tested), n - 1, tested)
            if stopped is not None:
                return stopped
        while True:
            ended = self._budget_spent(n)
            if ended:
                return LoopResult(Status.FAILING, n - 1, ended)
            try:
                self._await_reachable()
            except TargetUnreachable as exc:  # the session ends with its log and report
                return LoopResult(Status.UNREACHABLE, n - 1, str(exc))
            result = self.iteration(n, previous)
            if result.ended is IterationStop.INTERRUPTED:
                return LoopResult(Status.INTERRUPTED, n, "interrupted")
            if result.ended is IterationStop.MIXED:
                continue  # same iteration number, on the new version
            if result.green:
                return LoopResult(Status.GREEN, n, "every gate passed")
            if self.services.stop.is_set():  # asked to stop while filing: honour it now
                return LoopResult(Status.INTERRUPTED, n, "interrupted")
            if result.ended is IterationStop.DEADLINE:
                return LoopResult(Status.FAILING, n, "deadline reached")
            ended = "--once" if self.plan.once else self._budget_spent(n + 1)
            if ended:
                return LoopResult(Status.FAILING, n, ended)
            stopped = self._after_wait(self._between(n, result.version), n, result.version)
            if stopped is not None:
                return stopped
            previous, n = result, n + 1

    def _after_wait(self, waited: WaitResult, n: int, tested: str | None) -> LoopResult | None:
        """How the session ends after the wait that followed iteration ``n`` (on ``tested``),
        or None to go on to the next iteration."""
        if waited.outcome is WaitEnd.INTERRUPTED:
            return LoopResult(Status.INTERRUPTED, n, "interrupted")
        if waited.outcome is WaitEnd.DEADLINE:
            return LoopResult(Status.FAILING, n, "deadline reached while waiting")
        if waited.outcome is WaitEnd.TIMEOUT and self._stop_after_timeout(tested):
            return LoopResult(Status.UNREACHABLE, n, "no new version before the redeploy timeout")
        return None

    def _budget_spent(self, n: int) -> str:
        if n > self.session.max_iterations:
            return f"max_iterations ({self.session.max_iterations}) reached"
        deadline = self.session.deadline
        if deadline is not None and self.services.clock.time() >= deadline:
            return "budget spent"
        return ""

    def _stop_after_timeout(self, tested: str | None) -> bool:
        """Say that the redeploy wait gave up and what happens now; True when that is to stop."""
        redeploy = self.config.redeploy
        if redeploy is None:  # never so: only the RedeployWaiter times out
            return False
        self.reporter.emit(
            RedeployTimeout(tested=tested, timeout_s=redeploy.timeout, then=redeploy.on_timeout)
        )
        return redeploy.on_timeout == "stop"

    def _between(self, n: int, tested: str | None) -> WaitResult:
        if self.services.trigger is not None and not self.plan.dry_run:
            self.services.trigger(n)
        return self.services.wait(tested)

    def _await_reachable(self) -> None:
        """Health must answer before tests run; past the target's timeout the night is over."""
        check = self.services.check_health
        if check is None:
            return
        clock = self.services.clock
        give_up = clock.monotonic() + self.config.target.unreachable_timeout
        while not (probe := check()).ok:
            self.reporter.emit(Health(ok=False, detail=probe.detail))
            if clock.monotonic() >= give_up:
                raise TargetUnreachable(f"staging unhealthy past its timeout: {probe.detail}")
            if clock.wait(min(10.0, self.config.target.unreachable_timeout / 10)):
                return  # a stop request: the iteration notices it straight away

    # one iteration -----------------------------------------------------------------------
    def iteration(self, n: int, previous: IterationResult | None) -> IterationResult:
        if self.services.stop.is_set():  # stopped while checking health: nothing new starts
            return IterationResult(n, None, ended=IterationStop.INTERRUPTED)
        started = self.services.clock.monotonic()
        version = self.services.read_version()
        self.store.begin_iteration(self.session.id, n, version)
        self.reporter.emit(IterationStart(iteration=n, version=version))
        if previous is not None and not previous.green:
            self._failed_first(n, previous, version)
        result = self._phases(n, version)
        if result.ended is IterationStop.MIXED:
            self.store.discard_runs(self.session.id, n)
        if result.ended in (IterationStop.INTERRUPTED, IterationStop.MIXED):
            return result
        resumed, self.session.resuming = self.session.resuming, False
        self.services.file_issues(
            IterationReport(
                n,
                version,
                previous.version if previous else None,
                result.phases,
                self.plan.dry_run,
                resumed,
            )
        )
        self._finish(result, started)
        return result

    def _finish(self, result: IterationResult, started: float) -> None:
        failing = [p.phase for p in result.phases if not p.passed]
        duration = self.services.clock.monotonic() - started
        summary = {"phases": {p.phase: p.passed for p in result.phases}, "duration_s": duration}
        self.store.end_iteration(
            self.session.id, result.iteration, result.version, result.green, summary
        )
        self.reporter.emit(
            IterationEnd(
                iteration=result.iteration,
                green=result.green,
                version=result.version,
                duration_s=duration,
                failing=tuple(failing),
            )
        )

    def _phases(self, n: int, version: str | None) -> IterationResult:
        done: list[PhaseResult] = []
        for index, phase in enumerate(self.plan.phases):
            if self.services.stop.is_set():  # after a stop nothing new starts, not even a phase
                return IterationResult(n, version, tuple(done), ended=IterationStop.INTERRUPTED)
            self.reporter.emit(PhaseStart(phase=phase.name))
            runs, stopped = self._run_suites(n, phase, version)
            if stopped is IterationStop.INTERRUPTED:
                return IterationResult(n, version, tuple(done), ended=stopped)
            result = self._judge(n, phase, runs, version)
            done.append(result)
            if self.services.stop.is_set():  # stopped during a rerun or probe: no next phase
                return IterationResult(n, version, tuple(done), ended=IterationStop.INTERRUPTED)
            if stopped is IterationStop.DEADLINE:
                return IterationResult(n, version, tuple(done), ended=stopped)
            now = self.services.read_version()
            if now is not None and version is not None and now != version:
                self.reporter.emit(Mixed(from_version=version, to_version=now))
                return IterationResult(n, version, tuple(done), now, IterationStop.MIXED)
            if not result.passed and phase.fail_fast:
                rest = [p.name for p in self.plan.phases[index + 1 :]]
                if rest:
                    self.reporter.emit(
                        SkippedPhases(phases=tuple(rest), reason=f"{phase.name} failed (fail_fast)")
                    )
                break
        return IterationResult(n, version, tuple(done))

    def _run_suites(
        self, n: int, phase: PhaseConfig, version: str | None
    ) -> tuple[list[SuiteRun], IterationStop]:
        """The phase's suites in order, until a stop or the session deadline cuts one short."""
        runs: list[SuiteRun] = []
        for suite in phase.suites:
            run = self.session.done_runs.pop(suite.name, None)
            if run is None:
                run = self._run(n, phase, suite, version, "full")
            runs.append(run)
            if self.services.stop.is_set():
                return runs, IterationStop.INTERRUPTED
            if run.ended is RunEnd.DEADLINE:
                return runs, IterationStop.DEADLINE
        return runs, IterationStop.DONE

    def _run(
        self,
        n: int,
        phase: PhaseConfig,
        suite: SuiteConfig,
        version: str | None,
        pass_name: str,
        select: Sequence[str] = (),
    ) -> SuiteRun:
        base = self.session.directory / str(n)
        # "+" is in no suite name (config_values.Name), so suite "s.rerun" never meets s's rerun
        stem = suite.name if pass_name == "full" else f"{suite.name}+{pass_name}"
        job = SuiteJob(
            phase=phase,
            suite=suite,
            junit_path=base / f"{stem}.xml",
            log_path=base / f"{stem}.log",
            select=tuple(select),
            deadline=self._monotonic_deadline(),
            version=version,
        )
        self.reporter.emit(
            SuiteStart(
                phase=phase.name,
                suite=suite.name,
                tests=len(select) or suite.expect_tests,
                progress=str(progress_path(job)),
                previous_s=self.store.last_wall_s(self.session.id, suite.name),
                pass_name=pass_name,
            )
        )
        run = self.services.run_suite(job)
        # Only a run the stop actually cut short is partial: one that finished just before the
        # signal is a result, and a resumed session must not run it again.
        partial = run.ended is RunEnd.INTERRUPTED
        self.store.save_run(self.session.id, n, "partial" if partial else pass_name, run)
        self.reporter.emit(
            SuiteEnd(
                phase=phase.name,
                suite=suite.name,
                counts=run.counts,
                wall_s=run.wall_s,
                harness_error=run.harness_error,
                exit_code=run.exit_code,
                pass_name=pass_name,
            )
        )
        return run

    def _monotonic_deadline(self) -> float | None:
        if self.session.deadline is None:
            return None
        clock = self.services.clock
        return clock.monotonic() + max(0.0, self.session.deadline - clock.time())

    def _judge(
        self, n: int, phase: PhaseConfig, runs: list[SuiteRun], version: str | None
    ) -> PhaseResult:
        flaky, broken_reruns = self._rerun_failures(n, phase, runs, version)
        probes = [self.services.run_probe(probe) for probe in phase.probes]
        flaky_passes = self.config.retest.flaky == "pass"
        result = gates.judge(phase, runs, probes, flaky, flaky_passes, broken_reruns)
        self.reporter.emit(
            PhaseEnd(
                phase=phase.name,
                passed=result.passed,
                verdicts=tuple(v.describe() for v in result.verdicts),
                gates=result.verdicts,
                clusters=_clusters(runs, self.config.clusters),
                flaky=tuple(sorted(flaky)),
            )
        )
        return result

    def _rerun_failures(
        self, n: int, phase: PhaseConfig, runs: list[SuiteRun], version: str | None
    ) -> tuple[set[str], list[SuiteRun]]:
        """Run each failed test once more; one that passes now is flaky, not a root cause.

        Also the reruns that did not run cleanly (a selection that found fewer tests than
        asked, a crash): they prove nothing either way, and the phase's verdicts say so.
        """
        if not self.config.retest.rerun_failed or self.services.stop.is_set():
            return set(), []
        flaky: set[str] = set()
        broken: list[SuiteRun] = []
        for run in runs:
            failed = plan.failed_tests([run]).get(run.suite, ())
            if run.ended is not RunEnd.COMPLETED or not failed or len(failed) > RERUN_LIMIT:
                continue
            if not plan.selectable(phase, run.suite):
                continue
            suite = next(s for s in phase.suites if s.name == run.suite)
            again = self._run(n, phase, suite, version, "rerun", failed)
            if again.ended is not RunEnd.COMPLETED:
                broken.append(again)
                continue
            flaky |= {c.id for c in again.cases if c.id in failed and c.outcome is Outcome.PASSED}
        return flaky, broken

    def _failed_first(self, n: int, previous: IterationResult, version: str | None) -> None:
        """On a new version, rerun just what failed before: a quick signal before the full run."""
        if version is not None and version == previous.version:
            return
        passed = total = 0
        for phase in self.plan.phases:
            failed = plan.failed_tests(r for r in previous.runs if r.phase == phase.name)
            for suite in phase.suites:
                ids = failed.get(suite.name)
                if not ids or not plan.selectable(phase, suite.name) or self.services.stop.is_set():
                    continue
                run = self._run(n, phase, suite, version, "failed-first", ids)
                total += len(ids)
                passed += sum(1 for c in run.cases if c.id in ids and c.outcome is Outcome.PASSED)
        if total and not self.services.stop.is_set():  # a cut-short rerun claims nothing
            self.reporter.emit(FailedFirst(passed=passed, total=total, version=version))


def _clusters(runs: Sequence[SuiteRun], config: ClustersConfig) -> tuple[FailureCluster, ...]:
    """The phase's largest clusters and one entry counting the rest, as ``events.caps`` keeps
    them: only those are made (100,000 distinct failures are not 100,000 objects here)."""
    from deployloop.events.caps import MAX_CLUSTERS, others
    from deployloop.summary import summarize

    cases = [c for run in runs for c in run.cases]
    found = summarize(cases, extra_masks=config.mask, merge_rules=config.merge, top=MAX_CLUSTERS)
    listed = [FailureCluster(c.fingerprint, c.count, c.message, c.tests) for c in found.clusters]
    rest = [others(found.others, found.others_tests)] if found.others else []
    return (*listed, *rest)
