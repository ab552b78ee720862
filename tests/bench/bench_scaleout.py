"""Scale-out (issue 21): how an iteration's wall time shrinks with shards, and what a running
session adds per iteration.

``shard_speedup_local`` / ``shard_speedup_dask``: 400 tests that each wait 100 ms on a loopback
HTTP server (a threading server that answers every request after 100 ms: staging that takes
its time), run by the real ``deployloop run --once`` three ways: one suite in one pytest;
``shards = 8`` on this machine; ``shards = 8`` on a loopback Dask cluster of 2 workers x 4
threads (``deployloop.testing.cluster``). Each figure is the sequential wall time over the
sharded one, deployloop's start-up included in all three. The tests find staging through the
suite's own ``env`` (as a worker's tests must), and every run must pass all 400 tests: a
broken run is quick and would read as a speed-up.

``iteration_overhead_ratio``: the 1000-test suite of the overhead bench (one test failing, so
the session keeps iterating) run by one session for ITERATIONS iterations back to back
(``interval`` 0.1 s); the median iteration (its ``iteration_end`` duration: suites, JUnit,
gates, clusters, issues) over the same pytest work done by hand: an iteration after the first
runs the failed test first (the target has no version, so every iteration may be a new one)
and then the whole suite, so the plain figure is the median ``pytest --junitxml`` of the suite
plus the median one of the failed test alone (the first iteration, which has no failed-first
pass, is left out). Plain runs are timed before and after the session, so a change of load
while it runs skews the figure: run it on a quiet machine. The session's start-up is paid
once a night and is measured by the start-up bench, not here.
"""

from __future__ import annotations

import http.server
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deployloop.testing.cluster import LoopbackCluster
from tests.bench.common import (
    REQUEST_CONFTEST,
    bench_env,
    median,
    pytest_command,
    run_quiet,
    timed,
    write_suite,
)

GOALS = {
    "shard_speedup_local": (">=", 6.0),
    "shard_speedup_dask": (">=", 5.0),
    "iteration_overhead_ratio": ("<=", 1.03),
}

SLOW_TESTS = 400
WAIT_S = 0.1
SHARDS = 8
ITERATIONS = 5
TESTS = 1000
CONFIG = """\
[session]
name = "bench"
logs_dir = "{logs}"
interval = 0.1

[target]
base_url = "{url}"

[[phase]]
name = "all"
  [[phase.suite]]
  name = "suite"
  run = "{run}"
  cwd = "{cwd}"
  shards = {shards}
  env = {{ STAGING_URL = "{url}" }}

[retest]
rerun_failed = false
{executor}
"""


class _Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(WAIT_S)  # the staging being measured: each answer takes 100 ms
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: 400 lines a run say nothing."""


@contextmanager
def slow_staging() -> Iterator[str]:
    """A loopback HTTP server answering each request after WAIT_S; its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_config(root: Path, name: str, url: str, suite: Path, shards: int, executor: str) -> Path:
    directory = root / name
    directory.mkdir()
    text = CONFIG.format(
        logs=directory / "logs",
        url=url,
        run=" ".join(pytest_command()),
        cwd=suite,
        shards=shards,
        executor=executor,
    )
    (directory / "deployloop.toml").write_text(text, encoding="utf-8")
    return directory / "deployloop.toml"


def deployloop(config: Path, *args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "deployloop"), "run", "-c", str(config), *args]


def shard_speedups(root: Path) -> dict[str, float]:
    suite = root / "slow"
    write_suite(suite, SLOW_TESTS)
    (suite / "conftest.py").write_text(REQUEST_CONFTEST, encoding="utf-8")
    with slow_staging() as url, LoopbackCluster(root) as cluster:
        cluster.ensure_workers(2)
        env = bench_env()  # the suite's own `env` gives its tests STAGING_URL, workers too
        dask = f'[executor]\nkind = "dask"\nscheduler = "{cluster.address}"\n'
        configs = {
            "sequential": run_config(root, "sequential", url, suite, 1, ""),
            "local": run_config(root, "local", url, suite, SHARDS, ""),
            "dask": run_config(root, "dask", url, suite, SHARDS, dask),
        }
        # Every run must pass all its tests: a run that broke (a worker without the suite's
        # variables, say) is fast and would read as a speed-up.
        times = {
            name: _timed_run(deployloop(c, "--once"), root, env, ok=(0,))
            for name, c in configs.items()
        }
    return {
        "shard_speedup_local": times["sequential"] / times["local"],
        "shard_speedup_dask": times["sequential"] / times["dask"],
        "shard_sequential_s": times["sequential"],
        "shard_local_s": times["local"],
        "shard_dask_s": times["dask"],
    }


def iteration_overhead(root: Path) -> dict[str, float]:
    suite = root / "thousand"
    ids = write_suite(suite, TESTS, failing={7})
    (suite / "bug.flag").touch()  # test 7 fails every iteration: the session goes on
    env = bench_env()
    config = run_config(root, "session", "http://127.0.0.1:9", suite, 1, "")
    full = [*pytest_command(), f"--junitxml={root / 'x.xml'}"]
    failed = [*full, ids[7]]
    _timed_run(full, suite, env)  # warm-up, untimed: bytecode written, the machine settled
    before = [(_timed_run(full, suite, env), _timed_run(failed, suite, env)) for _ in range(3)]
    _timed_run(deployloop(config, "--max-iterations", str(ITERATIONS)), root, env)
    after = [(_timed_run(full, suite, env), _timed_run(failed, suite, env)) for _ in range(3)]
    (events,) = (config.parent / "logs").glob("*/events.jsonl")
    iterations = [
        record["duration_s"]
        for record in map(json.loads, events.read_text().splitlines())
        if record["event"] == "iteration_end" and record["iteration"] > 1
    ]
    full_s = median([f for f, _ in before + after])
    failed_s = median([f for _, f in before + after])
    return {
        "iteration_overhead_ratio": median(iterations) / (full_s + failed_s),
        "iteration_s": median(iterations),
        "iteration_plain_pytest_s": full_s,
        "iteration_plain_failed_first_s": failed_s,
    }


def _timed_run(
    argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0, 1)
) -> float:
    """Wall seconds of a run that exits with one of ``ok``: by default it may fail its tests
    (exit 1), never its harness."""
    return timed(lambda: run_quiet(argv, cwd, env, ok))


def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        root = Path(tmp)
        return {**shard_speedups(root), **iteration_overhead(root)}
