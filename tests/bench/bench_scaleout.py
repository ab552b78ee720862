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

The suite runs as a team's e2e environment would run it: pytest loads the plugins the run line
names, not every plugin of deployloop's own dev venv (``SUITE_ENV``). Those autoloaded plugins
(hypothesis, xdist, rerunfailures, timeout, anyio) cost each pytest process CPU that no e2e
suite of this shape pays, once per shard; ``pytest_autoload_cpu_s`` keeps what they cost a
process here (``pytest --collect-only`` of the 400 tests, with them less without).

``iteration_overhead_ratio``: the 1000-test suite of the overhead bench (one test failing, so
the session keeps iterating) run by one session for ITERATIONS iterations; each iteration (its
``iteration_end`` duration: suites, JUnit, gates, clusters, issues) over the same pytest work
done by hand: an iteration after the first runs the failed test first (the target has no
version, so every iteration may be a new one) and then the whole suite, so its plain figure is
one ``pytest --junitxml`` of the suite plus one of the failed test alone, in the same
``SUITE_ENV``, timed in the session's waits (``PAUSE_S``: the session sleeps, and each pair
must end before the next iteration starts): an iteration's plain figure is the mean of the
pair just before it and the pair just after it. Pairing each iteration with plain runs of the
same seconds on both sides keeps the machine's drift out of the figure: these machines run a
pass 0.55 s one minute and 0.72 s the next, and a pair on one side only reads a drift as
overhead. The median of the per-iteration ratios; the first iteration, which has no
failed-first pass, and the last, which has no wait after it, are left out. A single ratio
still swings by ±10% between seconds here, so the median is taken over ITERATIONS - 2 of them.
``iteration_overhead_per_test_us`` is the same difference per test: what a test's own
duration must exceed for the ratio to hold.
``iteration_overhead_ratio_one_request`` is the same figure for the same tests when each first
asks a loopback server once, answered at once (``REQUEST_CONFTEST``, ``quick_staging``: an e2e
test touches its target at least that much), as the time-to-first-verdict bench's tests do.
The session's start-up is paid once a night and is measured by the start-up bench, not here.
"""

from __future__ import annotations

import http.server
import itertools
import json
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
ITERATIONS = 20
TESTS = 1000
PAUSE_S = 2.5  # the session's wait between iterations, where the plain runs are timed
# The suite's environment in every run, deployloop's and plain pytest's alike (see above).
SUITE_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
CONFIG = """\
[session]
name = "bench"
logs_dir = "{logs}"
interval = {interval}

[target]
base_url = "{url}"

[[phase]]
name = "all"
  [[phase.suite]]
  name = "suite"
  run = "{run}"
  cwd = "{cwd}"
  shards = {shards}
  env = {{ STAGING_URL = "{staging}", {suite_env} }}

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


