"""The loop's decisions, driven fast through fake services (clock, runner, version, wait)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from deployloop import plan
from deployloop.config import Config
from deployloop.events import (
    Event,
    EventBase,
    FailedFirst,
    Mixed,
    PhaseEnd,
    Reporter,
    SkippedPhases,
)
from deployloop.issues.records import IterationReport
from deployloop.iteration import Services, Session
from deployloop.loop import Loop, LoopResult, Status
from deployloop.models import CaseResult, Outcome, ProbeResult, RunEnd, SuiteRun
from deployloop.runner import INTERRUPTED, SuiteJob
from deployloop.session import final_reduce
from deployloop.state import SessionRow, Store
from deployloop.testing import FakeClock
from deployloop.wait import WaitEnd, WaitResult

E = TypeVar("E", bound=EventBase)

CONFIG = {
    "session": {"name": "t"},
    "target": {"base_url": "http://127.0.0.1:9"},
    "retest": {"rerun_failed": False},
    "phase": [
        {"name": "infra", "fail_fast": True, "suite": [{"name": "critical", "run": "pytest a"}]},
        {"name": "journeys", "suite": [{"name": "shop", "run": "pytest b"}]},
    ],
}


def case(name: str, ok: bool) -> CaseResult:
    outcome = Outcome.PASSED if ok else Outcome.FAILED
    message = "" if ok else "server closed with 1011 (internal error)"
    return CaseResult(
        f"t.py::{name}", name, "t", outcome, 0.1, message, "" if ok else "AssertionError"
    )


class World:
    """A fake staging: a version, and which suites fail on which version."""

    def __init__(self, tmp_path: Path, config: dict[str, object] | None = None) -> None:
        self.config = Config.model_validate(config or CONFIG).model_copy(update={"path": "c.toml"})
        self.stop = threading.Event()
        self.clock = FakeClock(stop=self.stop)
        self.version = "v1"
        self.failing: Callable[[str, str], bool] = lambda suite, version: False
        self.events: list[Event] = []
        self.jobs: list[SuiteJob] = []
        self.store = Store(tmp_path / "state")
        self.tmp = tmp_path
        self.filed: list[IterationReport] = []
        # Tests swap these for variants that wrap the originals.
        self.run_suite: Callable[[SuiteJob], SuiteRun] = self.scripted_suite
        self.services: Callable[[], Services] = self.fake_services

    def scripted_suite(self, job: SuiteJob) -> SuiteRun:
        self.jobs.append(job)
        self.clock.now += 10
        bad = self.failing(job.suite.name, self.version)
        cases: tuple[CaseResult, ...] = (case("test_a", True), case("test_b", not bad))
        if job.select:
            cases = tuple(c for c in cases if c.id in job.select)
        return SuiteRun(job.phase.name, job.suite.name, cases, 10.0, int(bad), version=self.version)

    def fake_services(self) -> Services:
        def wait(tested: str | None) -> WaitResult:
            self.clock.now += 60
            return (
                WaitResult(WaitEnd.INTERRUPTED)
                if self.stop.is_set()
                else WaitResult(WaitEnd.CHANGED, self.version)
            )

        return Services(
            run_suite=self.run_suite,
            run_probe=lambda probe: ProbeResult("p", "http", True, "ok"),
            read_version=lambda: self.version,
            wait=wait,
            clock=self.clock,
            stop=self.stop,
            file_issues=self.filed.append,
        )

    def loop(
        self, max_iterations: int = 5, deadline: float | None = None, once: bool = False
    ) -> Loop:
        self.store.create_session(_row(self.tmp))
        session = Session("s1", self.tmp / "s1", deadline, max_iterations)
        the_plan = plan.build_plan(self.config, once=once)
        return Loop(
            self.config,
            the_plan,
            session,
            self.store,
            self.services(),
            Reporter(self.events.append),
        )

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def first(self, kind: type[E]) -> E:
        """The first event of ``kind`` the loop emitted."""
        return next(e for e in self.events if isinstance(e, kind))


def _row(tmp: Path) -> SessionRow:
    return SessionRow("s1", "k", "t", str(tmp), 0.0, None, 5, "running", None, None)


def test_green_first_iteration(tmp_path: Path) -> None:
    """Every gate green on the first iteration ends the session green at once."""
    world = World(tmp_path)
    result = world.loop().run()
    assert result == LoopResult(Status.GREEN, 1, "every gate passed")
    assert [j.suite.name for j in world.jobs] == ["critical", "shop"]
    assert len(world.filed) == 1


def test_fail_fast_skips_later_phases(tmp_path: Path) -> None:
    """A failing fail_fast phase stops the iteration: later phases are not run."""
    world = World(tmp_path)
    world.failing = lambda suite, version: suite == "critical"
    result = world.loop(max_iterations=1).run()
    assert result.status is Status.FAILING
    assert [j.suite.name for j in world.jobs] == ["critical"]
    assert world.first(SkippedPhases).phases == ("journeys",)


def test_fix_on_new_version_ends_green_with_failed_first(tmp_path: Path) -> None:
    """Failing on v1, fixed on v2: failed-first retest, then the full run, green in two."""
    world = World(tmp_path)
    world.failing = lambda suite, version: suite == "shop" and version == "v1"
    original_wait = world.services

    def flip_on_wait() -> Services:
        services = original_wait()
        inner = services.wait

        def wait(tested: str | None) -> WaitResult:
            world.version = "v2"
            return inner(tested)

        return dataclasses.replace(services, wait=wait)

    world.services = flip_on_wait
    result = world.loop().run()
    assert result.status is Status.GREEN and result.iterations == 2
    first_of_two = world.jobs[2:]
    assert first_of_two[0].select == ("t.py::test_b",) and first_of_two[0].suite.name == "shop"
    ff = world.first(FailedFirst)
    assert (ff.passed, ff.total, ff.version) == (1, 1, "v2")
    assert [r.previous_version for r in world.filed] == [None, "v1"]


def test_max_iterations_ends_failing(tmp_path: Path) -> None:
    """Still failing after max_iterations ends the session with status FAILING."""
    world = World(tmp_path)
    world.failing = lambda suite, version: True
    result = world.loop(max_iterations=3).run()
    assert result.status is Status.FAILING and result.iterations == 3
    assert "max_iterations (3) reached" in result.reason


def test_budget_deadline_ends_failing(tmp_path: Path) -> None:
    """A deadline passed between iterations ends the session instead of starting another."""
    world = World(tmp_path)
    world.failing = lambda suite, version: True
    result = world.loop(max_iterations=100, deadline=world.clock.time() + 200).run()
    assert result.status is Status.FAILING and result.reason == "budget spent"
    assert result.iterations == 3  # 70 s each (10 s suite + 60 s wait): the third starts at 140 s


def test_once_runs_one_iteration(tmp_path: Path) -> None:
    """--once runs exactly one iteration and does not wait."""
    world = World(tmp_path)
    world.failing = lambda suite, version: True
    result = world.loop(once=True).run()
    assert result == LoopResult(Status.FAILING, 1, "--once")
    assert "waiting" not in world.kinds()


def test_version_change_mid_iteration_restarts_it(tmp_path: Path) -> None:
    """A new version seen at a phase boundary marks the iteration mixed and restarts it."""
    world = World(tmp_path)
    runner = world.run_suite

    def deploy_during_first_suite(job: SuiteJob) -> SuiteRun:
        run = runner(job)
        if len(world.jobs) == 1:
            world.version = "v2"
        return run

    world.run_suite = deploy_during_first_suite
    result = world.loop().run()
    assert result.status is Status.GREEN and result.iterations == 1
    mixed = world.first(Mixed)
    assert (mixed.from_version, mixed.to_version) == ("v1", "v2")
    assert [j.version for j in world.jobs] == ["v1", "v2", "v2"]


def test_stop_during_suite_interrupts(tmp_path: Path) -> None:
    """A stop request during a suite ends the loop as interrupted, results saved as partial."""
    world = World(tmp_path)
    runner = world.run_suite

    def stopped(job: SuiteJob) -> SuiteRun:
        world.stop.set()
        return dataclasses.replace(runner(job), harness_error=INTERRUPTED, ended=RunEnd.INTERRUPTED)

    world.run_suite = stopped
    result = world.loop().run()
    assert result.status is Status.INTERRUPTED
    assert [r.suite for _, r in world.store.runs("s1", 1, "partial")] == ["critical"]
    assert world.store.runs("s1", 1, "full") == []


def test_suite_finished_just_before_stop_is_kept_as_a_result(tmp_path: Path) -> None:
    """A suite that ended normally as the signal came is a full result (resume won't rerun it)."""
    world = World(tmp_path)
    runner = world.run_suite

    def finished_then_stopped(job: SuiteJob) -> SuiteRun:
        run = runner(job)
        world.stop.set()
        return run

    world.run_suite = finished_then_stopped
    assert world.loop().run().status is Status.INTERRUPTED
    assert [r.suite for _, r in world.store.runs("s1", 1, "full")] == ["critical"]
    assert world.store.runs("s1", 1, "partial") == []


def test_suite_cut_by_the_deadline_ends_the_session(tmp_path: Path) -> None:
    """A run that ended at the deadline stops the session, whatever its words say."""
    world = World(tmp_path)
    runner = world.run_suite

    def cut(job: SuiteJob) -> SuiteRun:
        return dataclasses.replace(runner(job), harness_error="cut short", ended=RunEnd.DEADLINE)

    world.run_suite = cut
    result = world.loop().run()
    assert (result.status, result.reason) == (Status.FAILING, "deadline reached")
    assert [j.suite.name for j in world.jobs] == ["critical"]


def test_interrupted_rerun_proves_no_flake(tmp_path: Path) -> None:
    """A rerun cut short (a harness error) marks nothing flaky: the phase still fails."""
    config = {**CONFIG, "retest": {"rerun_failed": True}}
    world = World(tmp_path, config)
    world.failing = lambda suite, version: suite == "critical"
    runner = world.run_suite

    def broken_rerun(job: SuiteJob) -> SuiteRun:
        run = runner(job)
        if not job.select:
            return run
        passed = tuple(dataclasses.replace(c, outcome=Outcome.PASSED) for c in run.cases)
        return dataclasses.replace(
            run,
            cases=passed,
            harness_error="runner killed by SIGKILL",
            ended=RunEnd.KILLED_BY_SIGNAL,
        )

    world.run_suite = broken_rerun
    assert world.loop(max_iterations=1).run().status is Status.FAILING
    phase_end = world.first(PhaseEnd)
    assert phase_end.flaky == () and not phase_end.passed
    assert "❌ critical: rerun: runner killed by SIGKILL (threshold a clean run)" in (
        phase_end.verdicts
    )  # said, not silently discarded (item 10)


def test_unreachable_target_ends_the_session(tmp_path: Path) -> None:
    """Health failing past unreachable_timeout ends the session as unreachable (exit 3)."""
    world = World(tmp_path)
    down = ProbeResult("health", "http", False, "connection refused")
    services = dataclasses.replace(world.services(), check_health=lambda: down)
    the_plan = plan.build_plan(world.config)
    world.store.create_session(_row(tmp_path))
    loop = Loop(world.config, the_plan, Session("s1", tmp_path, None, 5), world.store, services,
                Reporter(world.events.append))  # fmt: skip
    result = loop.run()
    assert result.status is Status.UNREACHABLE and final_reduce(result, None).exit_code == 3
    assert "connection refused" in result.reason and result.iterations == 0
    assert world.jobs == []


def test_session_log_sink_gets_verdicts(tmp_path: Path) -> None:
    """phase_end events carry ✅/❌ verdict lines with measured values."""
    world = World(tmp_path)
    world.failing = lambda suite, version: suite == "critical"
    world.loop(max_iterations=1).run()
    phase_end = world.first(PhaseEnd)
    assert "❌ pass_rate: 50.0% (1/2) (threshold ≥ 100%)" in phase_end.verdicts
