"""Shards by duration (issue 21 item 2): the split, the plugin's partition over real pytest runs,
and the merge into the suite's one result."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from deployloop import shards
from deployloop.config import PhaseConfig
from deployloop.models import CaseResult, Outcome, RunEnd, SuiteRun
from deployloop.runner import SuiteJob, run_suite
from deployloop.shards import Shard
from tests.helpers import cli, config_text, phase_block, python_pytest, suite_block, write_tests

SUITE = """
import pytest
@pytest.mark.parametrize("n", range(10))
def test_p(n):
    pass
def test_plain():
    pass
"""


def shard_job(tmp_path: Path, shard: Shard, run: str) -> SuiteJob:
    phase = PhaseConfig.model_validate(
        {"name": "p", "suite": [{"name": "s", "run": run, "expect_tests": 11}]}
    )
    out = tmp_path / "out"
    name = f"s+{shard.pass_name}"
    return SuiteJob(phase, phase.suites[0], out / f"{name}.xml", out / f"{name}.log", shard=shard)


def case(test: str, outcome: Outcome = Outcome.PASSED) -> CaseResult:
    return CaseResult(test, test, "c", outcome, 1.0)


def run_of(*cases: CaseResult, error: str | None = None, wall: float = 1.0) -> SuiteRun:
    ended = RunEnd.COMPLETED if error is None else RunEnd.TIMEOUT
    return SuiteRun("p", "s", cases, wall, 0, error, ended=ended, log_path="x.log")


def test_least_duration_balances_groups_like_pytest_split() -> None:
    """Longest first into the lightest group (ties: lowest index): 10 | 6+3+2 | 5+4."""
    durations = {"a": 10.0, "b": 6.0, "c": 5.0, "d": 4.0, "e": 3.0, "f": 2.0}
    groups = shards.least_duration(durations, 3)
    totals = {i: sum(durations[t] for t, g in groups.items() if g == i) for i in (1, 2, 3)}
    assert totals == {1: 10.0, 2: 11.0, 3: 9.0}
    assert groups["f"] == 2 and groups["d"] == 3
    with pytest.raises(ValueError, match="at least 1"):
        shards.least_duration(durations, 0)


def test_shards_partition_a_real_suite_known_and_unknown(tmp_path: Path) -> None:
    """Three shards over a real suite, some ids known from durations and some new: every test
    runs exactly once, the known ones on their planned shard."""
    write_tests(tmp_path / "suite", "test_it.py", SUITE)
    known = {f"test_it.py::test_p[{n}]": float(n) for n in range(4)}
    planned = shards.shards_for(known, 3)
    run = python_pytest(f"--rootdir {tmp_path / 'suite'} {tmp_path / 'suite'}")
    seen: list[str] = []
    for shard in planned:
        result = run_suite(shard_job(tmp_path, shard, run), threading.Event())
        assert result.harness_error is None and result.expected_tests is None
        ids = [c.id for c in result.cases]
        assert all(dict(shard.plan).get(i, shard.index) == shard.index for i in ids)
        seen += ids
    assert len(seen) == len(set(seen)) == 11
    assert dict(planned[0].plan)["test_it.py::test_p[3]"] == 1  # the longest goes first


def test_a_shard_given_no_test_is_no_harness_error(tmp_path: Path) -> None:
    """More shards than tests: an empty shard is fine; emptiness is the merged suite's."""
    write_tests(tmp_path / "suite", "test_it.py", "def test_a():\n    pass\n")
    run = python_pytest(str(tmp_path / "suite"))
    runs = [
        run_suite(shard_job(tmp_path, s, run), threading.Event()) for s in shards.shards_for({}, 2)
    ]
    assert [len(r.cases) for r in runs] == [1, 0] and all(r.harness_error is None for r in runs)
    merged = shards.merge(runs, 1, tmp_path / "s.log")
    assert merged.harness_error is None and merged.counts["passed"] == 1


def test_merge_keeps_every_case_and_each_shards_harness_error(tmp_path: Path) -> None:
    """Cases of all shards, longest wall, shard-prefixed errors, the first bad end decides."""
    merged = shards.merge(
        [run_of(case("a"), wall=2.0), run_of(case("b"), error="timed out after 1 s", wall=5.0)],
        7,
        tmp_path / "s.log",
    )
    assert [c.id for c in merged.cases] == ["a", "b"] and merged.wall_s == 5.0
    assert merged.harness_error == "shard 2/2: timed out after 1 s"
    assert merged.ended is RunEnd.TIMEOUT and merged.expected_tests == 7
    assert "shard 2/2: x.log" in (tmp_path / "s.log").read_text()


