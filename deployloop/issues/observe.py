"""Observing one iteration: its runs read once into failing and flaky clusters (keyed over the
whole iteration), the tests that passed, and the phases whose deploy is broken.

``triage.assess`` decides from this ``Observation``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from deployloop.clustering import cluster_keys
from deployloop.config import ClustersConfig
from deployloop.fingerprint import explain, v1_fingerprint
from deployloop.issues.records import (
    BROKEN_ERROR,
    MAX_CAUSES,
    Failing,
    TriageContext,
)
from deployloop.issues.text import first_line, typed
from deployloop.junit_fields import with_files
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
    A phase whose deploy is broken becomes one cluster without its causes ever being made
    clusters: 100,000 distinct failures are not 100,000 Failing objects (issue 19).
    """
    keys = _Keys.of(runs, ctx.clusters, known)
    phases = [_Phase.read(phase, phase_runs, ctx, keys) for phase, phase_runs in _by_phase(runs)]
    # aliases for the clusters made: a broken phase's hard failures make none
    keys.add_aliases(
        runs,
        [*(p.hard for p in phases if not p.broken), *(p.soft for p in phases)],
        ctx.clusters.mask,
    )
    seen = Observation()
    for phase in phases:
        seen.passed |= phase.passed
        if phase.broken:
            seen.broken_phases.add(phase.name)
            clusters = [_broken_cluster(phase, keys, ctx.clusters.mask)]
        else:
            clusters = _cluster(phase.name, phase.hard, keys, ctx.clusters.mask)
        _merge(seen.failing, clusters)
        _merge(seen.flaky, _cluster(phase.name, phase.soft, keys, ctx.clusters.mask))
    return seen


def _by_phase(runs: Sequence[SuiteRun]) -> Iterable[tuple[str, list[SuiteRun]]]:
    grouped: dict[str, list[SuiteRun]] = {}
    for run in runs:
        grouped.setdefault(run.phase, []).append(run)
    return grouped.items()


_Pair = tuple[str, CaseResult]  # (suite, case)


@dataclass
class _Keys:
    """Each broken case's cluster key (by the case: equal cases are keyed alike), the members
    of each cause with several, and the aliases (the other prints its issue may carry) of the
    keys asked for."""

    key_of: dict[CaseResult, str]
    members: dict[str, tuple[str, ...]]
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, runs: Sequence[SuiteRun], clusters: ClustersConfig, known: Collection[str]
    ) -> _Keys:
        broken = [case for run in runs for case in run.cases if case.broken]
        keys, members = cluster_keys(broken, clusters.mask, clusters.merge, known)
        return cls(dict(zip(broken, keys, strict=True)), members)

    def __getitem__(self, case: CaseResult) -> str:
        return self.key_of[case]

    def add_aliases(
        self, runs: Sequence[SuiteRun], clustered: Iterable[Sequence[_Pair]], masks: Sequence[str]
    ) -> None:
        """The aliases of the keys of the ``clustered`` failures: their cause's other members
        and the v1 print of each of its failures, over the whole iteration (how v1-filed
        issues and v1-keyed records are found again)."""
        wanted = {self[c] for pairs in clustered for _, c in pairs}
        if not wanted:
            return
        names: dict[str, list[str]] = {}
        for case in (c for run in runs for c in run.cases if c.broken):
            key = self[case]
            if key in wanted:
                found = names.setdefault(key, [])
                found.extend(m for m in self.members.get(key, ()) if m != key)
                found.append(v1_fingerprint(case, masks))
        self.aliases = {key: tuple(dict.fromkeys(found)) for key, found in names.items()}


@dataclass
class _Phase:
    """One phase's failures as read: hard (counted) and soft (forgiven as flaky), the tests
    that passed, the tests judged and failing (distinct ids), and whether its deploy is broken.
    """

    name: str
    hard: list[_Pair] = field(default_factory=list)
    soft: list[_Pair] = field(default_factory=list)
    passed: set[str] = field(default_factory=set)
    judged: int = 0
    failing: int = 0
    broken: bool = False

    @classmethod
    def read(cls, name: str, runs: Sequence[SuiteRun], ctx: TriageContext, keys: _Keys) -> _Phase:
        forgive = ctx.flaky.get(name, frozenset()) if ctx.retest.flaky == "pass" else frozenset()
        phase = cls(name)
        broke: set[str] = set()
        others: set[str] = set()  # judged tests with a record that did not break
        for run in runs:
            for case in run.cases:
                if case.broken:
                    broke.add(case.id)
                    group = phase.soft if case.id in forgive else phase.hard
                    group.append((run.suite, case))
                elif case.outcome is not Outcome.SKIPPED:
                    others.add(case.id)
        # with their files: a collection error's id (its module) passes once its tests do
        phase.passed = with_files(
            c.id for run in runs for c in run.cases if c.outcome is Outcome.PASSED
        )
        phase.passed -= broke
        phase.judged = len(broke) + len(others - broke)
        phase.failing = len(broke) - len(broke & forgive)  # the hard failures' ids
        phase.broken = _deploy_broken(phase, keys, ctx.issues.broken_threshold)
        return phase


