"""The dask executor against a real cluster on loopback (issue 21 items 3-4): a ``dask scheduler``
and two ``dask worker`` processes started here (127.0.0.1, port 0, a scheduler file), stopped in
a finally. Same verdicts as the local executor; a worker killed mid-shard; SIGTERM to deployloop;
a scheduler that does not answer."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from deployloop.config_schema import ExecutorConfig
from deployloop.errors import TargetUnreachable
from deployloop.executors import dask_cluster
from deployloop.redact import Redactor
from deployloop.testing.cluster import LoopbackCluster as Cluster
from tests.helpers import (
    cli,
    config_text,
    phase_block,
    python_pytest,
    start_cli,
    suite_block,
    wait_for,
    write_tests,
)
from tests.test_scaleout import outcome, project

# One worker runs the whole module under pytest-xdist: its module-scoped fixture is costly.
pytestmark = pytest.mark.xdist_group(__name__)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One loopback cluster for the module; every process of it stopped at the end."""
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        running.ensure_workers(2)
        yield running
    finally:
        running.stop()


def on_dask(directory: Path, cluster: Cluster) -> Path:
    """The project's config with ``[executor] kind = "dask"`` on the test cluster."""
    config = directory / "deployloop.toml"
    table = f'\n[executor]\nkind = "dask"\nscheduler = "{cluster.address}"\n'
    config.write_text(config.read_text() + table)
    return directory


# Known intermittent (about 3 runs in 28 under load): a Dask run counted fewer tests in one
# sharded suite than the local run, because that shard's task failed on the cluster (once with
# "BufferError: Existing exports of data", from the task's future while the scheduler was up):
# a harness error, never a pass. Its origin is not found yet; a failure prints the session and
# shard logs. One rerun keeps CI meaningful while it is. Every other assertion here is strict.
@pytest.mark.flaky(reruns=1)
def test_dask_gives_the_local_verdicts(tmp_path: Path, cluster: Cluster) -> None:
    """Two phases of sharded suites on the cluster: the same counts, clusters and issues as the
    local executor, and each shard's JUnit and log written here."""
    cluster.ensure_workers(2)
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert cli("run", "--once", cwd=project(local, parallel=2, shards=2)).returncode == 1
    remote_dir = on_dask(project(remote, parallel=2, shards=2), cluster)
    done = cli("run", "--once", cwd=remote_dir)
    assert done.returncode == 1, done.stdout + done.stderr
    assert outcome(remote) == outcome(local), story(remote)
    shard_logs = list((remote / "logs").glob("*/1/infra-a+shard-1.log"))
    assert shard_logs and "passed" in shard_logs[0].read_text()


def story(directory: Path) -> str:
    """What a failed comparison needs to be understood: the session log and each shard log's
    end (the intermittent mismatch above has not been caught with them yet)."""
    parts = [p.read_text()[-4000:] for p in (directory / "logs").glob("*/session.md")]
    parts += [f"{p.name}: {p.read_text()[-1500:]}" for p in (directory / "logs").glob("*/1/*.log")]
    return "\n".join(parts)


def blocking_suite(directory: Path, cluster: Cluster, shards: int) -> Path:
    """A suite whose tests note their pid and their worker's, then wait for a ``go`` file."""
    marks, go = directory / "marks", directory / "go"
    write_tests(
        directory / "e2e",
        "test_block.py",
        f"""
        import os, time
        def test_block():
            with open({str(marks)!r}, "a") as f:
                f.write(f"{{os.getpid()}} {{os.getppid()}}\\n")
            deadline = time.monotonic() + 60
            while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
                time.sleep(0.05)
        """,
    )
    run = python_pytest(str(directory / "e2e"))
    text = config_text(phase_block("p", suite_block("s", run, shards=shards)))
    (directory / "deployloop.toml").write_text(text + "\n[retest]\nrerun_failed = false\n")
    return on_dask(directory, cluster)