def test_merge_judges_emptiness_and_skips_on_the_whole_suite(tmp_path: Path) -> None:
    """No test in any shard, or every test skipped: a harness error for the merged suite."""
    empty = shards.merge([run_of(), run_of()], None, tmp_path / "s.log")
    assert empty.harness_error == "zero tests collected" and empty.ended is RunEnd.RUNNER_ERROR
    skipped = shards.merge(
        [run_of(case("a", Outcome.SKIPPED)), run_of(case("b", Outcome.SKIPPED))],
        None,
        tmp_path / "s.log",
    )
    assert skipped.harness_error == "all 2 tests skipped"


def test_a_remote_task_carries_the_deadline_on_the_wall_clock(tmp_path: Path) -> None:
    """The session deadline (coordinator-monotonic) reaches a worker as wall-clock time and is
    put back on the worker's monotonic clock: another host's monotonic clock is unrelated."""
    import dataclasses
    import time

    from deployloop.executors.remote import TaskSpec

    job = shard_job(tmp_path, Shard(1, 2), "pytest")
    job = dataclasses.replace(job, deadline=time.monotonic() + 100.0)
    spec = TaskSpec.for_worker(job, (), ("stop", "starts", "topic"), None)
    assert spec.job.deadline is None  # nothing monotonic travels
    assert spec.deadline is not None and abs(spec.deadline - (time.time() + 100.0)) < 1.0
    local = spec.local_job(tmp_path / "j.xml", tmp_path / "j.log")
    assert local.deadline is not None and abs(local.deadline - (time.monotonic() + 100.0)) < 1.0
    assert local.junit_path == tmp_path / "j.xml" and local.log_path == tmp_path / "j.log"
    none = TaskSpec.for_worker(dataclasses.replace(job, deadline=None), (), ("s", "t", "u"), None)
    assert none.local_job(tmp_path / "a", tmp_path / "b").deadline is None


def test_merge_folds_a_test_two_shards_ran_and_says_the_split_failed(tmp_path: Path) -> None:
    """Two shards that each ran the whole suite: one logical test per id, never a sum, and a
    harness error saying the shards did not split the suite."""
    whole = (case("a"), case("b", Outcome.FAILED), case("c"))
    merged = shards.merge([run_of(*whole), run_of(*whole)], None, tmp_path / "s.log")
    assert [c.id for c in merged.cases] == ["a", "b", "c"]
    assert merged.counts["passed"] == 2 and merged.counts["failed"] == 1
    assert merged.harness_error is not None and "did not split" in merged.harness_error
    assert "a (and 2 more)" in merged.harness_error and merged.ended is RunEnd.RUNNER_ERROR


def test_validate_refuses_shards_on_a_run_line_that_is_not_pytest(tmp_path: Path) -> None:
    """Case v: shards = 2 on a line that copies a JUnit file (no pytest, no plugin) is a config
    error at the shards key's line, exit 2, for validate and run alike; shards = true is
    refused, not taken as 1."""
    copy = "sh -c 'mkdir -p out && cp r.xml out/'"
    text = config_text(
        phase_block(
            "p",
            suite_block("copy", copy, junit="out/*.xml", shards=2),
            suite_block("flag", python_pytest(str(tmp_path)), shards=True),
            parallel=False,
        )
    )
    (tmp_path / "deployloop.toml").write_text(text)
    done = cli("validate", cwd=tmp_path)
    at = dict(enumerate(text.splitlines(), 1))
    shards_lines = [n for n, line in at.items() if line.strip().startswith("shards")]
    parallel_line = next(n for n, line in at.items() if line.startswith("parallel"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"deployloop.toml:{shards_lines[0]}: " in done.stderr
    assert "shards need a run line that starts pytest" in done.stderr
    assert f"deployloop.toml:{shards_lines[1]}: " in done.stderr
    assert f"deployloop.toml:{parallel_line}: " in done.stderr
    assert done.stderr.count("not true or false") == 2
    started = cli("run", "--once", cwd=tmp_path)
    assert started.returncode == 2 and "shards need a run line" in started.stderr
