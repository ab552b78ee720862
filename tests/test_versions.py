"""Issue 22: every verdict stamped with the version it ran on (fast parts: fake clock, fakes)."""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from deployloop.config import RedeployConfig
from deployloop.events import Event, Mixed, NoTime, Reporter, RolloutProgress, Settled
from deployloop.issues.records import ClusterRecord, IssueAction
from deployloop.issues.triage import assess, with_issue_numbers
from deployloop.loop import LoopResult, Status
from deployloop.models import ProbeResult, SuiteRun
from deployloop.runner import SuiteJob
from deployloop.sessionlog import describe
from deployloop.testing import CAUSES, FakeClock, cause_map, context, failing_run
from deployloop.wait import RedeployWaiter, WaitEnd
from tests.test_loop import CONFIG, World


def converging(
    reads: list[str], converge: int = 3, timeout: float = 60
) -> tuple[RedeployWaiter, FakeClock, list[Event], list[str]]:
    """A waiter reading ``reads`` in turn (then the last one for ever), healthy throughout."""
    clock = FakeClock(stop=threading.Event())
    events: list[Event] = []
    asked: list[str] = []
    answers = itertools.chain(reads, itertools.repeat(reads[-1]))

    def read() -> str:
        asked.append(next(answers))
        return asked[-1]

    settings = RedeployConfig.model_validate(
        {"poll": 1, "settle": 3, "timeout": timeout, "converge": converge}
    )
    healthy = lambda: ProbeResult("health", "http", True, "")  # noqa: E731
    return (
        RedeployWaiter(settings, read, healthy, clock, Reporter(events.append)),
        clock,
        events,
        asked,
    )


def test_rollout_is_waited_out_until_n_reads_in_a_row_answer_the_new_version() -> None:
    """An old-version read restarts the count and says 'rollout still in progress (k of N)'."""
    waiter, _, events, asked = converging(["v1", "v2", "v2", "v1", "v2", "v2", "v2"])
    result = waiter.wait("v1")
    assert (result.outcome, result.version) == (WaitEnd.CHANGED, "v2")
    progress = [e for e in events if isinstance(e, RolloutProgress)]
    assert [(p.seen, p.needed, p.old_version) for p in progress] == [(1, 3, "v1")]
    assert describe(progress[0]).startswith("rollout still in progress (1 of 3)")
    assert isinstance(events[-1], Settled) and events[-1].seconds == pytest.approx(3)
    assert len(asked) == 7  # the three in a row after the old read, and no more


def test_a_rollout_that_never_converges_ends_at_the_redeploy_timeout() -> None:
    """Two pods answering v1 and v2 for ever: the wait ends at its timeout, polling, not busy."""
    waiter, clock, _, asked = converging(["v1", "v2"] * 1000, timeout=30)
    assert waiter.wait("v1").outcome is WaitEnd.TIMEOUT
    assert clock.now <= 31 and len(asked) <= 31  # one read per second of settle at most


def test_suite_seeing_two_versions_is_rerun_once_then_stands_as_mixed(tmp_path: Path) -> None:
    """Mixed twice: one rerun, then the harness verdict 'staging serves mixed versions'."""
    world = World(tmp_path, {**CONFIG, "phase": [CONFIG["phase"][1]]})  # type: ignore[index]
    pods = itertools.cycle(["rev-0001", "rev-0002"])
    loop = world.loop(once=True)
    loop.services = replace(loop.services, read_version=lambda: next(pods))
    result = loop.run()
    assert result == LoopResult(Status.FAILING, 1, "--once")
    assert [j.suite.name for j in world.jobs] == ["shop", "shop"]
    mixed = [e for e in world.events if isinstance(e, Mixed)]
    assert [(m.suite, m.rerun) for m in mixed] == [("shop", True), ("shop", False)]
    (report,) = world.filed
    assert report.mixed_suites == ("shop",)
    (phase,) = report.phases
    assert not phase.passed
    (run,) = phase.runs
    assert run.harness_error == "staging serves mixed versions rev-0001/rev-0002"


def test_a_flip_between_suites_restarts_the_iteration_once_only(tmp_path: Path) -> None:
    """Versions changing between suites: one restart of the iteration, then it goes on mixed."""
    world = World(tmp_path)
    versions = itertools.cycle(["v1", "v1", "v1", "v2", "v2", "v2"])  # start, before, after
    loop = world.loop(max_iterations=1)
    loop.services = replace(loop.services, read_version=lambda: next(versions))
    loop.run()
    starts = [e for e in world.events if e.kind == "iteration_start"]
    assert len(starts) == 2  # restarted once, never again
    (report,) = world.filed
    assert len(report.versions) == 2  # mixed: it verifies no fix (desk: no complete phase)


def test_a_phase_that_cannot_fit_before_the_deadline_is_not_started(tmp_path: Path) -> None:
    """From the last run's 600 s, 'phase journeys skipped: needs ~10 min, 4 min left'."""
    world = World(tmp_path)
    world.failing = lambda suite, version: suite == "shop"
    runner = world.run_suite

    def slow_shop(job: SuiteJob) -> SuiteRun:
        run = runner(job)
        return replace(run, wall_s=600.0) if job.suite.name == "shop" else run

    world.run_suite = slow_shop
    result = world.loop(deadline=world.clock.time() + 300).run()
    skipped = world.first(NoTime)
    assert skipped.phase == "journeys" and skipped.needs_s == 600
    assert describe(skipped) == "phase journeys skipped: needs ~10 min, 4 min left"
    assert result == LoopResult(Status.FAILING, 2, describe(skipped))
    assert [j.suite.name for j in world.jobs][-1] == "critical"  # journeys never started


def night_of_triage(
    plays: list[tuple[str, bool]], passed_before: bool = False
) -> tuple[dict[str, ClusterRecord], list[list[IssueAction]]]:
    """Triage over iterations on (version, failing) pairs; actions per iteration."""
    records: dict[str, ClusterRecord] = {}
    said: list[list[IssueAction]] = []
    previous: str | None = None
    for n, (version, failing) in enumerate(plays, 1):
        run = failing_run(cause_map(2), passing=10, fixed=frozenset() if failing else {CAUSES[0]})
        passed = frozenset(c.id for c in run.cases) if passed_before and n == 1 else frozenset()
        ctx = replace(
            context(n, version=version),
            previous_version=previous,
            passed_before=passed,
            tonight=tuple(v for v, _ in plays[:n]),
        )
        records, actions = assess(records, [run], ctx)
        records = with_issue_numbers(records, {a.fingerprint: 7 for a in actions})
        said.append(actions)
        previous = version
    return records, said


def test_a_cause_failing_from_the_first_version_has_no_last_good() -> None:
    """No passing version known: 'has failed on every version tested since <time>'."""
    _, said = night_of_triage([("rev-001", True)])
    (create,) = said[0]
    assert "First seen failing on `rev-001`; has failed on every version tested since 20" in (
        create.body
    )


def test_fixed_then_rolled_back_says_rolled_back_to_the_old_version() -> None:
    """Fixed in B, then A (seen before B) deployed again: 'Rolled back to A (fixed in B)'."""
    records, said = night_of_triage([("A", True), ("B", False), ("A", True)])
    assert [a.kind for a in said[1]] == ["close"]
    (reopen,) = said[2]
    assert reopen.kind == "reopen"
    assert reopen.body.startswith("Rolled back to `A` (fixed in `B`)")
    (record,) = records.values()
    assert (record.failing_on, record.passing_on, record.regressed_in) == (("A",), ("B",), "A")
