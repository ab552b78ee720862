"""Observing one iteration: its runs read once into failing and flaky clusters (keyed over the
whole iteration), the tests that passed, and the phases whose deploy is broken.

``triage.assess`` decides from this ``Observation``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from deployloop.clustering import causes_of
from deployloop.config import ClustersConfig
from deployloop.fingerprint import explain, v1_fingerprint
from deployloop.issues.records import (
    BROKEN_ERROR,
    Failing,
    TriageContext,
)
from deployloop.issues.text import first_line, typed
from deployloop.models import CaseResult, Outcome, SuiteRun


@dataclass
class Observation:
    """This iteration's runs, read once: failing and flaky clusters, passing tests."""

    failing: dict[str, Failing] = field(default_factory=dict)
    flaky: dict[str, Failing] = field(default_factory=dict)
    passed: set[str] = field(default_factory=set)  # test ids that ran and never broke
    broken_phases: set[str] = field(default_factory=set)


# observing ------------------------------------------------------------------------------------


def observe(
    runs: Sequence[SuiteRun], ctx: TriageContext, known: Collection[str] = ()
) -> Observation:
    """Group this iteration's failures into clusters, phase by phase, in run order.

    Failures are keyed once over the whole iteration (``clustering.key_cases``, not phase by
    phase); a cause whose prints include one of the ``known`` keys (previous records') keeps it.
    """
    keys = _keys(runs, ctx.clusters, known)
    seen = Observation()
    for phase, phase_runs in _by_phase(runs).items():
        pairs = [(run.suite, case) for run in phase_runs for case in run.cases]
        broke = {case.id for _, case in pairs if case.broken}
        seen.passed |= {c.id for _, c in pairs if c.outcome is Outcome.PASSED and c.id not in broke}
        forgive = ctx.flaky.get(phase, frozenset()) if ctx.retest.flaky == "pass" else frozenset()
        hard = [(s, c) for s, c in pairs if c.broken and c.id not in forgive]
        soft = [(s, c) for s, c in pairs if c.broken and c.id in forgive]
        clusters = _cluster(phase, hard, keys, ctx.clusters.mask)
        judged = {c.id for _, c in pairs if c.outcome is not Outcome.SKIPPED}
        if _deploy_broken(clusters, judged, ctx.issues.broken_threshold):
            seen.broken_phases.add(phase)
            clusters = [_broken_cluster(phase, clusters, len(judged))]
        _merge(seen.failing, clusters)
        _merge(seen.flaky, _cluster(phase, soft, keys, ctx.clusters.mask))
    return seen


def _by_phase(runs: Sequence[SuiteRun]) -> dict[str, list[SuiteRun]]:
    grouped: dict[str, list[SuiteRun]] = {}
    for run in runs:
        grouped.setdefault(run.phase, []).append(run)
    return grouped


# id(case) -> cluster key, and cluster key -> its aliases (one tuple per cluster, not per case)
_Keys = tuple[dict[int, str], dict[str, tuple[str, ...]]]


def _keys(runs: Sequence[SuiteRun], clusters: ClustersConfig, known: Collection[str]) -> _Keys:
    """Each broken case's cluster key, and the other prints its cause's issue may carry: the
    cause's other members and the v1 print of each of its failures (how v1-filed issues and
    v1-keyed records are found again)."""
    broken = [case for run in runs for case in run.cases if case.broken]
    causes = causes_of(broken, clusters.mask, clusters.merge)
    keys = [cause.key(known) for cause in causes]
    aliases: dict[str, list[str]] = {}  # lists, deduplicated once: 100k clusters, 100k lists
    for case, cause, key in zip(broken, causes, keys, strict=True):
        names = aliases.setdefault(key, [])
        names.extend(m for m in cause.members if m != key)
        names.append(v1_fingerprint(case, clusters.mask))
    named = {key: tuple(dict.fromkeys(names)) for key, names in aliases.items()}
    return {id(c): key for c, key in zip(broken, keys, strict=True)}, named


def _cluster(
    phase: str, pairs: Iterable[tuple[str, CaseResult]], keys: _Keys, masks: Sequence[str]
) -> list[Failing]:
    """Failures by cluster key; each cluster's message is the line v2 chose from its first
    failure (not a placeholder such as Go's "Failed"), read again once per cluster."""
    found: dict[str, Failing] = {}
    key_of, aliases = keys
    for suite, case in pairs:
        fp = key_of[id(case)]
        if fp not in found:
            error_type = case.error_type or case.outcome.value
            line = explain(case, masks).source
            found[fp] = Failing(fp, phase, error_type, line, case.details, aliases=aliases[fp])
        found[fp].cases.append((suite, case))
    return list(found.values())


def _merge(into: dict[str, Failing], clusters: Iterable[Failing]) -> None:
    """One root cause is one cluster even across phases: it stays with the first phase."""
    for cluster in clusters:
        if cluster.fingerprint in into:
            into[cluster.fingerprint].cases.extend(cluster.cases)
        else:
            into[cluster.fingerprint] = cluster


def _deploy_broken(clusters: Sequence[Failing], judged: set[str], threshold: float) -> bool:
    """Most of the phase fails for several reasons at once: the deployment, not N bugs.

    One cause failing everything already makes one issue, so that case stays a plain cluster.
    """
    failing = {test for cluster in clusters for test in cluster.tests}
    return len(clusters) > 1 and bool(judged) and len(failing) / len(judged) > threshold


def broken_fingerprint(phase: str) -> str:
    """Stable per phase, so a broken deploy is one issue however its failures vary."""
    digest = hashlib.sha256(f"{BROKEN_ERROR}\0{phase}".encode()).hexdigest()
    return f"v1-{digest[:12]}"


def _broken_cluster(phase: str, clusters: Sequence[Failing], judged: int) -> Failing:
    ranked = sorted(clusters, key=lambda c: (-len(c.tests), c.fingerprint))
    failing = sum(len(c.tests) for c in ranked)
    first = ranked[0]
    return Failing(
        broken_fingerprint(phase),
        phase,
        BROKEN_ERROR,
        f"deployment broken: {failing} of {judged} tests failing",
        first.details,
        [pair for cluster in ranked for pair in cluster.cases],
        tuple((first_line(typed(c.error_type, c.message)), len(c.tests)) for c in ranked),
        judged,
    )
