"""A sharded suite's one JUnit file (SPEC, "Files it writes": ``<iteration>/<suite>.xml`` for
every suite): its shards' kept reports merged into ``<testsuites>``, streamed, scrubbed like
them, a broken shard report left out and said so in the suite's log."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from defusedxml import ElementTree as DefusedElementTree

from deployloop import junit, shards
from deployloop.config import PhaseConfig
from deployloop.dispatch import Sharded
from deployloop.events import Reporter
from deployloop.junit_caps import cap_kept
from deployloop.models import SuiteRun
from deployloop.runner import run_suite
from deployloop.shards import Shard
from deployloop.state import SessionRow, Store
from tests.helpers import (
    cli,
    config_text,
    phase_block,
    python_pytest,
    session_dirs,
    suite_block,
    write_tests,
)
from tests.test_shards import shard_job

TOKEN = "ghp_" + "Zx98" * 9  # a GitHub token's shape: masked wherever deployloop writes
SUITE = f"""
import pytest
@pytest.mark.parametrize("n", range(10))
def test_order(n):
    assert n != 3, "backend said 502 for order 3"
def test_login():
    print("Authorization: token {TOKEN}")
    raise PermissionError("token {TOKEN} refused")
@pytest.mark.skip(reason="not on staging")
def test_later():
    pass
"""
TESTS = 12


def _ids(path: Path) -> list[str]:
    """Every testcase of a JUnit file, ``classname::name``, read whole (a small file)."""
    root = DefusedElementTree.parse(path).getroot()
    return [f"{c.get('classname')}::{c.get('name')}" for c in root.iter("testcase")]


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SuiteRun]:
    """One real ``run --once`` of a suite in three shards: its iteration directory and the
    suite's stored full run."""
    directory = tmp_path_factory.mktemp("night")
    write_tests(directory / "e2e", "test_e2e.py", SUITE)
    block = suite_block("e2e", python_pytest(str(directory / "e2e")), shards=3)
    text = config_text(phase_block("api", block), extra="[retest]\nrerun_failed = false\n")
    (directory / "deployloop.toml").write_text(text)
    done = cli("run", "--once", cwd=directory)
    assert done.returncode == 1, done.stderr
    (session,) = session_dirs(directory / "logs")
    store = Store(directory / "logs" / ".state")
    try:
        ((_, run),) = store.runs(session.name, 1)
    finally:
        store.close()
    return session / "1", run


def test_a_sharded_suite_leaves_its_one_junit_file(night: tuple[Path, SuiteRun]) -> None:
    """``<iteration>/e2e.xml`` exists beside the shards' files, is one ``<testsuites>`` of
    every shard's suite, holds each test once, counts as the merged run counts, and is the
    stored run's ``junit_path``."""
    iteration, run = night
    merged = iteration / "e2e.xml"
    assert run.junit_path == str(merged)
    root = DefusedElementTree.parse(merged).getroot()
    assert root.tag == "testsuites" and len(root.findall("testsuite")) == 3
    ids = _ids(merged)
    assert len(ids) == TESTS and max(Counter(ids).values()) == 1
    read = SuiteRun("api", "e2e", tuple(junit.read_cases(merged)), 0.0, 1)
    assert read.counts == run.counts and run.counts["failed"] == 2
    assert sorted(c.id for c in read.cases) == sorted(c.id for c in run.cases)


def test_the_merged_file_is_scrubbed(night: tuple[Path, SuiteRun]) -> None:
    """The token a failing test printed and raised is masked in the merged file (it is copied
    from the shards' scrubbed files), never there raw."""
    text = (night[0] / "e2e.xml").read_text(encoding="utf-8")
    assert TOKEN not in text
    assert "token [REDACTED] refused" in text and "test_login" in text


def _damage_cut(path: Path) -> None:
    cap_kept(path, limit=400)  # as a report past MAX_KEPT_BYTES is kept: head and tail


def _damage_gone(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    ("damage", "words"),
    [(_damage_cut, "line "), (_damage_gone, "No such file")],
    ids=["cut-in-markup", "missing"],
)
def test_a_broken_shard_report_means_no_merged_file_and_a_line(
    tmp_path: Path, damage: Callable[[Path], None], words: str
) -> None:
    """Shard 2 of 3 kept a report that cannot be read: no merged file (one without shard 2's
    tests would read as the whole suite, and ``results`` on the folder would then skip the
    shard files), the merged run names none, and the suite's log has one line naming the
    shard, the file and the problem."""
    write_tests(tmp_path / "suite", "test_it.py", SUITE)
    line = python_pytest(f"--rootdir {tmp_path / 'suite'} {tmp_path / 'suite'}")
    phase = PhaseConfig.model_validate(
        {"name": "p", "suite": [{"name": "s", "run": line, "shards": 3}]}
    )
    ran: dict[int, SuiteRun] = {}

    def run_shard(shard: Shard) -> SuiteRun:
        run = run_suite(shard_job(tmp_path, shard, line), threading.Event())
        ran[shard.index] = run
        if shard.index == 2:
            assert run.junit_path is not None
            damage(Path(run.junit_path))
        return run

    target = tmp_path / "out" / "s.xml"
    target.parent.mkdir()
    target.write_text("an earlier attempt's")
    store = Store(tmp_path / "state")
    try:
        row = SessionRow("s", "k", "t", str(tmp_path), time.time(), None, 1, "running", None, None)
        store.create_session(row)
        store.begin_iteration("s", 1, None)
        sharded = Sharded(store, Reporter(), "s", tmp_path / "out", 1)
        merged = sharded.run(phase.suites[0], run_shard)
    finally:
        store.close()
    assert merged.junit_path is None and not target.exists()
    assert len(merged.cases) == 12  # the results were read from the whole files before
    notes = [
        ln
        for ln in (tmp_path / "out" / "s.log").read_text().splitlines()
        if ln.startswith("[deployloop]") and "not written" in ln
    ]
    assert len(notes) == 1, notes
    assert notes[0].startswith(
        f"[deployloop] {target} not written: shard 2/3: {ran[2].junit_path}: "
    )
    assert words in notes[0]


