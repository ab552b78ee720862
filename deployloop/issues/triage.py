"""Triage: which root causes are new, still failing, fixed or flaky, and what the tracker is told.

Pure functions over plain data: the previous iteration's cluster records and this iteration's
suite runs go in; the next records and the issue actions come out. Nothing here touches the
network or the disk, so every lifecycle rule is tested without a tracker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from deployloop.clustering import key_cases
from deployloop.config import ClustersConfig
from deployloop.fingerprint import v1_fingerprint
from deployloop.issues.history import added, with_versions
from deployloop.issues.records import (
    BROKEN_ERROR,
    ActionKind,
    ClusterRecord,
    Failing,
    IssueAction,
    Standing,
    TriageContext,
)
from deployloop.issues.text import (
    deferred_text,
    first_line,
    fixed_text,
    issue_body,
    progress_text,
    refailing_text,
    reopen_text,
    title_for,
    typed,
)
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
        clusters = _cluster(phase, hard, keys)
        judged = {c.id for _, c in pairs if c.outcome is not Outcome.SKIPPED}
        if _deploy_broken(clusters, judged, ctx.issues.broken_threshold):
            seen.broken_phases.add(phase)
            clusters = [_broken_cluster(phase, clusters, len(judged))]
        _merge(seen.failing, clusters)
        _merge(seen.flaky, _cluster(phase, soft, keys))
    return seen


def _by_phase(runs: Sequence[SuiteRun]) -> dict[str, list[SuiteRun]]:
    grouped: dict[str, list[SuiteRun]] = {}
    for run in runs:
        grouped.setdefault(run.phase, []).append(run)
    return grouped


# id(case) -> (cluster key, its aliases, the case's Explanation.source)
_Keys = dict[int, tuple[str, tuple[str, ...], str]]


def _keys(runs: Sequence[SuiteRun], clusters: ClustersConfig, known: Collection[str]) -> _Keys:
    """Each broken case's cluster key, and the other prints its cause's issue may carry: the
    cause's other members and the v1 print of each of its failures (how v1-filed issues and
    v1-keyed records are found again)."""
    broken = [case for run in runs for case in run.cases if case.broken]
    keyed = key_cases(broken, clusters.mask, clusters.merge, known)
    aliases: dict[str, dict[str, None]] = {}
    for case, found in zip(broken, keyed, strict=True):
        names = aliases.setdefault(found.key, {})
        names.update(dict.fromkeys(m for m in found.cause.members if m != found.key))
        names[v1_fingerprint(case, clusters.mask)] = None
    return {
        id(c): (k.key, tuple(aliases[k.key]), k.explanation.source)
        for c, k in zip(broken, keyed, strict=True)
    }


def _cluster(phase: str, pairs: Iterable[tuple[str, CaseResult]], keys: _Keys) -> list[Failing]:
    found: dict[str, Failing] = {}
    for suite, case in pairs:
        fp, aliases, line = keys[id(case)]
        if fp not in found:
            error_type = case.error_type or case.outcome.value
            found[fp] = Failing(fp, phase, error_type, line, case.details, aliases=aliases)
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


# deciding -------------------------------------------------------------------------------------


def assess(
    previous: Mapping[str, ClusterRecord], runs: Sequence[SuiteRun], ctx: TriageContext
) -> tuple[dict[str, ClusterRecord], list[IssueAction]]:
    """The next cluster records and the issue actions for this iteration."""
    seen = observe(runs, ctx, previous)
    previous, rekeys = _rekeyed(previous, seen)
    plan = _Plan(ctx)
    plan.updates.extend(rekeys)
    records = dict(previous)
    for fp, failing in seen.failing.items():
        records[fp] = plan.failing(previous.get(fp), failing)
    for fp, flaky in seen.flaky.items():
        if fp not in seen.failing:
            records[fp] = _flaky_record(previous.get(fp), flaky, ctx)
    for fp, record in previous.items():
        if fp not in seen.failing and record.status == "open":
            records[fp] = plan.gone(record, seen)
    return records, plan.actions(records)


def _rekeyed(
    previous: Mapping[str, ClusterRecord], seen: Observation
) -> tuple[dict[str, ClusterRecord], list[IssueAction]]:
    """Records kept under another print of a cause seen now (a v1 print, another member of
    it) move to the cause's key, and their issue is re-marked: no new issue, no comment.

    A cause takes one record (the one with an issue, open first, oldest) and the tests of all
    the records it matched, which their issues already list (so none "joined"). Larger causes
    choose first, so a v1 record that stood for several causes goes to the largest. The
    records not taken stay: their tests still fail, so they are not closed until fixed."""
    records = dict(previous)
    moves: list[IssueAction] = []
    seen_now = sorted(
        (*seen.failing.values(), *seen.flaky.values()), key=lambda f: (-len(f.tests), f.phase)
    )
    for failing in seen_now:
        old = [records[a] for a in failing.aliases if a in records]
        if failing.fingerprint in records or not old:
            continue
        chosen = min(old, key=_claim_order)
        del records[chosen.fingerprint]
        tests = tuple(dict.fromkeys(t for record in old for t in record.tests))
        records[failing.fingerprint] = replace(chosen, fingerprint=failing.fingerprint, tests=tests)
        if chosen.issue_number is not None:
            moves.append(_rekey_action(chosen, failing.fingerprint))
    return records, moves


def _claim_order(record: ClusterRecord) -> tuple[bool, bool, int]:
    return (record.issue_number is None, record.status != "open", record.issue_number or 0)


def _rekey_action(record: ClusterRecord, new: str) -> IssueAction:
    return IssueAction(
        "rekey", new, record.title, "", issue_number=record.issue_number,
        aliases=(record.fingerprint,),
    )  # fmt: skip


def with_issue_numbers(
    records: Mapping[str, ClusterRecord], numbers: Mapping[str, int]
) -> dict[str, ClusterRecord]:
    """Records with the issue numbers the tracker reported (SyncResult.issue_numbers)."""
    out = dict(records)
    for fp, number in numbers.items():
        if fp in out:
            out[fp] = replace(out[fp], issue_number=number)
    return out


def _flaky_record(prev: ClusterRecord | None, flaky: Failing, ctx: TriageContext) -> ClusterRecord:
    """Failed then passed on rerun: remembered, never filed. A filed cluster keeps its state."""
    if prev is not None and prev.status != "flaky":
        return prev
    record = _record(prev, flaky, ctx)
    return replace(record, status="flaky", issue_number=None)


def _record(prev: ClusterRecord | None, failing: Failing, ctx: TriageContext) -> ClusterRecord:
    return with_versions(prev, _bare_record(prev, failing, ctx), failing, ctx)


def _bare_record(prev: ClusterRecord | None, failing: Failing, ctx: TriageContext) -> ClusterRecord:
    return ClusterRecord(
        fingerprint=failing.fingerprint,
        title=prev.title if prev and prev.issue_number else title_for(failing),
        message=failing.message,
        error_type=failing.error_type,
        phase=failing.phase,
        tests=failing.tests,
        first_seen_iteration=prev.first_seen_iteration if prev else ctx.iteration,
        first_seen_version=prev.first_seen_version if prev else ctx.version,
        last_seen_iteration=ctx.iteration,
        last_seen_version=ctx.version,
        status="open",
        issue_number=prev.issue_number if prev else None,
        told=bool(prev and prev.told and prev.issue_number is None),  # filed: told no more
    )


@dataclass
class _Candidate:
    """A cluster that wants a new issue; max_new_per_iteration decides which get one now."""

    failing: Failing
    record: ClusterRecord
    action: IssueAction
    waited: bool  # deferred or unfiled before: goes first
    standing: bool  # the tracker already has its issue: adopted on apply, never capped


class _Plan:
    """Collects actions while records are decided, then orders and caps them."""

    def __init__(self, ctx: TriageContext) -> None:
        self.ctx = ctx
        self.updates: list[IssueAction] = []
        self.candidates: list[_Candidate] = []

    def failing(self, prev: ClusterRecord | None, failing: Failing) -> ClusterRecord:
        record = _record(prev, failing, self.ctx)
        if prev is None or prev.issue_number is None:
            return self._create(prev, failing, record)
        if prev.status == "fixed" and prev.closed_at is not None:
            return self._recur(prev, failing, record)
        if prev.status == "fixed":  # verified fixed but left open (close_on_fix off)
            text = reopen_text(prev, failing, self.ctx)
            self.updates.append(self._action("comment", record, text))
            return replace(record, regressed_in=self.ctx.version)
        comment = self._progress(prev, failing)
        if comment is None and self.ctx.standing.get(failing.fingerprint, Standing.OPEN).closed:
            comment = refailing_text(failing, self.ctx)  # apply reopens it, or leaves it muted
        if comment:
            self.updates.append(self._action("comment", record, comment))
        return replace(record, fixed_in=None)

    def gone(self, prev: ClusterRecord, seen: Observation) -> ClusterRecord:
        """No longer failing: fixed only when verified on a new version that ran the phase."""
        if not self._verified(prev, seen):
            return prev
        ctx = self.ctx
        closing = ctx.issues.close_on_fix
        fixed = replace(
            prev,
            status="fixed",
            fixed_in=ctx.version,
            passing_on=added(prev.passing_on, ctx.version),
            closed_at=ctx.now.isoformat(timespec="seconds") if closing else None,
        )
        text = fixed_text(prev, ctx, closing)
        self.updates.append(self._action("close" if closing else "comment", fixed, text))
        return fixed

    def _verified(self, prev: ClusterRecord, seen: Observation) -> bool:
        ctx = self.ctx
        if prev.phase not in ctx.complete_phases or ctx.version is None:
            return False
        if ctx.version == prev.last_seen_version:
            return False  # same build, cluster gone: chance, not a fix
        if prev.error_type == BROKEN_ERROR:
            return prev.phase not in seen.broken_phases
        ran = [t for t in prev.tests if t in seen.passed]
        return bool(ran) and not any(t in _failing_tests(seen) for t in prev.tests)

    def _create(
        self,
        prev: ClusterRecord | None,
        failing: Failing,
        record: ClusterRecord,
        old: int | None = None,
    ) -> ClusterRecord:
        record = replace(record, issue_number=None, closed_at=None, fixed_in=None)
        body = issue_body(failing, self.ctx, record, old)
        action = self._action("create", record, body, labels=self._labels(failing.phase))
        action = replace(action, aliases=failing.aliases)
        if old is None:
            action = replace(action, reopen_days=self.ctx.issues.reopen_days)
        waited = prev is not None and prev.status == "open"
        standing = any(fp in self.ctx.standing for fp in (failing.fingerprint, *failing.aliases))
        self.candidates.append(_Candidate(failing, record, action, waited, standing))
        return record

    def _recur(self, prev: ClusterRecord, failing: Failing, record: ClusterRecord) -> ClusterRecord:
        closed = _aware(datetime.fromisoformat(prev.closed_at or ""))
        if _aware(self.ctx.now) - closed <= timedelta(days=self.ctx.issues.reopen_days):
            record = replace(record, closed_at=None, fixed_in=None, regressed_in=self.ctx.version)
            self.updates.append(
                self._action("reopen", record, reopen_text(prev, failing, self.ctx))
            )
            return record
        return self._create(prev, failing, record, old=prev.issue_number)

    def _progress(self, prev: ClusterRecord, failing: Failing) -> str | None:
        """A comment only when something changed: a new version still failing, tests joined."""
        joined = [t for t in failing.tests if t not in prev.tests]
        new_version = self.ctx.version != prev.last_seen_version
        if not (joined or new_version):
            return None
        return progress_text(prev, failing, self.ctx, joined, new_version)

    def _labels(self, phase: str) -> tuple[str, ...]:
        info = self.ctx.phases.get(phase)
        priority = (info.priority,) if info and info.priority else ()
        return tuple(dict.fromkeys([*self.ctx.issues.labels, *priority]))

    def _action(
        self, kind: ActionKind, record: ClusterRecord, body: str, labels: tuple[str, ...] = ()
    ) -> IssueAction:
        failing_on = (self.ctx.version or "unknown") if record.status == "open" else None
        return IssueAction(
            kind, record.fingerprint, record.title, body, labels, record.issue_number,
            failing_on=failing_on,
        )  # fmt: skip

    def actions(self, records: dict[str, ClusterRecord]) -> list[IssueAction]:
        """Updates, creates of causes the tracker has an issue for (adopted on apply: never
        counted), creates up to the cap, the summary of what waits, the deferrals.

        The "N more causes wait" comment goes on the first issue filed now in the waiting
        causes' phase (none filed: they are in the log only, Deferred) and lists the causes
        never listed before, marked ``told`` in ``records``."""
        ranked = sorted(
            (c for c in self.candidates if not c.standing),
            key=lambda c: (not c.waited, -len(c.failing.tests), c.record.fingerprint),
        )
        cap = self.ctx.issues.max_new_per_iteration
        filed, waiting = ranked[:cap], ranked[cap:]
        out = [*self.updates, *(c.action for c in self.candidates if c.standing)]
        out.extend(c.action for c in filed)
        for phase in dict.fromkeys(c.record.phase for c in waiting):
            host = next((c for c in filed if c.record.phase == phase), None)
            held = [c.record for c in waiting if c.record.phase == phase and not c.record.told]
            if host is not None and held:
                out.append(replace(host.action, kind="comment", body=deferred_text(held, cap)))
                records.update((r.fingerprint, replace(r, told=True)) for r in held)
        out.extend(replace(c.action, kind="defer", body="") for c in waiting)
        return out


def _aware(moment: datetime) -> datetime:
    """Naive times are taken as UTC, so stored and current times always compare."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _failing_tests(seen: Observation) -> set[str]:
    return {t for cluster in (*seen.failing.values(), *seen.flaky.values()) for t in cluster.tests}