@contextmanager
def quick_staging(directory: Path) -> Iterator[str]:
    """A loopback server answering at once (``python -m http.server``) in a process of its own:
    in this one it would wait on the GIL while the bench polls the session's events."""
    directory.mkdir()
    (directory / "health").write_text("ok")
    argv = [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"]
    server = subprocess.Popen(
        [*argv, "--directory", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = re.search(r" port (\d+) ", server.stdout.readline())  # "Serving HTTP on … port N (…"
        if port is None:
            raise RuntimeError("http.server did not say its port")
        yield f"http://127.0.0.1:{port[1]}"
    finally:
        server.kill()
        server.wait()


def run_config(
    root: Path,
    name: str,
    url: str,
    suite: Path,
    shards: int,
    executor: str,
    interval: float = 0.1,
    staging_url: str | None = None,
) -> Path:
    """The bench's config: ``url`` is the target's, and its tests' ``STAGING_URL`` unless
    ``staging_url`` says otherwise."""
    directory = root / name
    directory.mkdir()
    text = CONFIG.format(
        logs=directory / "logs",
        url=url,
        staging=staging_url or url,
        run=" ".join(pytest_command()),
        cwd=suite,
        shards=shards,
        executor=executor,
        interval=interval,
        suite_env=", ".join(f'{k} = "{v}"' for k, v in SUITE_ENV.items()),
    )
    (directory / "deployloop.toml").write_text(text, encoding="utf-8")
    return directory / "deployloop.toml"


def deployloop(config: Path, *args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "deployloop"), "run", "-c", str(config), *args]


def shard_speedups(root: Path) -> dict[str, float]:
    suite = root / "slow"
    write_suite(suite, SLOW_TESTS)
    (suite / "conftest.py").write_text(REQUEST_CONFTEST, encoding="utf-8")
    env = bench_env()  # the suite's own `env` gives its tests STAGING_URL, workers too
    # Every run must pass all its tests: a run that broke (a worker without the suite's
    # variables, say) is fast and would read as a speed-up.
    with slow_staging() as url:
        times = {
            name: _passing_run(config, root, env)
            for name, config in (
                ("sequential", run_config(root, "sequential", url, suite, 1, "")),
                ("local", run_config(root, "local", url, suite, SHARDS, "")),
            )
        }
        # The cluster only now: its idle scheduler and workers take CPU the local runs need.
        with LoopbackCluster(root) as cluster:
            cluster.ensure_workers(2)
            dask = f'[executor]\nkind = "dask"\nscheduler = "{cluster.address}"\n'
            config = run_config(root, "dask", url, suite, SHARDS, dask)
            times["dask"] = _passing_run(config, root, env)
    return {
        "pytest_autoload_cpu_s": autoload_cpu_s(suite),
        "shard_speedup_local": times["sequential"] / times["local"],
        "shard_speedup_dask": times["sequential"] / times["dask"],
        "shard_sequential_s": times["sequential"],
        "shard_local_s": times["local"],
        "shard_dask_s": times["dask"],
    }


def _passing_run(config: Path, root: Path, env: dict[str, str]) -> float:
    """Wall seconds of ``deployloop run --once`` that passes every test; a run that did not
    is a broken bench, told with its session's story (the temporary directory is gone after)."""
    try:
        return _timed_run(deployloop(config, "--once"), root, env, ok=(0,))
    except RuntimeError as exc:
        stories = sorted((config.parent / "logs").glob("*/session.md"))
        story = stories[0].read_text(encoding="utf-8", errors="replace") if stories else ""
        raise RuntimeError(f"{exc}\n{story[-4000:]}") from exc


def autoload_cpu_s(suite: Path) -> float:
    """CPU seconds a pytest process of ``suite`` spends on the plugins this venv autoloads:
    the median ``--collect-only`` with them less the median without (3 runs each)."""

    def cpu_s(env: dict[str, str]) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [*pytest_command(), "--collect-only"],
            cwd=suite,
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

    env = bench_env()
    loaded = median([cpu_s(env) for _ in range(3)])
    return loaded - median([cpu_s({**env, **SUITE_ENV}) for _ in range(3)])


def iteration_overhead(root: Path, name: str, staging_url: str | None) -> dict[str, float]:
    """The iteration figures (see the module docstring) for the 1000 tests in ``root/name``;
    with ``staging_url`` each test first asks that server once (``REQUEST_CONFTEST``)."""
    suite = root / name
    ids = write_suite(suite, TESTS, failing={7})
    (suite / "bug.flag").touch()  # test 7 fails every iteration: the session goes on
    if staging_url:
        (suite / "conftest.py").write_text(REQUEST_CONFTEST, encoding="utf-8")
    env = {**bench_env(), **SUITE_ENV, "STAGING_URL": staging_url or ""}
    # The target has no version (every iteration may be a new one: failed-first runs).
    target = "http://127.0.0.1:9"
    config = run_config(root, f"{name}-session", target, suite, 1, "", PAUSE_S, staging_url)
    full = [*pytest_command(), f"--junitxml={root / 'x.xml'}"]
    failed = [*full, ids[7]]
    _timed_run(full, suite, env)  # warm-up, untimed: bytecode written, the machine settled
    plain: list[tuple[float, float, float]] = []  # (full s, failed s, when they ended)
    argv = deployloop(config, "--max-iterations", str(ITERATIONS))
    session = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.DEVNULL)
    try:
        for n in range(1, ITERATIONS):
            _await_waiting(config.parent / "logs", n, session)
            pair = (_timed_run(full, suite, env), _timed_run(failed, suite, env))
            plain.append((*pair, time.time()))
        if session.wait(timeout=300) not in (0, 1):
            raise RuntimeError(f"the session exited {session.returncode}")
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    records = _events(config.parent / "logs")
    starts = [r["ts"] for r in records if r["event"] == "iteration_start"]
    if any(ended > starts[n] for n, (_, _, ended) in enumerate(plain, 1)):
        raise RuntimeError(f"plain runs overlapped an iteration: raise PAUSE_S ({PAUSE_S} s)")
    # Iteration n (2 .. ITERATIONS - 1) runs between waits n - 1 and n: plain[n - 2], plain[n - 1]
    iterations = [r["duration_s"] for r in records if r["event"] == "iteration_end"][1:-1]
    sums = [f + ff for f, ff, _ in plain]
    pairs = [(before + after) / 2 for before, after in itertools.pairwise(sums)]
    return {
        "iteration_overhead_ratio": median([i / p for i, p in zip(iterations, pairs, strict=True)]),
        "iteration_s": median(iterations),
        "iteration_plain_pytest_s": median([f for f, _, _ in plain]),
        "iteration_plain_failed_first_s": median([ff for _, ff, _ in plain]),
        "iteration_overhead_per_test_us": (median(iterations) - median(pairs)) / TESTS * 1e6,
    }


def _await_waiting(logs: Path, count: int, session: subprocess.Popen[bytes]) -> None:
    """Until the session has begun its ``count``-th wait between iterations (``PAUSE_S`` long:
    the plain runs go there, so that both are timed under the same load)."""
    deadline = time.monotonic() + 120
    while sum(r["event"] == "waiting" for r in _events(logs)) < count:
        if session.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the session never reached its wait {count}")
        time.sleep(0.25)  # the wait is PAUSE_S long: a busier poll would load the machine


def _events(logs: Path) -> list[dict[str, Any]]:
    """The session's events so far (none before its file exists); a last line still being
    written is left for the next read."""
    paths = list(logs.glob("*/events.jsonl"))
    lines = paths[0].read_text().split("\n")[:-1] if paths else []
    return [json.loads(line) for line in lines]


def _timed_run(
    argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0, 1)
) -> float:
    """Wall seconds of a run that exits with one of ``ok``: by default it may fail its tests
    (exit 1), never its harness."""
    return timed(lambda: run_quiet(argv, cwd, env, ok))


def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        root = Path(tmp)
        figures = {**shard_speedups(root), **iteration_overhead(root, "thousand", None)}
        with quick_staging(root / "staging") as url:
            touching = iteration_overhead(root, "touching", url)
        figures["iteration_overhead_ratio_one_request"] = touching["iteration_overhead_ratio"]
        figures["iteration_one_request_plain_pytest_s"] = touching["iteration_plain_pytest_s"]
        return figures