def test_a_report_cut_inside_text_is_no_merge(tmp_path: Path) -> None:
    """A report cut to head and tail where the cut falls inside a failure's text is still
    well-formed XML, but lacks the tests in its middle: refused by its size, never merged."""
    body = "".join(f'<testcase classname="c" name="t{n}"><failure>{"x" * 400}</failure></testcase>'
                   for n in range(3))  # fmt: skip
    report = tmp_path / "s+shard-1.xml"
    report.write_text(f"<testsuite>{body}</testsuite>")
    half = len("<testsuite>") + len(body) // 6  # inside t0's text; the tail starts inside t2's
    limit = 2 * half
    assert cap_kept(report, limit=limit)
    assert [c.name for c in junit.read_cases(report)] == ["t0"]  # well-formed: t1, t2 gone
    runs = [SuiteRun("p", "s", (), 1.0, 1, junit_path=str(report))]
    merged = shards.write_merged(tmp_path / "s.xml", runs, limit=limit)
    assert merged.path is None and not (tmp_path / "s.xml").exists()
    assert f"shard 1/1: {report}: cut to its head and tail past {limit} bytes" in (
        merged.problem or ""
    )


def test_hostile_reports_are_refused_and_the_users_file_left_alone(tmp_path: Path) -> None:
    """An entity declaration (a possible XML bomb) and a page that is not JUnit each stop the
    merge with a line saying why; the user's --junitxml, asked for through the first shard's
    note, is then left as it was. With every shard readable it is a copy of the merged file."""
    good = tmp_path / "good.xml"
    good.write_text('<testsuite name="s"><testcase classname="c" name="t"/></testsuite>')
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<!DOCTYPE t [<!ENTITY a "aaaa">]><testsuites>&a;</testsuites>')
    page = tmp_path / "page.xml"
    page.write_text("<html><body>502 Bad Gateway</body></html>")
    mine, note = tmp_path / "mine.xml", tmp_path / "s+shard-1.user-junit"
    mine.write_text("yesterday's")
    for bad, problem in (
        (bomb, "refused (EntitiesForbidden(name='a', system_id=None, public_id=None))"),
        (page, "not a JUnit file (root element <html>)"),
    ):
        runs = [SuiteRun("p", "s", (), 1.0, 0, junit_path=str(p)) for p in (good, bad)]
        report = shards.write_merged(tmp_path / "s.xml", runs)
        assert report.path is None and not (tmp_path / "s.xml").exists()
        assert (report.problem or "").endswith(f"shard 2/2: {bad}: {problem}; "
                                           "the shards' own files hold their tests")  # fmt: skip
        note.write_text(str(mine))
        line = shards.write_users_report(note, report)
        assert line is not None and str(mine) in line and mine.read_text() == "yesterday's"
    note.write_text(str(mine))
    runs = [SuiteRun("p", "s", (), 1.0, 0, junit_path=str(good))]
    assert shards.write_users_report(note, shards.write_merged(tmp_path / "s.xml", runs)) is None
    assert _ids(tmp_path / "s.xml") == ["c::t"]
    assert mine.read_bytes() == (tmp_path / "s.xml").read_bytes() and not note.exists()


CASES_PER_SHARD = 8_000
# Streamed, the merge holds one testcase at a time: 0.2 MB at its peak here, where parsing the
# four files whole (as write_users_report did) peaks at 16.9 MB. Bound between, far from both.
BOUND_MB = 2.0


def _big_report(path: Path, shard: int) -> Path:
    """A pytest-like report of CASES_PER_SHARD testcases, one in ten failing."""
    cases = "".join(
        f'<testcase classname="tests.test_big{shard}" name="test_{n}" time="0.001">'
        + ('<failure message="boom">Traceback: boom</failure>' if n % 10 == 0 else "")
        + "</testcase>\n"
        for n in range(CASES_PER_SHARD)
    )
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" '
        f'tests="{CASES_PER_SHARD}">\n{cases}</testsuite></testsuites>',
        encoding="utf-8",
    )
    return path


def test_merging_big_shard_reports_stays_bounded(tmp_path: Path) -> None:
    """Four shard reports of 8,000 testcases each merge into one file of all 32,000 while
    tracemalloc's peak stays under BOUND_MB (issue 19: a 64k-test suite is never held whole)."""
    runs = [
        SuiteRun("p", "s", (), 1.0, 0, junit_path=str(_big_report(tmp_path / f"{i}.xml", i)))
        for i in range(1, 5)
    ]
    target = tmp_path / "s.xml"
    tracemalloc.start()
    try:
        report = shards.write_merged(target, runs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report == shards.MergedReport(target)
    data = target.read_bytes()
    assert data.count(b"<testcase ") == 4 * CASES_PER_SHARD
    assert data.count(b"<failure ") == 4 * CASES_PER_SHARD // 10
    assert peak / 2**20 < BOUND_MB, f"{peak / 2**20:.1f} MB"
