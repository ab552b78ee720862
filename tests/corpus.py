"""The labeled clustering corpus (tests/data/clusters) and pairwise scores against its labels.

Pairwise scores, as clustering evaluations use them: of all pairs of failures put in one
cluster, the share that truly share a cause (precision); of all pairs that share a cause, the
share put in one cluster (recall). A split cause costs recall, a merge of two costs precision.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployloop.clustering import key_cases
from deployloop.fingerprint import v1_fingerprint
from deployloop.junit import read_cases
from deployloop.models import CaseResult

CORPUS = Path(__file__).resolve().parent / "data" / "clusters"


@dataclass(frozen=True, slots=True)
class Scores:
    """Pairwise precision, recall and F1 of one clustering, with its cluster count."""

    precision: float
    recall: float
    f1: float
    clusters: int


def failures(directory: Path = CORPUS) -> list[tuple[CaseResult, str]]:
    """Every broken testcase of the corpus's JUnit files, with its labeled cause."""
    labels = json.loads((directory / "labels.json").read_text(encoding="utf-8"))
    out = []
    for path in sorted(directory.glob("night*/*.xml")):
        out += [(case, labels[case.id]) for case in read_cases(path) if case.broken]
    return out


def v1_keys(cases: Sequence[CaseResult]) -> list[str]:
    """The cluster key of each failure as v1 computed it (fingerprint.v1_fingerprint)."""
    return [v1_fingerprint(c) for c in cases]


def v2_keys(cases: Sequence[CaseResult]) -> list[str]:
    """The cluster key of each failure as summary and triage compute it (clustering.key_cases:
    fingerprint v2, then the near-duplicate merge)."""
    return [found.key for found in key_cases(cases)]


def pairwise(keys: Sequence[str], labels: Sequence[str]) -> Scores:
    """Pairwise scores of ``keys`` (cluster of each failure) against ``labels`` (its cause)."""

    def pairs(counts: Counter[object]) -> int:
        return sum(math.comb(n, 2) for n in counts.values())

    together = pairs(Counter(zip(keys, labels, strict=True)))
    predicted, true = pairs(Counter(keys)), pairs(Counter(labels))
    precision = together / predicted if predicted else 1.0
    recall = together / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, len(set(keys)))


def score(keyer: Callable[[Sequence[CaseResult]], list[str]]) -> Scores:
    """``keyer``'s pairwise scores on the whole corpus."""
    labeled = failures()
    return pairwise(keyer([c for c, _ in labeled]), [label for _, label in labeled])
