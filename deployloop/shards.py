"""A suite split into shards by its tests' earlier durations, and the shards merged back.

The split follows pytest-split's ``least_duration`` algorithm
(https://github.com/jerry-git/pytest-split, ``algorithms.py``): tests with a known duration,
longest first, each go to the group whose total is least so far. Tests with no duration yet (new
ones, or a first night) are not known here: the run plugin (``plugin/deployloop_run.py``) deals
them out round-robin in sorted id order, so every shard computes the same partition whatever
order pytest collects in, and no test runs twice or never.
"""

from __future__ import annotations

import heapq
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple
from xml.etree import ElementTree

from defusedxml.common import DefusedXmlException

from deployloop.atomic import replacing
from deployloop.errors import JUnitError
from deployloop.junit_caps import MAX_KEPT_BYTES
from deployloop.junit_merge import copy_suites
from deployloop.logical import hollow
from deployloop.models import CaseResult, RunEnd, SuiteRun

# A test in two shards: the shards' selection was not applied (deployloop's plugin did not run).
UNSELECTED = (
    "shards did not split the suite: {test} (and {more} more) ran in more than one shard; "
    "the run line must start pytest and pass PYTEST_ADDOPTS on (tox: passenv)"
)


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``; ``plan`` maps known test ids to their shard,
    shared by every shard of the suite (a tuple of pairs: a frozen record)."""

    index: int
    count: int
    plan: tuple[tuple[str, int], ...] = ()

    @property
    def pass_name(self) -> str:
        """The shard's pass: ``shard-2`` names ``<suite>+shard-2.log`` and its state row."""
        return f"shard-{self.index}"

    def write(self, path: Path) -> None:
        """The shard's selection for the run plugin, as JSON: ``{"index", "count", "plan"}``."""
        payload = {"index": self.index, "count": self.count, "plan": dict(self.plan)}
        path.write_text(json.dumps(payload), "utf-8")


def least_duration(durations: Mapping[str, float], count: int) -> dict[str, int]:
    """Known test ids (durations in seconds) dealt into ``count`` groups of near-equal total:
    each test, longest first (ties by id), to the group with the least total (ties: lowest
    index). Returns id → group, 1-based. Raises ValueError for ``count`` < 1."""
    if count < 1:
        raise ValueError(f"shard count must be at least 1, not {count}")
    heap = [(0.0, index) for index in range(1, count + 1)]
    groups: dict[str, int] = {}
    for test, seconds in sorted(durations.items(), key=lambda item: (-item[1], item[0])):
        total, index = heapq.heappop(heap)
        groups[test] = index
        heapq.heappush(heap, (total + max(0.0, seconds), index))
    return groups


def shards_for(durations: Mapping[str, float], count: int) -> tuple[Shard, ...]:
    """The ``count`` shards of a suite whose tests last took ``durations`` (id → seconds)."""
    plan = tuple(sorted(least_duration(durations, count).items()))
    return tuple(Shard(index, count, plan) for index in range(1, count + 1))


class MergedReport(NamedTuple):
    """The suite's one JUnit file made from its shards' kept reports (``write_merged``)."""

    path: Path | None  # None: nothing written (no shard kept a report, or one could not merge)
    problem: str | None = None  # why it was not written, for the suite's log


NOTHING_MERGED = MergedReport(None)

# What a shard's kept report that cannot be copied raises (junit_merge.copy_suites); its
# OSError is the disk's (a write to the merged file failed), so it goes on.
UNREADABLE = (ElementTree.ParseError, DefusedXmlException, JUnitError)


def merge(
    runs: Sequence[SuiteRun],
    expected_tests: int | None,
    log_path: Path,
    report: MergedReport = NOTHING_MERGED,
) -> SuiteRun:
    """The suite's one result from its shards' runs (in shard order; at least one).

    Every case of every shard, a test id reported by two shards once (the shards did not split
    the suite: a harness error saying so, never a sum); the suite's wall time is the longest
    shard's (they run side by side); the first shard that did not complete decides how the
    suite ended, and every shard's harness error is kept, prefixed ``shard i/n``. Emptiness and
    all-skipped are judged on the merged tests (a shard may rightly get none).
    ``expected_tests`` (the suite's ``expect_tests``) applies to the merged suite, as do the
    shards' collected counts (summed) and JUnit repair notes (all kept). ``log_path``
    gets one line per shard naming its log, so issue bodies and the report find them, then
    ``report``'s problem, if any; the result's ``junit_path`` is ``report``'s file, if any.
    """
    first = runs[0]
    count = len(runs)
    cases, repeated = _folded(runs)
    errors = [
        f"shard {i}/{count}: {run.harness_error}"
        for i, run in enumerate(runs, 1)
        if run.harness_error
    ]
    ended = next((run.ended for run in runs if run.ended is not RunEnd.COMPLETED), first.ended)
    if repeated:
        errors.append(UNSELECTED.format(test=repeated[0], more=len(repeated) - 1))
        ended = RunEnd.RUNNER_ERROR if ended is RunEnd.COMPLETED else ended
    if not errors and (problem := hollow(cases)):
        errors, ended = [problem], RunEnd.RUNNER_ERROR
    _write_index(log_path, runs, report.problem)
    return SuiteRun(
        phase=first.phase,
        suite=first.suite,
        cases=cases,
        wall_s=max(run.wall_s for run in runs),
        exit_code=next((run.exit_code for run in runs if run.exit_code), first.exit_code),
        harness_error="; ".join(errors) or None,
        version=first.version,
        junit_path=None if report.path is None else str(report.path),
        log_path=str(log_path),
        expected_tests=expected_tests,
        ended=ended,
        collected=_collected(runs),
        repairs=tuple(note for run in runs for note in run.repairs),
    )