@contextmanager
def blocked_run(
    directory: Path, cluster: Cluster, shards: int
) -> Iterator[subprocess.Popen[bytes]]:
    """``run --once`` of ``blocking_suite`` in the background; at the end its tests are let go
    and the CLI, if it still runs, killed."""
    proc = start_cli("run", "--once", cwd=blocking_suite(directory, cluster, shards))
    try:
        yield proc
    finally:
        (directory / "go").touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def gone(pid: int) -> bool:
    """Not running: no such process, or a zombie waiting for a parent to reap it."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def marks(directory: Path) -> list[tuple[int, int]]:
    path = directory / "marks"
    text = path.read_text() if path.exists() else ""
    return [(int(a), int(b)) for a, b in (line.split() for line in text.splitlines())]


def test_worker_killed_mid_shard_is_retried_elsewhere(tmp_path: Path, cluster: Cluster) -> None:
    """SIGKILL to the worker running the shard: its attempt counts no pass, the shard runs
    again on the other worker, and the suite's log names the lost worker."""
    cluster.ensure_workers(2)
    with blocked_run(tmp_path, cluster, 1) as proc:
        (pid, worker), *_ = wait_for(lambda: marks(tmp_path), 60)
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: len(marks(tmp_path)) >= 2, 60)
        assert marks(tmp_path)[1][1] != worker
        wait_for(lambda: gone(pid), 15)  # the orphan's group was stopped
        (tmp_path / "go").touch()
        assert proc.wait(timeout=60) == 0
    (log,) = (tmp_path / "logs").glob("*/1/s.log")
    assert "lost mid-run; retried on tcp://127.0.0.1:" in log.read_text()
    events = (tmp_path / "logs").glob("*/events.jsonl")
    ends = [json.loads(x) for x in next(events).read_text().splitlines() if "suite_end" in x]
    assert ends[-1]["counts"]["passed"] == 1  # one test, counted once


