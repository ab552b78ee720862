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
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

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


def causes_of(
    cases: Iterable[CaseResult], masks: Sequence[str] = (), rules: Iterable[Sequence[str]] = ()
) -> list[Cause]:
    """The Cause of each of ``cases`` (broken ones), in order, as :func:`key_cases` finds it;
    its key is ``Cause.key(prefer)``. One Cause object per cause, shared by its failures.

    What summaries and triage need, holding (fingerprint, error type, line) per failure rather
    than each failure's whole Explanation: 100,000 distinct failures cost some 30 MB less.
    """
    lines = [_line_of(explain(case, masks)) for case in cases]
    causes = _merge_lines(lines, rules)
    return [causes[fingerprint] for fingerprint, _, _ in lines]


def merge(
    explained: Iterable[Explanation], rules: Iterable[Sequence[str]] = ()
) -> dict[str, Cause]:
    """fingerprint -> its Cause, for every fingerprint in ``explained``.

    ``rules`` are the user's merge rules: each a list of v2 fingerprints that are one cause;
    a fingerprint not seen in ``explained`` is ignored.
    """
    return _merge_lines([_line_of(e) for e in explained], rules)


_Line = tuple[str, str, str]  # (fingerprint, error type, normalized line) of one failure


def _line_of(explanation: Explanation) -> _Line:
    return explanation.fingerprint, explanation.error_type, explanation.line


def _merge_lines(lines: Iterable[_Line], rules: Iterable[Sequence[str]]) -> dict[str, Cause]:
    """:func:`merge` over failures' lines."""
    counts = Counter(lines)
    ordered = sorted(counts, key=lambda key: (-counts[key], key[2], key[0]))
    leader_of = _leaders(ordered)
    near = {fp for fp, head in leader_of.items() if fp != head}
    ruled = _apply_rules(leader_of, rules, lambda: {fp: -n for (fp, _, _), n in counts.items()})
    how = {fp: Join.RULE if fp in ruled else Join.NEAR for fp in near | ruled}
    return _causes(ordered, leader_of, how)


def _leaders(ordered: Sequence[tuple[str, str, str]]) -> dict[str, str]:
    """fingerprint -> the fingerprint of the leader it joins (itself, when it leads)."""
    leader_of: dict[str, str] = {}
    buckets: dict[str, tuple[list[str], list[str]]] = {}  # type -> (lines, fingerprints)
    for fingerprint, error_type, line in ordered:
        lines, prints = buckets.setdefault(error_type, ([], []))
        joined = _nearest(line, lines) if len(line) >= MIN_FUZZY else None
        if joined is None:
            lines.append(line)
            prints.append(fingerprint)
            leader_of[fingerprint] = fingerprint
        else:
            leader_of[fingerprint] = prints[joined]
    return leader_of


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


def _apply_rules(
    leader_of: dict[str, str],
    rules: Iterable[Sequence[str]],
    ranking: Callable[[], Mapping[str, int]],
) -> set[str]:
    """Join the clusters a user's rule names: all go to the most frequent of them.

    ``ranking`` gives print -> rank (lower first), made only when a rule has work to do.
    Returns the prints that moved to another cluster's leader by a rule."""
    moved: set[str] = set()
    rank: Mapping[str, int] = {}
    for rule in rules:
        heads = {leader_of[fp] for fp in rule if fp in leader_of}
        if len(heads) < 2:
            continue
        rank = rank or ranking()
        into = min(heads, key=lambda fp: (rank[fp], fp))
        for fp, head in list(leader_of.items()):
            if head in heads and head != into:
                leader_of[fp] = into
                moved.add(fp)
    return moved


def _causes(
    ordered: Sequence[tuple[str, str, str]],
    leader_of: Mapping[str, str],
    how: Mapping[str, Join],
) -> dict[str, Cause]:
    # Lists only for the leaders others joined: 100,000 causes of one print each need none.
    followers: dict[str, list[str]] = {}
    for fingerprint, head in leader_of.items():
        if fingerprint != head:
            followers.setdefault(head, []).append(fingerprint)
    causes: dict[str, Cause] = {}
    for head, error_type, line in ordered:
        if leader_of[head] != head:
            continue
        rest = sorted(followers.get(head, ()))
        joined = tuple((fp, how[fp]) for fp in rest)
        cause = Cause(head, error_type, line, (head, *rest), joined)
        causes[head] = cause
        causes.update(dict.fromkeys(rest, cause))
    return causes
