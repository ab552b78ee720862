"""The second stage of clustering: near-identical normalized lines are one cause.

Fingerprint v2 masks the noise it knows; what it does not know (a generated name drawn from an
alphabet it cannot tell from a word, a wording that varies by one token) would still split a
cause. As the Kubernetes triage summarizer does, two normalized lines of the same error type
within 10 % edit distance are merged (rapidfuzz's Levenshtein, normalized by the longer line),
leader by leader, most frequent line first, so the work is (distinct lines x causes), not
(failures squared). Three guards keep causes apart that a 10 % budget would merge: the codes
kept in the lines (``500`` vs ``404``, ``1011`` vs ``1006``, exit status 3 vs 2) must be
equal, so must the paths they name (``/api/agents`` vs ``/api/billing``: one endpoint's
failure is not another's), and lines under ``MIN_FUZZY`` characters merge only when equal.
Beside it, a user's merge rules (config: "these fingerprints are one cause") join whole
clusters, the way LUCI Analysis lets people edit a cluster's rule.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import groupby
from operator import itemgetter

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from deployloop.fingerprint import Explanation, explain
from deployloop.models import CaseResult

MAX_DISTANCE = 0.10  # k8s triage's budget: at most 10 % of the line may differ
MIN_FUZZY = 20  # shorter lines carry too little to tell a typo from another cause
CANDIDATES = 5  # nearest leaders checked against the guards
_KEPT = re.compile(r"(?<![\w<])\d+")  # numbers the masks kept: codes that name a cause
_PATH = re.compile(r"(?<![\w/<.])/[\w.~<>-]+(?:/[\w.~<>-]*)*")  # /api/agents, /var/data
_SOURCE_FILE = re.compile(r"\.[a-z]{1,4}$")  # agents.spec.js: where the test is, not the cause


class Join(Enum):
    """How a v2 print joined a cause it does not represent."""

    NEAR = "near-duplicate"  # its line is within MAX_DISTANCE of the leader's
    RULE = "merge rule"  # a user's ``[clusters] merge`` rule names it with the cause


@dataclass(frozen=True, slots=True)
class Cause:
    """One root cause: its key, an example normalized line, and every v2 print merged in.

    ``fingerprint`` is the representative's (the most frequent line; ties: the smallest);
    ``members`` lists it first, then the rest sorted. An issue keyed by any member is this
    cause's issue. ``joined`` says how each other member joined, in ``members`` order.
    """

    fingerprint: str
    error_type: str
    line: str
    members: tuple[str, ...]
    joined: tuple[tuple[str, Join], ...] = ()

    def key(self, prefer: Collection[str] = ()) -> str:
        """The cluster key: the first member in ``prefer`` (the prints issues already have,
        so a cause keeps its issue when frequencies move its representative), else the
        representative's."""
        return next((m for m in self.members if m in prefer), self.fingerprint)


@dataclass(frozen=True, slots=True)
class Keyed:
    """One broken case as clustered: how v2 read it, its cause, and its cluster key."""

    explanation: Explanation
    cause: Cause
    key: str


def key_cases(
    cases: Sequence[CaseResult],
    masks: Sequence[str] = (),
    rules: Iterable[Sequence[str]] = (),
    prefer: Collection[str] = (),
) -> list[Keyed]:
    """The cluster of each of ``cases`` (broken ones), in order: the one way failures are keyed.

    Summaries (``session.md``, ``results``, the report) and triage (the issue marker) all call
    this once over a whole set of failures: :func:`fingerprint.explain` each with the user's
    ``masks``, then :func:`merge` with the user's merge ``rules``; the key is
    ``Cause.key(prefer)``. A bad mask raises ValueError naming it.
    """
    explained = [explain(case, masks) for case in cases]
    causes = merge(explained, rules)
    return [Keyed(e, causes[e.fingerprint], causes[e.fingerprint].key(prefer)) for e in explained]