def test_sigterm_leaves_no_process_on_any_worker(tmp_path: Path, cluster: Cluster) -> None:
    """SIGTERM to deployloop while two shards block on two workers: exit 143, and by then
    both suites' process groups are gone from the workers, though each takes a second to end
    on TERM: deployloop waits for the cluster's tasks to stop them."""
    cluster.ensure_workers(2)
    write_tests(
        tmp_path / "e2e",
        "test_more.py",
        "def test_more():\n    from test_block import test_block; test_block()\n",
    )
    write_tests(tmp_path / "e2e", "conftest.py", SLOW_TO_END)
    with blocked_run(tmp_path, cluster, 2) as proc:
        wait_for(lambda: len(marks(tmp_path)) >= 2, 60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        pids = [pid for pid, _ in marks(tmp_path)]
        assert all(gone(p) for p in pids), pids


SLOW_TO_END = """
import os, signal, time

def _slow_to_end(signum, frame):
    time.sleep(1.0)
    os._exit(1)

signal.signal(signal.SIGTERM, _slow_to_end)
"""


def progress_lines(directory: Path) -> list[dict[str, object]]:
    """The records of the running suite's progress file on this machine (none yet: [])."""
    paths = list((directory / "logs").glob("*/1/s.progress.jsonl"))
    text = paths[0].read_text() if paths else ""
    return [json.loads(line) for line in text.splitlines()]


def test_progress_streams_from_workers_while_the_suite_runs(
    tmp_path: Path, cluster: Cluster
) -> None:
    """A test that finished on a worker shows in this machine's progress file (what the live
    view and status tail) while the suite still runs; the file is dropped when it ends."""
    cluster.ensure_workers(2)
    write_tests(tmp_path / "e2e", "test_a_quick.py", "def test_quick():\n    pass\n")
    with blocked_run(tmp_path, cluster, 1) as proc:
        finished = wait_for(
            lambda: [r for r in progress_lines(tmp_path) if r["event"] == "test"], 60
        )
        assert marks(tmp_path) and proc.poll() is None  # test_block still waits for "go"
        assert [(str(r["id"]).split("/")[-1], r["outcome"]) for r in finished] == [
            ("test_a_quick.py::test_quick", "passed")
        ]
        assert progress_lines(tmp_path)[0]["count"] == 2  # the collected count came first
        (tmp_path / "go").touch()
        assert proc.wait(timeout=60) == 0
    assert not list((tmp_path / "logs").glob("*/1/s.progress.jsonl"))


def test_ids_differing_only_by_a_secret_stay_two_tests(tmp_path: Path, cluster: Cluster) -> None:
    """A worker tags each secret in a test id with the state's key, as this machine does: two
    failing tests whose ids differ only in their secret stay two tests, with the same tags as a
    local run on the same state, and no raw secret reaches a kept file."""
    write_tests(tmp_path / "e2e", "test_t.py", SECRET_IDS.format(*SECRETS))
    run = python_pytest(str(tmp_path / "e2e"))
    text = config_text(phase_block("p", suite_block("s", run, shards=2)))
    (tmp_path / "deployloop.toml").write_text(text + "\n[retest]\nrerun_failed = false\n")
    assert cli("run", "--once", cwd=tmp_path).returncode == 1  # local first: the state's key
    local = failing_ids(tmp_path)
    on_dask(tmp_path, cluster)
    done = cli("run", "--once", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    remote = failing_ids(tmp_path)
    assert len(local) == 2 and remote == local, (local, remote)
    assert all(re.fullmatch(r".*test_token\[\[REDACTED:[0-9a-f]{6}\]\]", i) for i in remote)
    kept = [p for p in (tmp_path / "logs").rglob("*") if p.is_file() and p.name != "state.db"]
    assert not [p for p in kept if any(s.encode() in p.read_bytes() for s in SECRETS)]


SECRETS = ("ghp_" + "0123456789abcdefghijklmnopqrstuvwxyzAB", "AKIA" + "Q3EGRZPRT2JZXKVB")
SECRET_IDS = """
import pytest
@pytest.mark.parametrize("tok", [{0!r}, {1!r}])
def test_token(tok):
    assert tok == "expected"
"""


def failing_ids(directory: Path) -> list[str]:
    """The failing test ids of the newest session's phase, from its clusters."""
    newest = sorted((directory / "logs").glob("*/events.jsonl"))[-1]
    records = [json.loads(line) for line in newest.read_text().splitlines()]
    (end,) = [r for r in records if r["event"] == "phase_end"]
    return sorted(t for c in end["clusters"] for t in c["tests"])


def test_scheduler_unreachable_is_target_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """No scheduler at the address: TargetUnreachable (exit 3) naming it, in one line."""
    monkeypatch.setattr(dask_cluster, "CONNECT_S", 1.0)
    config = ExecutorConfig(kind="dask", scheduler="tcp://127.0.0.1:9")
    with pytest.raises(TargetUnreachable, match=r"tcp://127\.0\.0\.1:9 unreachable") as caught:
        dask_cluster.DaskExecutor.connect(config, threading.Event(), Redactor(), ())
    assert caught.value.exit_code == 3 and "\n" not in str(caught.value)


def test_a_task_failing_with_its_scheduler_up_is_not_called_a_lost_scheduler(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's own error (a BufferError came back from a worker once) while the client still
    holds its scheduler is named as such, not as a lost scheduler."""
    monkeypatch.setattr(dask_cluster, "LOST_S", 0.3)
    config = ExecutorConfig(kind="dask", scheduler=cluster.address)
    executor = dask_cluster.DaskExecutor.connect(config, threading.Event(), Redactor(), ())
    try:
        words = executor._words(BufferError("Existing exports of data"))
    finally:
        executor.close()
    assert words == (
        f"dask task failed on the cluster ({cluster.address}): "
        "BufferError: Existing exports of data"
    )


def test_scheduler_lost_mid_iteration(tmp_path: Path) -> None:
    """The scheduler killed while a shard runs: the suite is a harness error (no pass), and
    the next iteration waits for the scheduler like an unhealthy target, then exits 3."""
    with Cluster(tmp_path) as own:
        own.ensure_workers(1)
        directory = blocking_suite(tmp_path, own, 1)
        config = directory / "deployloop.toml"
        text = config.read_text().replace('name = "t"', 'name = "t"\ninterval = 0.1', 1)
        text = text.replace("[target]", '[target]\nunreachable_timeout = "1s"', 1)
        config.write_text(text)
        proc = start_cli("run", "--max-iterations", "2", cwd=directory)
        try:
            wait_for(lambda: marks(tmp_path), 60)
            own.procs[0].kill()  # the scheduler
            assert proc.wait(timeout=90) == 3
        finally:
            (tmp_path / "go").touch()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    (session,) = (tmp_path / "logs").glob("*/session.md")
    log = session.read_text()
    assert "lost mid-run" in log and "dask scheduler" in log
