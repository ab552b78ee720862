"""Scale-out on one machine (issue 21 items 1-3): suites side by side, sharded suites, pytest-xdist
inside a shard, a stop that stops every running group, and the ``[executor]`` table."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import psutil
import pytest

from deployloop import dispatch
from deployloop.config_schema import ExecutorConfig
from deployloop.models import SuiteRun
from tests.helpers import (
    cli,
    config_text,
    phase_block,
    python_pytest,
    session_dirs,
    start_cli,
    suite_block,
    wait_for,
    write_tests,
)

SUITE = """
import pytest
@pytest.mark.parametrize("n", range(8))
def test_api(n):
    assert n % 4 != 1, f"backend said 502 for order {n}"
def test_ws():
    raise ConnectionError("server closed with 1011")
"""


def project(tmp_path: Path, *, parallel: int, shards: int, args: str = "") -> Path:
    """Two phases of two suites each over one real test file (9 tests, 3 failing)."""
    write_tests(tmp_path / "e2e", "test_e2e.py", SUITE)
    run = python_pytest(f"{args} {tmp_path / 'e2e'}")
    phases = [
        phase_block(
            phase,
            suite_block(f"{phase}-a", run, shards=shards, expect_tests=9),
            suite_block(f"{phase}-b", run),
            parallel=parallel,
        )
        for phase in ("infra", "journeys")
    ]
    text = config_text(*phases, extra="[retest]\nrerun_failed = false\n")
    (tmp_path / "deployloop.toml").write_text(text)
    return tmp_path


def outcome(directory: Path) -> tuple[dict[str, dict[str, int]], list[list[str]], list[str]]:
    """The full-pass counts per suite, each phase's cluster prints, and the issue titles."""
    (session,) = session_dirs(directory / "logs")
    events = [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]
    counts = {
        e["suite"]: e["counts"] for e in events if e["event"] == "suite_end" and e["pass"] == "full"
    }
    clusters = [
        sorted(c["fingerprint"] for c in e["clusters"]) for e in events if e["event"] == "phase_end"
    ]
    issues = sorted(
        p.read_text().splitlines()[0] for p in (directory / "logs" / "issues").glob("*.md")
    )
    return counts, clusters, issues


def test_parallel_shards_give_the_sequential_verdicts(tmp_path: Path) -> None:
    """parallel = 2 with 3 shards per suite: the same counts, clusters and issues as one suite
    after another, each shard its own log and state row, the merged suite one result."""
    plain, scaled = tmp_path / "plain", tmp_path / "scaled"
    assert cli("run", "--once", cwd=project(plain, parallel=1, shards=1)).returncode == 1
    done = cli("run", "--once", cwd=project(scaled, parallel=2, shards=3))
    assert done.returncode == 1, done.stderr
    assert outcome(scaled) == outcome(plain)
    counts = outcome(scaled)[0]
    assert counts["infra-a"] == {**counts["infra-b"]} and counts["infra-a"]["failed"] == 3
    (session,) = session_dirs(scaled / "logs")
    assert {p.name for p in (session / "1").glob("infra-a+shard-*.xml")} == {
        f"infra-a+shard-{i}.xml" for i in (1, 2, 3)
    }
    assert "shard 3/3" in (session / "1" / "infra-a.log").read_text()


def test_second_night_splits_by_stored_durations(tmp_path: Path) -> None:
    """After one run the state holds each test's duration: the next split uses it."""
    from deployloop.state import Store

    directory = project(tmp_path, parallel=1, shards=2)
    cli("run", "--once", cwd=directory)
    store = Store(directory / "logs" / ".state")
    try:
        (session,) = store.db.execute("SELECT id FROM sessions").fetchall()
        durations = store.durations(session["id"], "infra-a")
    finally:
        store.close()
    assert len(durations) == 9 and all(seconds >= 0 for seconds in durations.values())


def test_xdist_inside_a_sharded_suite(tmp_path: Path) -> None:
    """pytest-xdist -n 2 within each of two shards: every test still runs exactly once."""
    directory = project(tmp_path, parallel=1, shards=2, args="-n 2")
    done = cli("run", "--once", "--phase", "infra", cwd=directory)
    assert done.returncode == 1, done.stderr
    counts = outcome(directory)[0]
    assert counts["infra-a"]["passed"] == 6 and counts["infra-a"]["failed"] == 3


def test_side_by_side_keeps_order_and_halts_new_starts() -> None:
    """Runs come back in the items' order; once one halts, no new item starts."""
    started: list[int] = []
    gate = threading.Lock()

    def work(item: int) -> SuiteRun:
        with gate:
            started.append(item)
        return SuiteRun("p", str(item), (), 0.0, 0)

    runs = dispatch.side_by_side([1, 2, 3, 4], 1, work, lambda run: run.suite == "2")
    assert [r.suite for r in runs] == ["1", "2"] and started == [1, 2]
    runs = dispatch.side_by_side([1, 2, 3, 4], 4, work, lambda run: False)
    assert [r.suite for r in runs] == ["1", "2", "3", "4"]


def test_sigterm_stops_every_running_group(tmp_path: Path) -> None:
    """Two suites side by side, one sharded in two, all blocked: SIGTERM ends all three
    process groups and the run exits 143."""
    write_tests(
        tmp_path / "e2e",
        "test_block.py",
        f"""
        import os, time
        def test_block():
            with open({str(tmp_path / "pids")!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            while True:
                time.sleep(0.1)
        def test_other():
            test_block()
        """,
    )
    run = python_pytest(str(tmp_path / "e2e"))
    text = config_text(
        phase_block("p", suite_block("a", run, shards=2), suite_block("b", run), parallel=2)
    )
    (tmp_path / "deployloop.toml").write_text(text)
    proc = start_cli("run", "--once", cwd=tmp_path)
    try:
        pids_file = tmp_path / "pids"
        wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) >= 3, 60)
        pids = [int(p) for p in pids_file.read_text().split()]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        wait_for(lambda: not any(psutil.pid_exists(p) for p in pids), 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"kind": "dask"}, "needs scheduler"),
        ({"kind": "local", "scheduler": "tcp://h:8786"}, "go with kind = 'dask'"),
        ({"kind": "dask", "scheduler": "tls://h:8786"}, "needs ca, cert and key"),
        ({"kind": "dask", "scheduler": "tcp://h:8786", "ca": "ca.pem"}, "go with a tls://"),
        ({"kind": "dask", "scheduler": "http://h:8786"}, "should match pattern"),
    ],
)
def test_executor_table_is_checked(table: dict[str, str], words: str) -> None:
    """[executor] refuses a half-configured cluster, with words saying what is missing."""
    with pytest.raises(ValueError, match=words):
        ExecutorConfig.model_validate(table)


def test_bad_parallel_names_the_file_and_line(tmp_path: Path) -> None:
    """parallel = 0 is a config error naming the file: exit 2, no traceback."""
    run = python_pytest(str(tmp_path))
    text = config_text(phase_block("p", suite_block("a", run, shards=0), parallel=0))
    (tmp_path / "deployloop.toml").write_text(text)
    done = cli("validate", cwd=tmp_path)
    assert done.returncode == 2 and "deployloop.toml" in done.stderr
    assert "Traceback" not in done.stderr
