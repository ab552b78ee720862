"""Gates: each phase's verdicts, every one with the value measured and the threshold it met."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from deployloop.config import PhaseConfig
from deployloop.durations import format_duration
from deployloop.models import CaseResult, Outcome, ProbeResult, SuiteRun, Verdict


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """Everything one phase produced in one iteration, and how it was judged."""

    phase: str
    runs: tuple[SuiteRun, ...]
    probes: tuple[ProbeResult, ...]
    verdicts: tuple[Verdict, ...]
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
) -> PhaseResult:
    """Judge one phase: harness, collection, speed, pass rate, p95, failures, probes."""
    verdicts: list[Verdict] = []
    for run in runs:
        verdicts.extend(suite_verdicts(phase, run))
    cases = [c for run in runs for c in run.cases]
    forgiven = set(flaky) if flaky_counts_as_pass else set()
    if runs:
        verdicts.append(pass_rate_verdict(phase.gates.pass_rate, cases, forgiven))
        if phase.gates.max_failures is not None:
            verdicts.append(max_failures_verdict(phase.gates.max_failures, cases, forgiven))
    latencies = [c.duration_s for c in cases] + [t for p in probes for t in p.latencies_s]
    if phase.gates.p95_s is not None and latencies:
        verdicts.append(p95_verdict(phase.gates.p95_s, latencies))
    verdicts.extend(Verdict(f"probe {p.name}", p.ok, p.detail, "") for p in probes)
    return PhaseResult(
        phase.name, tuple(runs), tuple(probes), tuple(verdicts), tuple(sorted(flaky))
    )


def suite_verdicts(phase: PhaseConfig, run: SuiteRun) -> list[Verdict]:
    """Verdicts about the run itself: did the harness work, did it really run?"""
    suite = next(s for s in phase.suites if s.name == run.suite)
    out: list[Verdict] = []
    if run.harness_error:
        out.append(Verdict(f"{run.suite}: harness", False, run.harness_error, "a clean run"))
    if run.expected_tests is not None and run.cases:
        got = len(run.cases)
        shrank = got < run.expected_tests
        reason = f"collection shrank from {run.expected_tests} to {got}" if shrank else ""
        out.append(
            Verdict(f"{run.suite}: tests", not shrank, str(got), f"≥ {run.expected_tests}", reason)
        )
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


def counted(cases: Sequence[CaseResult], forgiven: Collection[str]) -> tuple[int, int]:
    """(passed, judged) where judged excludes skips; forgiven (flaky) failures count as passed."""
    passed = judged = 0
    for case in cases:
        if case.outcome is Outcome.SKIPPED:
            continue
        judged += 1
        passed += case.outcome is Outcome.PASSED or case.id in forgiven
    return passed, judged


def pass_rate_verdict(
    threshold: float, cases: Sequence[CaseResult], forgiven: Collection[str]
) -> Verdict:
    passed, judged = counted(cases, forgiven)
    rate = passed / judged if judged else 0.0
    measured = f"{rate:.1%} ({passed}/{judged})"
    return Verdict("pass_rate", judged > 0 and rate >= threshold, measured, f"≥ {threshold:.0%}")


def max_failures_verdict(
    limit: int, cases: Sequence[CaseResult], forgiven: Collection[str]
) -> Verdict:
    passed, judged = counted(cases, forgiven)
    failures = judged - passed
    return Verdict("max_failures", failures <= limit, str(failures), f"≤ {limit}")


def p95_verdict(limit_s: float, latencies: Sequence[float]) -> Verdict:
    from deployloop.summary import percentile

    p95 = percentile(latencies, 95)
    return Verdict("p95_s", p95 < limit_s, f"{p95:.2f} s", f"< {limit_s:g} s")
