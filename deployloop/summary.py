"""What a set of test results adds up to: counts, pass rate, timing, failure clusters."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from deployloop.fingerprint import case_fingerprint
from deployloop.models import CaseResult, Outcome


@dataclass(frozen=True, slots=True)
class Cluster:
    """Failures that share one fingerprint: presumably one root cause."""

    fingerprint: str
    message: str  # an example: the first failure's message
    error_type: str
    tests: tuple[str, ...]  # test ids in the order they failed; a rerun may repeat one

    @property
    def count(self) -> int:
        return len(self.tests)

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "count": self.count,
            "message": self.message,
            "tests": list(self.tests),
        }


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts over ``<testcase>`` elements: a test that ran twice counts twice."""

    files: int
    tests: int
    passed: int
    failed: int
    errors: int
    skipped: int
    duration_s: float  # sum of the cases' durations
    p95_s: float  # nearest-rank p95 of the cases' durations; 0.0 without cases
    clusters: tuple[Cluster, ...]  # largest first

    @property
    def pass_rate(self) -> float:
        """passed / (passed + failed + errors); skips are not judged.

        With nothing judged it is 0.0, not 1.0: a run that ran nothing must never look green.
        """
        judged = self.passed + self.failed + self.errors
        return self.passed / judged if judged else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "tests": self.tests,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
            "pass_rate": round(self.pass_rate, 6),
            "duration_s": round(self.duration_s, 6),
            "p95_s": round(self.p95_s, 6),
            "clusters": [c.to_json() for c in self.clusters],
        }


def summarize(
    cases: Iterable[CaseResult], files: int = 1, extra_masks: Sequence[str] = ()
) -> Summary:
    """Add up ``cases`` in one pass, holding only durations and failures (fine for streams)."""
    failed, error, skipped = Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED
    durations = array("d")
    record = durations.append
    broken: list[CaseResult] = []
    skips = 0
    # Identity checks, not a dict keyed by Outcome: hashing an enum member is a Python call,
    # and this loop runs once per testcase of files that can hold 100,000 of them.
    for case in cases:
        record(case.duration_s)
        outcome = case.outcome
        if outcome is failed or outcome is error:
            broken.append(case)
        elif outcome is skipped:
            skips += 1
    clusters: dict[str, tuple[CaseResult, list[str]]] = {}
    for case in broken:
        key = case_fingerprint(case, extra_masks)
        clusters.setdefault(key, (case, []))[1].append(case.id)
    errors = sum(1 for case in broken if case.outcome is error)
    return Summary(
        files=files,
        tests=len(durations),
        passed=len(durations) - len(broken) - skips,
        failed=len(broken) - errors,
        errors=errors,
        skipped=skips,
        duration_s=math.fsum(durations),
        p95_s=percentile(durations, 95),
        clusters=cluster_list(clusters),
    )


def cluster_list(groups: dict[str, tuple[CaseResult, list[str]]]) -> tuple[Cluster, ...]:
    """Clusters largest first; ties in the order their first failure was seen."""
    clusters = [
        Cluster(key, first.message, first.error_type, tuple(ids))
        for key, (first, ids) in groups.items()
    ]
    return tuple(sorted(clusters, key=lambda c: -c.count))


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (the smallest value with at least q% at or below it); 0.0 if empty.

    Nearest rank never interpolates, so the answer is always a value that was measured.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])
