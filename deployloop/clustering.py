"""The second stage of clustering: near-identical normalized lines are one cause.

Fingerprint v2 masks the noise it knows; what it does not know (a generated name drawn from an
alphabet it cannot tell from a word, a wording that varies by one token) would still split a
cause. As the Kubernetes triage summarizer does, two normalized lines of the same error type
within 10 % edit distance are merged (rapidfuzz's Levenshtein, normalized by the longer line),
leader by leader, most frequent line first, so the work is (distinct lines x causes), not
(failures squared). Two guards keep causes apart that a 10 % budget would merge: the codes
kept in the lines (``500`` vs ``404``, ``1011`` vs ``1006``, exit status 3 vs 2) must be
equal, and lines under ``MIN_FUZZY`` characters merge only when equal. Beside it, a user's
merge rules (config: "these fingerprints are one cause") join whole clusters, the way LUCI
Analysis lets people edit a cluster's rule.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from deployloop.fingerprint import Explanation

MAX_DISTANCE = 0.10  # k8s triage's budget: at most 10 % of the line may differ
MIN_FUZZY = 20  # shorter lines carry too little to tell a typo from another cause
CANDIDATES = 5  # nearest leaders checked against the guards
_KEPT = re.compile(r"(?<![\w<])\d+")  # numbers the masks kept: codes that name a cause


@dataclass(frozen=True, slots=True)
class Cause:
    """One root cause: its key, an example normalized line, and every v2 print merged in.

    ``fingerprint`` is the representative's (the most frequent line; ties: the smallest);
    ``members`` lists it first, then the rest sorted. An issue keyed by any member is this
    cause's issue.
    """

    fingerprint: str
    error_type: str
    line: str
    members: tuple[str, ...]


def merge(
    explained: Iterable[Explanation], rules: Iterable[Sequence[str]] = ()
) -> dict[str, Cause]:
    """fingerprint -> its Cause, for every fingerprint in ``explained``.

    ``rules`` are the user's merge rules: each a list of v2 fingerprints that are one cause;
    a fingerprint not seen in ``explained`` is ignored.
    """
    counts = Counter((e.fingerprint, e.error_type, e.line) for e in explained)
    ordered = sorted(counts, key=lambda key: (-counts[key], key[2], key[0]))
    leader_of = _leaders(ordered)
    _apply_rules(leader_of, rules, {fp: -n for (fp, _, _), n in counts.items()})
    return _causes(ordered, leader_of)


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
    """Index of the nearest leader within MAX_DISTANCE whose kept codes equal ``line``'s."""
    found = process.extract(
        line,
        leaders,
        scorer=Levenshtein.normalized_distance,
        score_cutoff=MAX_DISTANCE,
        limit=CANDIDATES,
    )
    codes = _KEPT.findall(line)
    for _, _, index in found:
        if _KEPT.findall(leaders[index]) == codes:
            return int(index)
    return None


def _apply_rules(
    leader_of: dict[str, str], rules: Iterable[Sequence[str]], rank: Mapping[str, int]
) -> None:
    """Join the clusters a user's rule names: all go to the most frequent of them."""
    for rule in rules:
        heads = [leader_of[fp] for fp in rule if fp in leader_of]
        if len(heads) < 2:
            continue
        into = min(heads, key=lambda fp: rank[fp])
        for fp, head in list(leader_of.items()):
            if head in heads:
                leader_of[fp] = into


def _causes(
    ordered: Sequence[tuple[str, str, str]], leader_of: Mapping[str, str]
) -> dict[str, Cause]:
    info = {fp: (error_type, line) for fp, error_type, line in ordered}
    members: dict[str, list[str]] = {}
    for fingerprint, _, _ in ordered:
        members.setdefault(leader_of[fingerprint], []).append(fingerprint)
    causes = {}
    for head, group in members.items():
        error_type, line = info[head]
        cause = Cause(head, error_type, line, (head, *sorted(set(group) - {head})))
        causes.update(dict.fromkeys(group, cause))
    return causes