def _cluster(
    phase: str, pairs: Iterable[_Pair], keys: _Keys, masks: Sequence[str]
) -> list[Failing]:
    """Failures by cluster key; each cluster's message is the line v2 chose from its first
    failure (not a placeholder such as Go's "Failed"), read again once per cluster."""
    found: dict[str, Failing] = {}
    for suite, case in pairs:
        fp = keys[case]
        if fp not in found:
            error_type = case.error_type or case.outcome.value
            line = explain(case, masks).source
            found[fp] = Failing(fp, phase, error_type, line, case.details, aliases=keys.aliases[fp])
        found[fp].cases.append((suite, case))
    return list(found.values())


def _merge(into: dict[str, Failing], clusters: Iterable[Failing]) -> None:
    """One root cause is one cluster even across phases: it stays with the first phase."""
    for cluster in clusters:
        if cluster.fingerprint in into:
            into[cluster.fingerprint].cases.extend(cluster.cases)
        else:
            into[cluster.fingerprint] = cluster


def _sizes(pairs: Sequence[_Pair], keys: _Keys) -> Counter[str]:
    """Distinct tests per cluster key. Only keys seen more than once get a set of their ids:
    100,000 distinct failures make none."""
    raw = Counter(keys[c] for _, c in pairs)
    shared = {key: set[str]() for key, n in raw.items() if n > 1}
    for _, case in pairs:
        ids = shared.get(keys[case])
        if ids is not None:
            ids.add(case.id)
    raw.update({key: len(ids) - raw[key] for key, ids in shared.items()})
    return raw


def _deploy_broken(phase: _Phase, keys: _Keys, threshold: float) -> bool:
    """Most of the phase fails for several reasons at once: the deployment, not N bugs.

    One cause failing everything already makes one issue, so that case stays a plain cluster.
    """
    first = keys[phase.hard[0][1]] if phase.hard else None
    several = any(keys[case] != first for _, case in phase.hard)
    return several and bool(phase.judged) and phase.failing / phase.judged > threshold


def broken_fingerprint(phase: str) -> str:
    """Stable per phase, so a broken deploy is one issue however its failures vary."""
    digest = hashlib.sha256(f"{BROKEN_ERROR}\0{phase}".encode()).hexdigest()
    return f"v1-{digest[:12]}"


def _broken_cluster(phase: _Phase, keys: _Keys, masks: Sequence[str]) -> Failing:
    """The phase's one cluster: its failures, largest cause first (ties: the smaller key), and
    the MAX_CAUSES largest causes, each with the line v2 chose from its first failure."""
    sizes = _sizes(phase.hard, keys)
    ranked = sorted(sizes)
    ranked.sort(key=sizes.__getitem__, reverse=True)  # stable: ties stay by key
    pairs = sorted(phase.hard, key=lambda pair: keys[pair[1]])
    pairs.sort(key=lambda pair: sizes[keys[pair[1]]], reverse=True)
    listed = ranked[:MAX_CAUSES]
    wanted = set(listed)
    firsts: dict[str, CaseResult] = {}  # the first failure of each cause listed only
    for _, case in phase.hard:
        if (key := keys[case]) in wanted:
            firsts.setdefault(key, case)
    return Failing(
        broken_fingerprint(phase.name),
        phase.name,
        BROKEN_ERROR,
        f"deployment broken: {sizes.total()} of {phase.judged} tests failing",
        firsts[listed[0]].details,
        pairs,
        tuple((_cause_line(firsts[key], masks), sizes[key]) for key in listed),
        phase.judged,
        reasons=len(ranked),
    )


def _cause_line(case: CaseResult, masks: Sequence[str]) -> str:
    """A cause's line as a broken deploy's issue lists it: its first failure's, typed."""
    return first_line(typed(case.error_type or case.outcome.value, explain(case, masks).source))
