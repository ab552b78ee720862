"""The issue wing's plain data: what triage remembers, decides and reads; what the loop hands it.

Frozen records cross the wing's stages (loop → desk → triage → text → deliver → tracker); the
records that live between iterations (``ClusterRecord``) and in the outbox (``IssueAction``)
round-trip through JSON with ``to_dict``/``from_dict``. Nothing here imports another module of
the wing, so every stage can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from deployloop.config import ClustersConfig, IssuesConfig, PhaseConfig, RetestConfig
from deployloop.gates import PhaseResult
from deployloop.models import CaseResult

Status = Literal["open", "fixed", "flaky"]
ActionKind = Literal["create", "comment", "close", "reopen", "defer", "rekey"]
BROKEN_ERROR = "DeploymentBroken"  # the error type of one cluster standing for a broken deploy
MAX_CAUSES = 20  # a broken deploy's causes listed (the largest); the rest are counted


@dataclass(frozen=True, slots=True)
class IterationReport:
    """What the issue stage needs from one iteration: the one value the loop hands the wing."""

    iteration: int
    version: str | None
    previous_version: str | None
    phases: tuple[PhaseResult, ...]
    dry_run: bool
    resumed: bool = False  # the iteration a killed run left unfinished: its filing may be half done
    # The versions its suites ran on (read before and after each, in order): more than one and
    # the iteration verifies no fix. Mixed suites saw two even after their rerun: their results
    # belong to no version, so they make no issue and close none.
    versions: tuple[str, ...] = ()
    mixed_suites: tuple[str, ...] = ()
    passed_before: frozenset[str] = frozenset()  # test ids that passed in the iteration before


@dataclass(frozen=True, slots=True)
class PhaseInfo:
    """What an issue body says about the phase a cluster failed in."""

    name: str
    priority: str | None = None
    verdicts: tuple[str, ...] = ()  # Verdict.describe() lines

    @classmethod
    def of(cls, config: PhaseConfig, result: PhaseResult | None = None) -> PhaseInfo:
        verdicts = tuple(v.describe() for v in result.verdicts) if result else ()
        return cls(config.name, config.priority, verdicts)


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    """One root cause as remembered between iterations (JSON-safe through to_dict/from_dict)."""

    fingerprint: str
    title: str
    message: str
    error_type: str
    phase: str
    tests: tuple[str, ...]
    first_seen_iteration: int
    first_seen_version: str | None
    last_seen_iteration: int
    last_seen_version: str | None
    status: Status = "open"
    issue_number: int | None = None
    closed_at: str | None = None  # ISO time the close was decided
    fixed_in: str | None = None
    # The version story (issue 22): versions it failed and passed on, in the order seen; the
    # last good version before it first failed (None: none known); when it first failed (ISO).
    failing_on: tuple[str, ...] = ()
    passing_on: tuple[str, ...] = ()
    last_good: str | None = None
    first_failed_at: str | None = None
    regressed_in: str | None = None  # failing again on this version after its verified fix
    told: bool = False  # listed in a "more causes wait" comment: never listed again

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("tests", "failing_on", "passing_on"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in ("tests", "failing_on", "passing_on"):
            known[name] = tuple(known.get(name, ()))
        return cls(**known)


@dataclass(frozen=True, slots=True)
class IssueAction:
    """One thing to tell the tracker. ``issue_number`` None: resolved by fingerprint on apply.

    ``defer`` is bookkeeping only: a new cluster over max_new_per_iteration, filed later.
    ``rekey`` re-marks issue ``issue_number`` from ``aliases[0]`` to ``fingerprint`` (no
    comment): a cause's issue filed under a v1 print, or under another member of its cause.
    """

    kind: ActionKind
    fingerprint: str
    title: str
    body: str
    labels: tuple[str, ...] = ()
    issue_number: int | None = None
    # create only: a closed issue with this fingerprint, closed within this many days, is
    # reopened instead (history triage did not have, e.g. after its state was lost). None:
    # the old issue is known and a new one is meant.
    reopen_days: float | None = None
    # The version this cause fails on now, for writes about a live cause ("unknown" when the
    # target did not say); None when it passes. A live cause's issue closed by hand as
    # completed is reopened on apply, saying so.
    failing_on: str | None = None
    # Other prints this cause's issue may carry (the other members of its cause, the v1
    # prints of its failures): a create finds an issue marked with one and re-keys it.
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["aliases"] = list(self.aliases)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IssueAction:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["labels"] = tuple(known.get("labels", ()))
        known["aliases"] = tuple(known.get("aliases", ()))
        return cls(**known)


class Standing(Enum):
    """What the tracker's listing says of an issue that stands for a cause (read at a
    session's first iteration, when triage's records may not know it): open, closed by a
    person as completed (within ``reopen_days``), or closed as not planned (muted)."""

    OPEN = "open"
    CLOSED = "closed"
    MUTED = "muted"

    @property
    def closed(self) -> bool:
        """Closed by a person, either way."""
        return self is not Standing.OPEN


@dataclass(frozen=True, slots=True)
class TriageContext:
    """Everything about this iteration that triage needs besides the runs."""

    iteration: int
    version: str | None
    previous_version: str | None
    issues: IssuesConfig
    now: datetime
    phases: Mapping[str, PhaseInfo] = field(default_factory=dict)
    complete_phases: frozenset[str] = frozenset()  # phases whose every suite ran to the end
    # phase → test ids that failed, then passed on rerun in that phase: flakiness is per phase
    flaky: Mapping[str, frozenset[str]] = field(default_factory=dict)
    repro: Mapping[str, str] = field(default_factory=dict)  # suite → command
    log_excerpts: Mapping[str, str] = field(default_factory=dict)  # suite → last lines
    retest: RetestConfig = field(default_factory=RetestConfig)
    clusters: ClustersConfig = field(default_factory=ClustersConfig)
    passed_before: frozenset[str] = frozenset()  # IterationReport.passed_before
    tonight: tuple[str, ...] = ()  # versions the session's iterations ran on, oldest first
    # (last good, first bad) → what changed between them (GitHub's compare API, behind the
    # desk's cache: asked only for a new issue's body); None: no source repo to ask
    compare: Callable[[str, str], Compare | None] | None = None
    # fingerprint → its issue's standing on the tracker; empty when the listing was not read
    standing: Mapping[str, Standing] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Commit:
    """One commit between last good and first bad (GitHub's compare API)."""

    sha: str
    title: str  # the message's first line, as written (untrusted)


@dataclass(frozen=True, slots=True)
class Compare:
    """What changed from ``base`` (last good) to ``head`` (first bad): ``url`` is GitHub's
    compare page; ``commits`` the first ones of ``total`` (compare API, oldest first)."""

    base: str
    head: str
    url: str
    commits: tuple[Commit, ...] = ()
    total: int = 0


@dataclass(slots=True)  # 100,000 distinct failures are 100,000 of these at once
class Failing:
    """One cluster as observed in this iteration."""

    fingerprint: str
    phase: str
    error_type: str
    message: str
    details: str
    cases: list[tuple[str, CaseResult]] = field(default_factory=list)  # (suite, case)
    # broken deploy: (message, tests) of its MAX_CAUSES largest causes; ``reasons`` counts all
    causes: tuple[tuple[str, int], ...] = ()
    phase_tests: int = 0
    aliases: tuple[str, ...] = ()  # other prints of its cause (IssueAction.aliases)
    reasons: int = 0

    @property
    def tests(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(case.id for _, case in self.cases))

    @property
    def suites(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(suite for suite, _ in self.cases))

    @property
    def broken_deploy(self) -> bool:
        return self.error_type == BROKEN_ERROR
