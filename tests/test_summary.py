"""Summaries: counts over testcase elements, pass rate, timing, clusters, the JSON shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deployloop.models import CaseResult, Outcome
from deployloop.summary import Cluster, percentile, summarize


def case(
    test_id: str, outcome: Outcome, seconds: float = 0.1, message: str = "", kind: str = ""
) -> CaseResult:
    return CaseResult(test_id, test_id, "", outcome, seconds, message, kind)


def sample() -> list[CaseResult]:
    return [
        case("t::a", Outcome.PASSED, 1.0),
        case("t::b", Outcome.FAILED, 2.0, "server closed with 1011 request 1 at 10.0.0.1", "E"),
        case("t::c", Outcome.FAILED, 3.0, "server closed with 1011 request 2 at 10.0.0.2", "E"),
        case("t::d", Outcome.ERROR, 4.0, "fixture broke", "RuntimeError"),
        case("t::e", Outcome.SKIPPED, 0.0),
        case("t::a", Outcome.PASSED, 0.5),  # the same test ran twice: two testcases
    ]


def test_counts_and_rates() -> None:
    """Counts per outcome over testcase elements; skips are not judged in the pass rate."""
    summary = summarize(sample(), files=2)
    assert (summary.files, summary.tests, summary.passed) == (2, 6, 2)
    assert (summary.failed, summary.errors, summary.skipped) == (2, 1, 1)
    assert summary.pass_rate == pytest.approx(2 / 5)
    assert summary.duration_s == pytest.approx(10.5)
    assert summary.p95_s == 4.0


def test_clusters_group_by_fingerprint_largest_first() -> None:
    """Failures sharing a fingerprint form one cluster; bigger clusters come first."""
    clusters = summarize(sample()).clusters
    assert [c.count for c in clusters] == [2, 1]
    assert clusters[0].tests == ("t::b", "t::c")
    assert clusters[0].message.startswith("server closed with 1011 request 1")
    assert clusters[0].error_type == "E"
    assert clusters[1].tests == ("t::d",)


def test_nothing_judged_is_not_green() -> None:
    """No tests, or only skips, give a pass rate of 0.0; with no time known, p95 is unknown."""
    empty = summarize([], files=1)
    assert (empty.tests, empty.pass_rate, empty.p95_s, empty.duration_s) == (0, 0.0, None, 0.0)
    assert summarize([case("s", Outcome.SKIPPED)]).pass_rate == 0.0


def test_json_has_exactly_the_contract_keys() -> None:
    """to_json carries the SPEC's keys in order, then pytest's other categories; clusters four."""
    data = summarize(sample()).to_json()
    assert list(data) == [
        "files",
        "tests",
        "passed",
        "failed",
        "errors",
        "skipped",
        "pass_rate",
        "duration_s",
        "p95_s",
        "clusters",
        "logical_tests",
        "xfailed",
        "xpassed",
        "flaky",
        "untimed",
    ]
    assert data["pass_rate"] == 0.4
    assert set(data["clusters"][0]) == {"fingerprint", "count", "message", "tests"}
    assert data["clusters"][0]["count"] == 2
    assert data["clusters"][0]["fingerprint"].startswith("v2-")


def test_summarize_consumes_a_stream_once() -> None:
    """summarize takes a one-shot iterator, so callers can stream cases from big files."""

    def stream() -> Iterator[CaseResult]:
        yield from sample()

    assert summarize(stream()).tests == 6


def test_extra_masks_merge_clusters() -> None:
    """User masks passed to summarize reach the fingerprints."""
    cases = [
        case("x", Outcome.FAILED, message="tenant acme-blue down"),
        case("y", Outcome.FAILED, message="tenant acme-red down"),
    ]
    assert len(summarize(cases).clusters) == 2
    assert len(summarize(cases, extra_masks=[r"acme-\w+"]).clusters) == 1


def test_cluster_count_is_its_distinct_tests() -> None:
    """A cluster counts the distinct test ids failing in it, as the issue title does: the same
    id failing in three files or suites of a phase is one test (item 6), listed once."""
    failing = [case(i, Outcome.FAILED, message="500 from /api") for i in ("a", "a", "b", "a")]
    (cluster,) = summarize(failing).clusters
    assert (cluster.count, cluster.tests) == (2, ("a", "b"))
    assert Cluster("v1-x", "m", "E", ("a", "b")).count == 2


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 95, 0.0),
        ([7.0], 95, 7.0),
        ([1.0, 2.0, 3.0], 95, 3.0),
        ([float(v) for v in range(1, 101)], 95, 95.0),
        ([float(v) for v in range(100, 0, -1)], 50, 50.0),
        ([3.0, 1.0, 2.0], 0, 1.0),
        ([3.0, 1.0, 2.0], 100, 3.0),
    ],
)
def test_percentile_nearest_rank(values: list[float], q: float, expected: float) -> None:
    """Nearest-rank percentile: always a measured value, never interpolated."""
    assert percentile(values, q) == expected


def test_percentile_rejects_out_of_range() -> None:
    """A percentile outside 0..100 is a programming error, raised loudly."""
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_top_lists_the_largest_clusters_as_the_full_summary_does_and_counts_the_rest() -> None:
    """``top``: the first clusters of the full summary, equal, in its order (ties as first
    seen); the clusters and failures past them counted; tallies unchanged (issue 19)."""
    cases = [
        *sample(),
        *(case(f"t::n{n}", Outcome.FAILED, 1.0, f"distinct {n}", f"E{n}Error") for n in range(5)),
        case("t::z", Outcome.FAILED, 1.0, "fixture broke", "RuntimeError"),
    ]
    full, top = summarize(cases), summarize(cases, top=3)
    assert top.clusters == full.clusters[:3]
    assert [c.count for c in top.clusters] == [2, 2, 1]
    assert (top.others, top.others_tests) == (len(full.clusters) - 3, 4) == (4, 4)
    assert top.tally == full.tally and (full.others, full.others_tests) == (0, 0)