def _collected(runs: Sequence[SuiteRun]) -> int | None:
    """The shards' collected tests together (each collects its own share), when all said."""
    counts = [run.collected for run in runs]
    return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)


def write_merged(
    target: Path, runs: Sequence[SuiteRun], limit: int = MAX_KEPT_BYTES
) -> MergedReport:
    """Write the suite's ``<iteration>/<suite>.xml`` (SPEC, "Files it writes": every suite's
    JUnit) at ``target``, atomically: one ``<testsuites>`` holding every shard's
    ``<testsuite>`` elements, shards in order, streamed from their kept files (so scrubbed like
    them; a folder of several kept files is read in name order). Memory holds one testcase at a
    time, never a shard's file (issue 19).

    A shard without a report (``junit_path`` None: it ended before pytest wrote one, a
    harness error its log line and the suite's result tell) adds nothing. The reports there
    are are merged whole, or there is no file (one an earlier attempt left is removed) and a
    problem line says why: a kept file that cannot be read (missing,
    not well-formed, not JUnit) or that was cut to head and tail past ``limit`` bytes
    (``junit_caps.cap_kept``: a copy for people, its cut maybe inside text). A merged file
    without some of a report's tests would read as all of them; without it, ``deployloop
    results`` reads the shards' own files (``junit.collect_files``). Raises ``OSError`` when
    ``target`` cannot be written, or a kept file fails part way through its reading.
    """
    kept = [_kept_files(run) for run in runs]
    problem = None
    if any(kept):
        try:
            with replacing(target) as out:
                out.write(b'<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n')
                for index, files in enumerate(kept, 1):
                    _copy_shard(out, files, f"shard {index}/{len(runs)}", limit)
                out.write(b"</testsuites>\n")
            return MergedReport(target)
        except _NotMerged as exc:
            problem = f"{target} not written: {exc}; the shards' own files hold their tests"
    target.unlink(missing_ok=True)  # an interrupted earlier attempt's: not this run's
    return MergedReport(None, problem)


class _NotMerged(Exception):
    """A shard's kept report that cannot be merged whole: ``shard i/n: FILE: problem``."""


def _kept_files(run: SuiteRun) -> list[Path]:
    """A shard's kept report: its file, the files of its folder (several result files kept
    together: ``junit_files.keep``), or none."""
    if run.junit_path is None:
        return []
    path = Path(run.junit_path)
    return sorted(path.glob("*.xml")) if path.is_dir() else [path]


def _copy_shard(out: BinaryIO, files: Sequence[Path], shard: str, limit: int) -> None:
    """Copy one shard's files to ``out``; raises ``_NotMerged`` for the first that cannot be
    copied whole."""
    for path in files:
        if _size(path) > limit:  # cap_kept leaves a cut file just over the limit
            raise _NotMerged(f"{shard}: {path}: cut to its head and tail past {limit} bytes")
        try:
            copy_suites(path, out)
        except UNREADABLE as exc:
            raise _NotMerged(f"{shard}: {path}: {_problem(exc)}") from None


def _size(path: Path) -> int:
    """``path``'s size in bytes; 0 when it cannot be seen (``copy_suites`` says why next)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _problem(exc: Exception) -> str:
    """What went wrong, without the path the caller names already."""
    if isinstance(exc, JUnitError):
        return exc.problem
    return f"refused ({exc})" if isinstance(exc, DefusedXmlException) else str(exc)


def write_users_report(note: Path, report: MergedReport) -> str | None:
    """Write the user's own ``--junitxml`` (the path the first shard's plugin wrote to
    ``note``, which is then removed; nothing to do without it) as a copy of the suite's merged
    file (``write_merged``): one merge for both, scrubbed like the kept files (issue 15 item
    14). Nothing is written without a merged file. Returns a line for the suite's log when a
    shard's report could not be merged (the user's file is left alone then), else None.
    Raises ``OSError`` when the user's file cannot be written."""
    try:
        target = Path(note.read_text("utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    note.unlink()
    if report.problem:
        return f"your --junitxml {target} was not written: a shard's report could not be merged"
    if report.path is None:
        return None
    with open(report.path, "rb") as source, replacing(target) as out:
        shutil.copyfileobj(source, out)
    return None


def _folded(runs: Sequence[SuiteRun]) -> tuple[tuple[CaseResult, ...], list[str]]:
    """Every shard's cases, a test id some earlier shard already reported left out (one logical
    test each: never counted twice), and those repeated ids in order."""
    seen: set[str] = set()
    cases: list[CaseResult] = []
    repeated: list[str] = []
    for run in runs:
        ids = {case.id for case in run.cases}
        cases.extend(case for case in run.cases if case.id not in seen)
        repeated.extend(case.id for case in run.cases if case.id in seen)
        seen |= ids
    return tuple(cases), repeated


def _write_index(log_path: Path, runs: Sequence[SuiteRun], problem: str | None) -> None:
    """The suite's log: a line per shard naming its log, then the merge's problem, if any."""
    lines = [
        f"[deployloop] shard {i}/{len(runs)}: {run.log_path} "
        f"({len(run.cases)} tests, exit {run.exit_code}, {run.wall_s:.1f} s"
        f"{'; ' + run.harness_error if run.harness_error else ''})\n"
        for i, run in enumerate(runs, 1)
    ]
    lines += [] if problem is None else [f"[deployloop] {problem}\n"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("".join(lines), "utf-8")
