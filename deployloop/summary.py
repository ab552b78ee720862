"""What a set of test results adds up to: counts, pass rate, timing, failure clusters."""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from deployloop.clustering import cluster_keys
from deployloop.fingerprint import explain
from deployloop.logical import Tally, tally
from deployloop.models import CaseResult, Outcome

NOT_RUN = (Outcome.SKIPPED, Outcome.XFAILED)  # no latency to judge


@dataclass(frozen=True, slots=True)
class Cluster:
    """Failures that share one fingerprint: presumably one root cause."""

    fingerprint: str
    message: str  # an example: the first failure's message
    error_type: str
    tests: tuple[str, ...]  # distinct test ids, in the order they first failed

    @property
    def count(self) -> int:
        """Distinct tests: one id failing in several files or suites is one, as issues count."""
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
    """What a set of tests adds up to: logical tests by pytest's category, timing, clusters.

    ``tests`` is the SPEC's count of ``<testcase>`` records (a test that ran twice counts
    twice); ``logical_tests`` counts each test once, as the pass rate and ``expect_tests`` do.
    """

    files: int
    tally: Tally
    duration_s: float  # sum of the known durations, seconds
    p95_s: float | None  # nearest-rank p95 of the known durations; None when none is known
    untimed: int  # tests that ran yet carry no readable time
    clusters: tuple[Cluster, ...]  # largest first (only the ``top`` largest, when asked so)
    others: int = 0  # clusters past the ``top`` asked for: counted, not listed
    others_tests: int = 0  # failures in those clusters

    @property
    def tests(self) -> int:
        return self.tally.records

    @property
    def logical_tests(self) -> int:
        return self.tally.tests

    @property
    def passed(self) -> int:
        return self.tally.passed

    @property
    def failed(self) -> int:
        return self.tally.failed

    @property
    def errors(self) -> int:
        return self.tally.errors

    @property
    def skipped(self) -> int:
        return self.tally.skipped

    @property
    def pass_rate(self) -> float:
        """``logical.pass_rate`` of the judged tests (skips and xfails are not judged)."""
        return self.tally.rate()

    def to_json(self) -> dict[str, Any]:
        """The ``results --json`` object: the SPEC's keys, then pytest's other categories."""
        t = self.tally
        return {
            "files": self.files,
            "tests": t.records,
            "passed": t.passed,
            "failed": t.failed,
            "errors": t.errors,
            "skipped": t.skipped,
            "pass_rate": round(self.pass_rate, 6),
            "duration_s": round(self.duration_s, 6),
            "p95_s": None if self.p95_s is None else round(self.p95_s, 6),
            "clusters": [c.to_json() for c in self.clusters],
            "logical_tests": t.tests,
            "xfailed": t.xfailed,
            "xpassed": t.xpassed,
            "flaky": t.flaky,
            "untimed": self.untimed,
        }


def summarize(
    cases: Iterable[CaseResult],
    files: int = 1,
    extra_masks: Sequence[str] = (),
    merge_rules: Sequence[Sequence[str]] = (),
    top: int | None = None,
) -> Summary:
    """Add up logical tests in one pass, holding only durations and failures (fine for streams).

    Failures are clustered as ``clustering.key_cases`` clusters them, with the config's
    ``[clusters] mask`` (``extra_masks``) and ``merge`` rules (``merge_rules``); a bad mask
    raises ValueError. With ``top``, only the ``top`` largest clusters are listed and the rest
    counted (``others``, ``others_tests``): 100,000 distinct failures make 50 Cluster objects,
    not 100,000 (issue 19).
    """
    durations = array("d")
    broken: list[CaseResult] = []
    untimed = 0

    def watch(stream: Iterable[CaseResult]) -> Iterator[CaseResult]:
        nonlocal untimed
        for case in stream:
            timed = timing_of(case)
            if timed is not None:
                durations.append(timed)
            elif needs_time(case):
                untimed += 1
            if case.broken:
                broken.append(case)
            yield case

    counts = tally(watch(cases))
    keys, _ = cluster_keys(broken, extra_masks, merge_rules)
    listed, others, others_tests = _largest(keys, top)
    firsts: dict[str, CaseResult] = {}
    ids: dict[str, list[str]] = {key: [] for key in listed}
    for case, key in zip(broken, keys, strict=True):
        if key in ids:
            firsts.setdefault(key, case)
            ids[key].append(case.id)
    # the line v2 chose, read again for each listed cluster's first failure only
    clusters = {
        key: (firsts[key], explain(firsts[key], extra_masks).source, ids[key]) for key in listed
    }
    return Summary(
        files=files,
        tally=counts,
        duration_s=math.fsum(durations),
        p95_s=percentile(durations, 95) if durations else None,
        untimed=untimed,
        clusters=cluster_list(clusters),
        others=others,
        others_tests=others_tests,
    )


def _largest(keys: Sequence[str], top: int | None) -> tuple[list[str], int, int]:
    """The ``top`` largest clusters' keys (all when None), largest first, ties in the order
    they were first seen (as :func:`cluster_list` orders them); and the clusters and failures
    left out."""
    sizes = Counter(keys)  # keys in the order first seen
    ranked = sorted(sizes, key=lambda key: -sizes[key])
    listed = ranked if top is None else ranked[:top]
    return listed, len(ranked) - len(listed), len(keys) - sum(sizes[key] for key in listed)


def timing_of(case: CaseResult) -> float | None:
    """The case's duration when it is a latency worth judging: it ran, and its time is known."""
    if case.duration_s is None or case.outcome in NOT_RUN:
        return None
    return case.duration_s


def needs_time(case: CaseResult) -> bool:
    """A test that ran but has no time: a p95 over the others would judge without it.

    Errors are exempt: one without a time never reached its body (setup, import, a hook).
    """
    return case.duration_s is None and case.outcome not in (*NOT_RUN, Outcome.ERROR)


def cluster_list(groups: dict[str, tuple[CaseResult, str, list[str]]]) -> tuple[Cluster, ...]:
    """Clusters largest first; ties in the order their first failure was seen.

    ``groups``: key -> (its first failure, that failure's Explanation.source, test ids, an id
    repeated when it failed in several files or suites: kept once)."""
    clusters = [
        Cluster(key, line, first.error_type, tuple(dict.fromkeys(ids)))
        for key, (first, line, ids) in groups.items()
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