def cluster_keys(
    cases: Sequence[CaseResult],
    masks: Sequence[str] = (),
    rules: Iterable[Sequence[str]] = (),
    prefer: Collection[str] = (),
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Each of ``cases``' (broken ones') cluster key, in order, as :func:`key_cases` keys it;
    and the members (``Cause.members``) of each cause that has several, by its key.

    What summaries and triage need, held lean: one print per failure, per distinct print its
    error type, and a line only for the prints that share their error type with another (the
    only ones that may join another); no Cause object. 100,000 distinct failures cost a
    third of what 100,000 Causes did (issue 19).
    """
    found = _Found.read((explain(case, masks) for case in cases), keep_lines=False)
    found.add_lines(cases, masks)
    joins, _ = _group(found, rules)
    members = _members(joins)
    key_of = {
        head: next((m for m in names if m in prefer), head) for head, names in members.items()
    }
    keys = found.prints
    for index, fingerprint in enumerate(keys):
        head = joins.get(fingerprint, fingerprint)
        keys[index] = key_of.get(head, head)
    return keys, {key_of[head]: names for head, names in members.items()}


def merge(
    explained: Iterable[Explanation], rules: Iterable[Sequence[str]] = ()
) -> dict[str, Cause]:
    """fingerprint -> its Cause, for every fingerprint in ``explained``.

    ``rules`` are the user's merge rules: each a list of v2 fingerprints that are one cause;
    a fingerprint not seen in ``explained`` is ignored.
    """
    found = _Found.read(explained)
    joins, how = _group(found, rules)
    members = _members(joins)
    causes: dict[str, Cause] = {}
    for head in found.ordered():
        if head in joins:
            continue
        _, error_type, line = found.lines[head]
        names = members.get(head, (head,))
        joined = tuple((fp, how[fp]) for fp in names[1:])
        causes.update(dict.fromkeys(names, Cause(head, error_type, line, names, joined)))
    return causes


@dataclass(frozen=True, slots=True)
class _Found:
    """Failures as v2 read them: each one's print (one string object per distinct print), per
    distinct print its (print, error type), per print whose line is kept its (print, error
    type, normalized line), and how many failures have each print that more than one has
    (100,000 distinct failures need no count each)."""

    prints: list[str]
    kinds: dict[str, tuple[str, str]]
    lines: dict[str, tuple[str, str, str]]
    repeated: dict[str, int]

    @classmethod
    def read(cls, explained: Iterable[Explanation], keep_lines: bool = True) -> _Found:
        found = cls([], {}, {}, {})
        for e in explained:
            kind = found.kinds.get(e.fingerprint)
            if kind is None:
                kind = found.kinds[e.fingerprint] = (e.fingerprint, e.error_type)
                if keep_lines:
                    found.lines[e.fingerprint] = (e.fingerprint, e.error_type, e.line)
            else:
                found.repeated[kind[0]] = found.repeated.get(kind[0], 1) + 1
            found.prints.append(kind[0])
        return found

    def add_lines(self, cases: Sequence[CaseResult], masks: Sequence[str]) -> None:
        """Keep the lines of the prints that share their error type with another print (read
        again from ``cases``, as :meth:`read` read them): a print alone in its type leads its
        cause, since near-duplicates merge within a type only."""
        shared: set[str] = set()
        for _, group in groupby(sorted(self.kinds.values(), key=itemgetter(1)), itemgetter(1)):
            kinds = list(group)
            if len(kinds) > 1:
                shared.update(fp for fp, _ in kinds)
        for case, fingerprint in zip(cases, self.prints, strict=True):
            if fingerprint in shared and fingerprint not in self.lines:
                e = explain(case, masks)
                self.lines[fingerprint] = (fingerprint, e.error_type, e.line)

    def count(self, fingerprint: str) -> int:
        """How many failures have this print."""
        return self.repeated.get(fingerprint, 1)

    def ordered(self) -> list[str]:
        """Distinct prints, most frequent first; ties by line, then print (stable sorts, so no
        sort key tuple per print)."""
        ordered = sorted(self.lines)
        ordered.sort(key=lambda fp: self.lines[fp][2])
        ordered.sort(key=self.count, reverse=True)
        return ordered


def _group(found: _Found, rules: Iterable[Sequence[str]]) -> tuple[dict[str, str], dict[str, Join]]:
    """print -> the leader it joins, for the prints that join another (leaders are left out:
    100,000 causes of one print each need no entry); and how each of those joined."""
    joins = _leaders(found.lines[fp] for fp in found.ordered())
    near = set(joins)
    ruled = _apply_rules(found, joins, rules)
    return joins, {fp: Join.RULE if fp in ruled else Join.NEAR for fp in near | ruled}


def _leaders(ordered: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """print -> the print of the leader it joins, for the prints that join one; ``ordered``:
    (print, error type, line), most frequent first. Type by type (a stable sort keeps each
    type's lines most frequent first): 100,000 types hold one type's leaders at a time."""
    joins: dict[str, str] = {}
    for _, group in groupby(sorted(ordered, key=itemgetter(1)), key=itemgetter(1)):
        lines: list[str] = []
        prints: list[str] = []
        for fingerprint, _, line in group:
            joined = _nearest(line, lines) if len(line) >= MIN_FUZZY else None
            if joined is None:
                lines.append(line)
                prints.append(fingerprint)
            else:
                joins[fingerprint] = prints[joined]
    return joins


def _nearest(line: str, leaders: list[str]) -> int | None:
    """Index of the nearest leader within MAX_DISTANCE whose kept codes and paths equal
    ``line``'s."""
    found = process.extract(
        line,
        leaders,
        scorer=Levenshtein.normalized_distance,
        score_cutoff=MAX_DISTANCE,
        limit=CANDIDATES,
    )
    guards = _guards(line)
    for _, _, index in found:
        if _guards(leaders[index]) == guards:
            return int(index)
    return None


def _guards(line: str) -> tuple[list[str], list[str]]:
    """What must be equal for two lines to merge: their kept codes and the paths they name
    (endpoints, directories; not a source file's location, which names the test: mocha's
    "Timeout of 1000ms exceeded … (./test/agents.spec.js)")."""
    paths = [p for p in _PATH.findall(line) if not _SOURCE_FILE.search(p)]
    return _KEPT.findall(line), paths


def _apply_rules(found: _Found, joins: dict[str, str], rules: Iterable[Sequence[str]]) -> set[str]:
    """Join the clusters a user's rule names: all go to the most frequent of them (ties: the
    smallest print). ``joins`` as :func:`_group` gives it, updated in place.

    Returns the prints that moved to another cluster's leader by a rule."""
    moved: set[str] = set()
    for rule in rules:
        heads = {joins.get(fp, fp) for fp in rule if fp in found.kinds}
        if len(heads) < 2:
            continue
        into = min(heads, key=lambda fp: (-found.count(fp), fp))
        for fp in found.kinds:
            head = joins.get(fp, fp)
            if head in heads and head != into:
                joins[fp] = into
                moved.add(fp)
    return moved


def _members(joins: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """leader -> its cause's members (itself, then the prints that joined it, sorted), for the
    leaders others joined."""
    followers: dict[str, list[str]] = {}
    for fingerprint, head in joins.items():
        followers.setdefault(head, []).append(fingerprint)
    return {head: (head, *sorted(rest)) for head, rest in followers.items()}
