"""Clustering quality on the labeled corpus (tests/data/clusters), v2 beside v1, and its cost.

``cluster_precision``/``cluster_recall``/``cluster_f1`` are pairwise scores of v2 (fingerprint
plus the near-duplicate merge) against the labels; ``v1_*`` the same for v1 (kept for migration).
``cluster_ms_per_1000_failures`` is v2's wall time per 1000 failures with cold caches: the
corpus repeated to 3000 failures, each copy's lines made unique so no cache can help.
"""

from __future__ import annotations

import time
from dataclasses import replace

from deployloop.fingerprint import normalize_v2
from tests.corpus import failures, score, v1_keys, v2_keys

GOALS = {
    "cluster_precision": (">=", 0.95),
    "cluster_recall": (">=", 0.95),
    "cluster_f1": (">=", 0.97),
    "cluster_ms_per_1000_failures": ("<=", 200.0),
}
COPIES = 8


def measure() -> dict[str, float]:
    v1, v2 = score(v1_keys), score(v2_keys)
    return {
        "cluster_precision": v2.precision,
        "cluster_recall": v2.recall,
        "cluster_f1": v2.f1,
        "cluster_count": float(v2.clusters),
        "v1_cluster_precision": v1.precision,
        "v1_cluster_recall": v1.recall,
        "v1_cluster_f1": v1.f1,
        "v1_cluster_count": float(v1.clusters),
        "cluster_ms_per_1000_failures": _ms_per_1000(),
    }


def _ms_per_1000() -> float:
    cases = [case for case, _ in failures()]
    # Each copy differs in a word of every message, so the line caches start cold for it.
    batch = [
        replace(c, message=f"{c.message} copy{n}", details=f"{c.details}\ncopy{n}")
        for n in range(COPIES)
        for c in cases
    ]
    normalize_v2.cache_clear()
    started = time.perf_counter()
    v2_keys(batch)
    return (time.perf_counter() - started) * 1000 / len(batch) * 1000
