"""Gates: each phase's verdicts, every one with the value measured and the threshold it met."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from deployloop.config import PhaseConfig
from deployloop.durations import format_duration
from deployloop.logical import Tally, tally
from deployloop.models import CaseResult, ProbeResult, SuiteRun, Verdict


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """Everything one phase produced in one iteration, and how it was judged."""

    phase: str
    runs: tuple[SuiteRun, ...]
    probes: tuple[ProbeResult, ...]
    verdicts: tuple[Verdict, ...]
    # ids that failed, then passed: on the runner's own attempts or on deployloop's rerun
    flaky: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)


def judge(
    phase: PhaseConfig,
    runs: Sequence[SuiteRun],
    probes: Sequence[ProbeResult],
    flaky: Collection[str] = (),
    flaky_counts_as_pass: bool = True,
    broken_reruns: Sequence[SuiteRun] = (),
) -> PhaseResult:
    """Judge one phase: harness, collection, speed, pass rate, p95, failures, probes.

    ``flaky``: broken ids that passed on deployloop's rerun. The result's ``flaky`` holds them
    and the tests the runner itself saw fail, then pass (pytest-rerunfailures, surefire).
    ``broken_reruns``: reruns of failed tests that did not run cleanly; each is a failing
    ``<suite>: rerun`` verdict with its harness error (issue 15 item 10: never discarded silently).
    """
    verdicts: list[Verdict] = []
    for run in runs:
        verdicts.extend(suite_verdicts(phase, run))
    verdicts.extend(
        Verdict(f"{r.suite}: rerun", False, r.harness_error or r.ended.value, "a clean run")
        for r in broken_reruns
    )
    cases = [c for run in runs for c in run.cases]
    counts = tally(cases, forgiven=flaky)
    if runs:
        verdicts.append(pass_rate_verdict(phase.gates.pass_rate, counts, flaky_counts_as_pass))
        if phase.gates.max_failures is not None:
            verdicts.append(
                max_failures_verdict(phase.gates.max_failures, counts, flaky_counts_as_pass)
            )
    if phase.gates.p95_s is not None:
        verdicts.extend(p95_verdicts(phase.gates.p95_s, cases, probes))
    verdicts.extend(Verdict(f"probe {p.name}", p.ok, p.detail, "") for p in probes)
    flaky_ids = {*flaky, *(c.id for c in cases if c.flaky and not c.broken)}
    return PhaseResult(
        phase.name, tuple(runs), tuple(probes), tuple(verdicts), tuple(sorted(flaky_ids))
    )


def suite_verdicts(phase: PhaseConfig, run: SuiteRun) -> list[Verdict]:
    """Verdicts about the run itself: did the harness work, did it really run?"""
    suite = next(s for s in phase.suites if s.name == run.suite)
    out: list[Verdict] = []
    if run.harness_error:
        out.append(Verdict(f"{run.suite}: harness", False, run.harness_error, "a clean run"))
    if run.expected_tests is not None and run.cases:
        out.append(_collection_verdict(run, run.expected_tests))
    if suite.min_seconds is not None and not run.harness_error:
        fast = run.wall_s < suite.min_seconds
        measured = format_duration(run.wall_s)
        reason = f"ran in {measured}: not against real services?" if fast else ""
        out.append(
            Verdict(
                f"{run.suite}: duration", not fast, measured, f"≥ {suite.min_seconds:g} s", reason
            )
        )
    return out


def _collection_verdict(run: SuiteRun, expected: int) -> Verdict:
    """What was collected against ``expect_tests``: a run stopped early (``-x``) collected
    them all, and its harness verdict says how many did not run; only a smaller collection
    shrank. Without the plugin's count, the tests that reported stand for the collection."""
    got = run.collected if run.collected is not None else len(run.cases)
    shrank = got < expected
    reason = f"collection shrank from {expected} to {got}" if shrank else ""
    return Verdict(f"{run.suite}: tests", not shrank, str(got), f"≥ {expected}", reason)


def pass_rate_verdict(threshold: float, counts: Tally, flaky_passes: bool) -> Verdict:
    """The pass rate of logical tests (``logical.pass_rate``) against ``threshold`` (0..1)."""
    passing = counts.passing(flaky_passes)
    rate = counts.rate(flaky_passes)
    measured = f"{rate:.1%} ({passing}/{counts.judged})"
    return Verdict(
        "pass_rate", counts.judged > 0 and rate >= threshold, measured, f"≥ {threshold:.0%}"
    )


def max_failures_verdict(limit: int, counts: Tally, flaky_passes: bool) -> Verdict:
    """Judged tests that did not pass, against ``limit``."""
    failures = counts.judged - counts.passing(flaky_passes)
    return Verdict("max_failures", failures <= limit, str(failures), f"≤ {limit}")


def p95_verdicts(
    limit_s: float, cases: Sequence[CaseResult], probes: Sequence[ProbeResult]
) -> list[Verdict]:
    """p95 of the tests' and probes' latencies (seconds) against ``limit_s``.

    A test that ran without a readable time fails the gate: a p95 over the others, or over
    zeros, could pass a suite whose tests took seconds. Its message still gives the p95 the
    timed ones measure ("p95 5.0 s over 3 timed tests > 2 s; no timing data for 1 test").
    No verdict when there is nothing to time at all.
    """
    from deployloop.summary import needs_time, percentile, timing_of

    threshold = f"< {limit_s:g} s"
    untimed = sum(1 for c in cases if needs_time(c))
    timed = [t for t in map(timing_of, cases) if t is not None]
    latencies = timed + [t for p in probes for t in p.latencies_s]
    if not latencies and not untimed:
        return []
    if not untimed:
        p95 = percentile(latencies, 95)
        return [Verdict("p95_s", p95 < limit_s, f"{p95:.2f} s", threshold)]
    missing = f"no timing data for {plural(untimed, 'test')}"
    if not latencies:
        return [Verdict("p95_s", False, missing, threshold)]
    p95 = percentile(latencies, 95)
    over = ">" if p95 >= limit_s else "≤"
    measured = f"p95 {p95:.1f} s over {_timed(len(timed), len(latencies))} {over} {limit_s:g} s"
    return [Verdict("p95_s", False, f"{measured}; {missing}", threshold)]


def plural(count: int, noun: str) -> str:
    """``1 test``, ``3 tests``: a count with its noun in the right number (English ``-s``)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _timed(tests: int, latencies: int) -> str:
    """What the p95 was taken over: the timed tests, and the probes' latencies if any."""
    words = plural(tests, "timed test")
    probes = latencies - tests
    return words if not probes else f"{words} and {plural(probes, 'probe latency')}"
