"""Clusters match root causes: the near-duplicate merge, user rules, the corpus, the cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployloop.clustering import merge
from deployloop.fingerprint import explain
from deployloop.junit import read_cases
from deployloop.models import Outcome
from deployloop.testing import case
from tests.corpus import CORPUS, failures, pairwise, score, v1_keys, v2_keys

HANDED = CORPUS / "handed"


def causes_of(*messages: str) -> list[str]:
    """The cause key of one failure per message, after the merge."""
    explained = [
        explain(case(f"t.py::test_{i}", Outcome.FAILED, m, "RuntimeError"))
        for i, m in enumerate(messages)
    ]
    found = merge(explained)
    return [found[e.fingerprint].fingerprint for e in explained]


def test_near_identical_lines_merge() -> None:
    """Residual noise the masks miss (a letters-only generated suffix) does not split a cause."""
    one, two = causes_of(
        "namespace e2e-tests-checkout-aqxeu is terminating, pods still present",
        "namespace e2e-tests-checkout-oiuea is terminating, pods still present",
    )
    assert one == two


def test_codes_block_the_merge() -> None:
    """Lines a few characters apart stay apart when their codes differ (500 vs 404)."""
    one, two = causes_of(
        "GET /api/orders answered with status 500 after retrying the request",
        "GET /api/orders answered with status 404 after retrying the request",
    )
    assert one != two


def test_endpoints_block_the_merge() -> None:
    """Long lines that differ only in the endpoint they name stay apart (/api/agents vs
    /api/billing), while the same endpoint with residual noise still merges."""
    shared = (
        " after 3 attempts: upstream connect error or disconnect/reset before headers, "
        "reset reason: connection termination, retried by the gateway and gave up"
    )
    agents, billing, again = causes_of(
        "HTTPError: status 500 from /api/agents" + shared,
        "HTTPError: status 500 from /api/billing" + shared,
        "HTTPError: status 500 from /api/agents" + shared.replace("gave up", "gave  up"),
    )
    assert agents != billing
    assert agents == again


def test_short_and_distant_lines_stay_apart() -> None:
    """Short lines merge only when equal; lines more than 10 % apart never merge."""
    assert len(set(causes_of("cart empty", "cart emptx"))) == 2
    assert len(set(causes_of("search index is not ready yet", "login redirect loop found"))) == 2


def test_representative_is_the_most_frequent_line() -> None:
    """The cause's key is its most frequent member's print; every member is listed."""
    lines = ["replica set web-abcdeq is lagging behind its primary"] * 3
    lines.append("replica set web-abuoeq is lagging behind its primary")
    explained = [
        explain(case(f"t.py::test_{i}", Outcome.FAILED, m, "E")) for i, m in enumerate(lines)
    ]
    found = merge(explained)
    cause = found[explained[-1].fingerprint]
    assert cause.fingerprint == explained[0].fingerprint
    assert cause.members == (explained[0].fingerprint, explained[-1].fingerprint)


def test_user_rules_merge_named_fingerprints() -> None:
    """A merge rule from the config joins two clusters; unknown prints in it are ignored."""
    explained = [
        explain(case("t.py::test_a", Outcome.FAILED, "search index not ready", "E")),
        explain(case("t.py::test_b", Outcome.FAILED, "indexer queue is stuck", "E")),
    ]
    prints = [e.fingerprint for e in explained]
    assert len({c.fingerprint for c in merge(explained).values()}) == 2
    merged = merge(explained, [[*prints, "v2-000000000000"]])
    assert len({c.fingerprint for c in merged.values()}) == 1


def test_corpus_precision_and_recall() -> None:
    """On the labeled corpus (>= 250 failures, >= 25 causes) v2 scores >= 0.95 each."""
    labeled = failures()
    assert len(labeled) >= 250
    assert len({label for _, label in labeled}) >= 25
    v2 = score(v2_keys)
    assert v2.precision >= 0.95
    assert v2.recall >= 0.95
    assert score(v1_keys).f1 < v2.f1  # the corpus does show v1's faults


def test_pairwise_scores() -> None:
    """A split costs recall, a merge costs precision; a perfect clustering scores 1."""
    assert pairwise(["a", "a", "b"], ["x", "x", "y"]).f1 == 1.0
    split = pairwise(["a", "b", "c"], ["x", "x", "y"])
    assert (split.precision, split.recall) == (1.0, 0.0)
    merged = pairwise(["a", "a", "a"], ["x", "x", "y"])
    assert merged.precision == pytest.approx(1 / 3)
    assert merged.recall == 1.0


def clusters_in(path: Path) -> list[set[str]]:
    """The v2 clusters of one JUnit file, as sets of test names."""
    cases = [c for c in read_cases(path) if c.broken]
    keys = v2_keys(cases)
    groups: dict[str, set[str]] = {}
    for found, key in zip(cases, keys, strict=True):
        groups.setdefault(key, set()).add(found.name)
    return sorted(groups.values(), key=len)


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("03-xdist-worker-crash.xml", [3]),
        ("05-jest-suite-failed-to-run.xml", [1, 1]),
        ("20-playwright-1.58.2.xml", [3]),
        ("20-playwright-1.65.1.xml", [3]),
        ("21-jest-junit-first-line.xml", [2, 2]),
        ("22-mocha-ci-path.xml", [3]),
        ("22-mocha-tmp-path.xml", [3]),
    ],
)
def test_handed_cases_cluster_right(file: str, expected: list[int]) -> None:
    """shared/cases 03, 05, 20, 21, 22: the right number of clusters of the right sizes."""
    assert [len(group) for group in clusters_in(HANDED / file)] == expected


def test_jest_case_splits_by_status() -> None:
    """Case 21: the agents tests (500) and the billing tests (404) are the two clusters."""
    groups = clusters_in(HANDED / "21-jest-junit-first-line.xml")
    assert {frozenset(g) for g in groups} == {
        frozenset({"agents list agents", "agents start agent"}),
        frozenset({"billing list invoices", "billing list plans"}),
    }
