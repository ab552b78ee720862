"""The loop: iterations of plan → run suites → read results → judge gates → triage → tracker →
wait for the redeploy, until every gate is green or the budget is spent.

Side effects come in through ``Services`` so tests can drive many iterations fast.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from deployloop import dispatch, gates, plan, retest
from deployloop.config import ClustersConfig, Config, PhaseConfig, SuiteConfig
from deployloop.errors import TargetUnreachable
from deployloop.events import (
    FailedFirst,
    FailureCluster,
    Health,
    IterationEnd,
    IterationStart,
    Mixed,
    NoTime,
    PhaseEnd,
    PhaseStart,
    RedeployTimeout,
    Reporter,
    SkippedPhases,
)
from deployloop.gates import PhaseResult
from deployloop.issues.records import IterationReport
from deployloop.iteration import IterationResult, IterationStop, Services, Session
from deployloop.models import Outcome, RunEnd, SuiteRun
from deployloop.passes import Passes
from deployloop.state import Store
from deployloop.wait import WaitEnd, WaitResult


class Status(enum.Enum):
    """How the session ended; ``session.final_reduce`` alone turns it into an exit code."""

    GREEN = "green"  # every gate passed
    FAILING = "failing"  # gates still failing when the budget, deadline or iterations ran out
    UNREACHABLE = "unreachable"  # staging unhealthy, or no redeploy, past its timeout
    INTERRUPTED = "interrupted"  # a stop signal: the session stays open to be resumed


@dataclass(frozen=True, slots=True)
class LoopResult:
    status: Status
    iterations: int
    reason: str = ""


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
        self._passes = Passes(session.first_iteration, session, store, services, reporter)
        self._restarted: set[int] = set()  # iterations already restarted on a new version

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
            if result.ended is IterationStop.MIXED:
                continue  # same iteration number, on the new version (once: _restart)
            over = self._iteration_over(result)
            if over is not None:
                return over
            ended = "--once" if self.plan.once else self._budget_spent(n + 1)
            if ended:
                return LoopResult(Status.FAILING, n, ended)
            stopped = self._after_wait(self._between(n, result.version), n, result.version)
            if stopped is not None:
                return stopped
            previous, n = result, n + 1

    def _iteration_over(self, result: IterationResult) -> LoopResult | None:
        """How the session ends after iteration ``result``, or None to wait for the next."""
        n = result.iteration
        if result.ended is IterationStop.INTERRUPTED:
            return LoopResult(Status.INTERRUPTED, n, "interrupted")
        if result.green:
            return LoopResult(Status.GREEN, n, "every gate passed")
        if self.services.stop.is_set():  # asked to stop while filing: honour it now
            return LoopResult(Status.INTERRUPTED, n, "interrupted")
        if result.ended is IterationStop.DEADLINE:
            return LoopResult(Status.FAILING, n, "deadline reached")
        if result.ended is IterationStop.NO_TIME:
            return LoopResult(Status.FAILING, n, result.reason)
        return None

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
        self._passes = Passes(n, self.session, self.store, self.services, self.reporter)
        self.store.begin_iteration(self.session.id, n, version)
        self.reporter.emit(IterationStart(iteration=n, version=version))
        if previous is not None and not previous.green:
            self._failed_first(n, previous, version)
        result = self._passes.versions.stamped(self._phases(n, version))
        if result.ended is IterationStop.MIXED:
            self.store.discard_runs(self.session.id, n)
        if result.ended in (IterationStop.INTERRUPTED, IterationStop.MIXED):
            return result
        resumed, self.session.resuming = self.session.resuming, False
        self.services.file_issues(
            IterationReport(
                n,
                result.version,
                previous.version if previous else None,
                result.phases,
                self.plan.dry_run,
                resumed,
                self._passes.versions.all(),
                self._passes.versions.mixed_suites(),
                _passed(previous),
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
            short = self._no_time(phase)
            if short:
                return IterationResult(n, version, tuple(done), ended=IterationStop.NO_TIME,
                                       reason=short)  # fmt: skip
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
            if self._restart(n):
                now = self._passes.versions.all()[-1]
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
        """The phase's suites (dispatch.run_phase), and why the phase stopped running them."""
        runs = dispatch.run_phase(
            phase,
            self.session.done_runs,
            self.services.stop,
            lambda suite: self._suite(n, phase, suite, version),
        )
        if self.services.stop.is_set():
            return runs, IterationStop.INTERRUPTED
        if any(run.ended is RunEnd.DEADLINE for run in runs):
            return runs, IterationStop.DEADLINE
        return runs, IterationStop.DONE

    def _restart(self, n: int) -> bool:
        """Whether the iteration saw two versions and restarts on the newer: at most once per
        iteration, never with --once (one iteration means one); else it goes on, mixed, and its
        results verify no fix (IterationReport.versions)."""
        seen = self._passes.versions.all()
        if len(seen) < 2:
            return False
        again = n not in self._restarted and not self.plan.once
        if again:
            self._restarted.add(n)
            self.reporter.emit(Mixed(from_version=seen[0], to_version=seen[-1]))
        return again

    def _no_time(self, phase: PhaseConfig) -> str:
        """Why ``phase`` is not started ("phase P skipped: needs ~25 min, 12 min left"), or "".

        Its expected duration is the sum of its suites' last full runs (state, this session);
        a phase never run before is started: there is nothing to judge by."""
        if self.session.deadline is None:
            return ""
        walls = [self.store.last_wall_s(self.session.id, s.name) for s in phase.suites]
        needs = sum(w for w in walls if w is not None)
        left = self.session.deadline - self.services.clock.time()
        if not needs or needs <= left:
            return ""
        event = NoTime(phase=phase.name, needs_s=needs, left_s=max(0.0, left))
        self.reporter.emit(event)
        return event.describe()

    def _suite(
        self, n: int, phase: PhaseConfig, suite: SuiteConfig, version: str | None
    ) -> SuiteRun:
        """One suite's full run: as one run, or as its shards merged."""
        if suite.shards == 1:
            return self._passes.run(phase, suite, version, "full")
        where = self.session.directory / str(n)
        return dispatch.Sharded(self.store, self.reporter, self.session.id, where, n).run(
            suite,
            lambda shard: self._passes.run(phase, suite, version, shard.pass_name, shard=shard),
        )

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
                clusters=_clusters(runs, self.config.clusters, flaky if flaky_passes else ()),
                flaky=result.flaky,
            )
        )
        return result

    def _rerun_failures(
        self, n: int, phase: PhaseConfig, runs: list[SuiteRun], version: str | None
    ) -> tuple[set[str], list[SuiteRun]]:
        if not self.config.retest.rerun_failed:
            return set(), []
        return retest.rerun_failures(
            phase,
            runs,
            self.services.stop,
            lambda suite, ids: self._passes.run(phase, suite, version, "rerun", ids),
        )

    def _failed_first(self, n: int, previous: IterationResult, version: str | None) -> None:
        """On a new version, rerun just what failed before: a quick signal before the full run,
        each suite's told as soon as it is known (``FailedFirstSuite``), the sum after all."""
        if version is not None and version == previous.version:
            return
        passed, total = retest.failed_first(
            self.plan.phases,
            previous.runs,
            self.services.stop,
            lambda phase, suite, ids, watch: self._passes.run(
                phase, suite, version, "failed-first", ids, watch=watch
            ),
            self.reporter,
            version,
        )
        if total and not self.services.stop.is_set():  # a cut-short rerun claims nothing
            self.reporter.emit(FailedFirst(passed=passed, total=total, version=version))


def _passed(previous: IterationResult | None) -> frozenset[str]:
    """Test ids that passed in ``previous`` (last good for a cause new now)."""
    if previous is None:
        return frozenset()
    return frozenset(
        c.id for run in previous.runs for c in run.cases if c.outcome is Outcome.PASSED
    )


def _clusters(
    runs: Sequence[SuiteRun], config: ClustersConfig, forgiven: Collection[str]
) -> tuple[FailureCluster, ...]:
    """The phase's largest clusters and one entry counting the rest, as ``events.caps`` keeps
    them: only those are made (100,000 distinct failures are not 100,000 objects here).

    ``forgiven`` failures (flaky, counted as passes) are listed as flaky, never as failing."""
    from deployloop.events.caps import MAX_CLUSTERS, others
    from deployloop.summary import summarize

    cases = [c for run in runs for c in run.cases if c.id not in forgiven]
    found = summarize(cases, extra_masks=config.mask, merge_rules=config.merge, top=MAX_CLUSTERS)
    listed = [FailureCluster(c.fingerprint, c.count, c.message, c.tests) for c in found.clusters]
    rest = [others(found.others, found.others_tests)] if found.others else []
    return (*listed, *rest)
