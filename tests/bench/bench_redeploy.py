"""How fast the loop reacts to a redeploy: noticing it, and the first verdict after it.

``detect_latency_s``: a RedeployWaiter polling every second (settle 0, convergence on: 3
reads must agree) against a real Simulator, with the daemon's real version reader and clock.
The version flips at a random moment; the figure is the median time from the flip to the
``version_seen`` event. Uniform flips land half a poll before the next look on average, so
about 0.5 s plus one HTTP read.

``time_to_first_verdict_ratio``: a 1000-test suite of which 10 fail until the redeploy; each
test makes one loopback HTTP request to a real Simulator (an e2e test touches its target), and
the run line names the suite's directory, as every README example does. After the redeploy,
failed-first (``retest.failed_first``, as the loop calls it) reruns just the 10 failed node ids
(``runner.run_suite`` with ``SuiteJob(select=ids)``: pytest must not get both the path and the
ids, issue 15 item 10). Its figure is the time from the pass's start to its first verdict: the
``failed_first_suite`` event, told from the live plugin's stream once the 10 tests have their
final outcomes, while pytest still tears down, writes its JUnit file and exits
(``retest.FirstVerdict``); the bench checks that the JUnit file then agrees (no correction).
The full run's figure is its wall time to the JUnit read (its verdict). The ratio is the
first over the second, by median, both timed interleaved and both including pytest's start-up
and collection. ``time_to_first_verdict_pass_s`` is the failed-first pass's whole wall time
(the figure before the early verdict), for comparison.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from deployloop import retest
from deployloop.clock import RealClock
from deployloop.config import Config, PhaseConfig, SuiteConfig
from deployloop.daemon import version_reader
from deployloop.events import Event, FailedFirstSuite, Reporter, VersionSeen, Waiting
from deployloop.models import SuiteRun
from deployloop.runner import SuiteJob, progress_path, run_suite
from deployloop.simulator import Simulator
from deployloop.wait import RedeployWaiter
from tests.bench.common import (
    REQUEST_CONFTEST,
    interleaved,
    median,
    pytest_command,
    set_bug,
    write_suite,
)

GOALS = {"detect_latency_s": ("<=", 1.5), "time_to_first_verdict_ratio": ("<=", 0.2)}

POLL_S = 1.0
FLIPS = 7
TESTS = 1000
FAILING = 10
ROUNDS = 5


def measure() -> dict[str, float]:
    latencies = detect_latencies()
    verdicts = verdict_times()
    failed_first, full = median(verdicts["first-verdict"]), median(verdicts["full"])
    goal = GOALS["time_to_first_verdict_ratio"][1]
    return {
        "detect_latency_s": median(latencies),
        "detect_latency_max_s": max(latencies),
        "time_to_first_verdict_ratio": failed_first / full,
        "time_to_first_verdict_failed_first_s": failed_first,
        "time_to_first_verdict_full_s": full,
        "time_to_first_verdict_pass_s": median(verdicts["failed-first"]),
        # These tests take no time: both runs are mostly pytest's start-up. Each test costing c
        # more adds FAILING*c and TESTS*c: the goal holds from this c on (ms per test).
        "time_to_first_verdict_breakeven_test_ms": 1000
        * max(0.0, failed_first - goal * full)
        / (goal * TESTS - FAILING),
    }


# detection ------------------------------------------------------------------------------------
class Seen:
    """A sink noting when ``version_seen`` was emitted, on the monotonic clock."""

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.at: float | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Waiting):
            self.waiting.set()
        elif isinstance(event, VersionSeen):
            self.at = time.monotonic()


def detect_latencies() -> list[float]:
    rng = random.Random(20)
    latencies = []
    with Simulator() as staging:
        config = Config.model_validate(
            {
                "target": {
                    "base_url": staging.base_url,
                    "version": {"url": "/version", "json": "commit"},
                },
                "phase": [{"name": "p", "suite": [{"name": "s", "run": "true"}]}],
                "redeploy": {"poll": POLL_S, "settle": 0, "converge": 3, "timeout": 60},
            }
        )
        assert config.redeploy is not None
        for _ in range(FLIPS):
            seen = Seen()
            stop = threading.Event()
            waiter = RedeployWaiter(
                config.redeploy, version_reader(config), None, RealClock(stop), Reporter(seen)
            )
            tested = staging.version
            waiting = threading.Thread(target=waiter.wait, args=(tested,), daemon=True)
            waiting.start()
            if not seen.waiting.wait(10):
                raise RuntimeError("the waiter never started waiting")
            time.sleep(rng.uniform(0.1, 0.1 + 2 * POLL_S))  # the flip lands anywhere in a poll
            flipped = time.monotonic()
            staging.deploy(fix=True, delay_s=0)
            waiting.join(30)
            stop.set()
            if seen.at is None:
                raise RuntimeError("the waiter never saw the new version")
            latencies.append(seen.at - flipped)
    return latencies


# first verdict --------------------------------------------------------------------------------
def verdict_times() -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench-redeploy-") as tmp, Simulator() as staging:
        root = Path(tmp)
        suite_dir = root / "suite"
        # Spread over the suite, as failures of one root cause usually are.
        failing = set(random.Random(10).sample(range(TESTS), FAILING))
        every_id = write_suite(suite_dir, TESTS, failing)
        (suite_dir / "conftest.py").write_text(REQUEST_CONFTEST, encoding="utf-8")
        run = " ".join([*pytest_command(), str(suite_dir)])  # a path in run, as in the README
        suite = SuiteConfig(name="e2e", run=run, cwd=str(suite_dir))
        phase = PhaseConfig.model_validate({"name": "all", "suite": [suite]})
        stop = threading.Event()

        def job(name: str, select: tuple[str, ...] = ()) -> SuiteJob:
            return SuiteJob(phase, suite, root / f"{name}.xml", root / f"{name}.log", select)

        set_bug(suite_dir, True)
        # As in bench_env(): pytest's rewrite cache on.
        env = {"PYTHONDONTWRITEBYTECODE": "", "STAGING_URL": staging.base_url}
        before = run_suite(job("before"), stop, env)
        ids = tuple(c.id for c in before.cases if c.broken)  # as failed-first selects them
        if set(ids) != {every_id[i] for i in failing} or before.harness_error:
            raise RuntimeError(f"expected {FAILING} failures before the redeploy, got {ids}")
        set_bug(suite_dir, False)  # the redeploy: the fix is out

        def rerun(name: str, select: tuple[str, ...]) -> SuiteRun:
            run = run_suite(job(name, select), stop, env)
            verdict = [c for c in run.cases if c.id in select] if select else list(run.cases)
            passed = len(verdict) == (len(select) or TESTS) and not any(c.broken for c in verdict)
            if run.harness_error or not passed:
                raise RuntimeError(f"{name}: no green verdict after the fix: {run.harness_error}")
            return run

        first_verdicts: list[float] = []

        def failed_first() -> None:
            told = FirstTold()
            started = time.perf_counter()
            retest.failed_first([phase], [before], stop, watched, Reporter(told), "fix")
            if told.at is None or told.events[0] != FailedFirstSuite(
                phase="all", suite="e2e", passed=FAILING, total=FAILING, version="fix",
                early=True, ts=told.events[0].ts,
            ) or len(told.events) != 1:  # fmt: skip
                raise RuntimeError(f"failed-first: no early green verdict alone: {told.events}")
            first_verdicts.append(told.at - started)

        def watched(
            _phase: PhaseConfig, _suite: SuiteConfig, select: Sequence[str], watch: retest.Watch
        ) -> SuiteRun:
            with watch(progress_path(job("failed-first", tuple(select)))):
                return rerun("failed-first", tuple(select))

        times = interleaved(
            {"failed-first": failed_first, "full": lambda: rerun("full", ())}, ROUNDS
        )
        return {**times, "first-verdict": first_verdicts[-ROUNDS:]}  # past the warm-up round


class FirstTold:
    """A sink keeping failed-first's per-suite verdicts, and when the first was told."""

    def __init__(self) -> None:
        self.events: list[FailedFirstSuite] = []
        self.at: float | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, FailedFirstSuite):
            self.at = time.perf_counter() if self.at is None else self.at
            self.events.append(event)
