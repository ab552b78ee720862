"""The daemon's memory over a long night: RSS growth across 200 fast iterations.

The real Loop runs in a fresh interpreter with the daemon's real sinks (Journal, SessionLog,
LiveStatus, StoryRecorder), the real Store and the real IssueDesk on the local tracker; only the
outside world is fake: a clock that jumps, a suite that returns 200 results at once with a few
failures from rotating root causes (so issues are created, commented, closed and reopened), and a
redeploy that brings a new version every time (so failed-first and the rerun of failures run too).

``rss_growth_mb_200_iterations`` is RSS after iteration 200 minus RSS after iteration 10 (the
first iterations warm caches, imports and SQLite's page cache), each read after a full
collection, so what remains is what the daemon holds on to.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from deployloop import daemon, plan
from deployloop import session as session_module
from deployloop.config import Config
from deployloop.events import Event, IterationEnd, Journal, Reporter
from deployloop.issues.desk import IssueDesk
from deployloop.iteration import Services
from deployloop.loop import Loop
from deployloop.models import CaseResult, Outcome, ProbeResult, SuiteRun
from deployloop.runner import SuiteJob
from deployloop.sessionlog import SessionLog
from deployloop.state import Store
from deployloop.statesinks import LiveStatus, StoryRecorder
from deployloop.wait import WaitEnd, WaitResult
from tests.bench.common import fresh_process_json, rss_mb

GOALS = {"rss_growth_mb_200_iterations": ("<=", 10)}

ITERATIONS = 200
BASELINE_AT = 10
SAMPLES = (BASELINE_AT, 50, 100, 150, ITERATIONS)
CASES = 200

# Root causes: message templates whose variable parts the fingerprint masks.
CAUSES = (
    ("ConnectionClosedError", "server closed with 1011 (internal error) request {hex} at {ip}"),
    ("AssertionError", "expected status 200, got 502 for /api/orders/{num}"),
    ("TimeoutError", "agent_completed not received within 30 s (run run-{num})"),
    ("KeyError", "'tool_result' missing from event {hex}"),
    ("AssertionError", "order total {num}.00 != {num}.50"),
)


def measure() -> dict[str, float]:
    figures = fresh_process_json("tests.bench.bench_memory", "night", str(ITERATIONS), timeout=600)
    assert isinstance(figures, dict)
    rss = {int(n): float(mb) for n, mb in figures["rss_mb"].items()}
    return {
        "rss_growth_mb_200_iterations": rss[ITERATIONS] - rss[BASELINE_AT],
        "rss_mb_after_10_iterations": rss[BASELINE_AT],
        "rss_mb_after_200_iterations": rss[ITERATIONS],
        "rss_night_s": float(figures["seconds"]),
    }


def night(iterations: str) -> None:
    """In a fresh interpreter: run the loop ``iterations`` times, print RSS samples as JSON."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        started = time.monotonic()
        rss = FakeNight(Path(tmp), int(iterations)).run()
        seconds = time.monotonic() - started
    sys.stdout.write(json.dumps({"rss_mb": rss, "seconds": seconds}) + "\n")


class FakeClock:
    """Time that passes only when the loop says so."""

    def __init__(self, stop: threading.Event) -> None:
        self.now = 1_000_000.0
        self.stop = stop

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        return self.stop.is_set()


class FakeNight:
    """The daemon's wiring (daemon._run_locked) around a staging that never quite gets fixed."""

    def __init__(self, root: Path, iterations: int) -> None:
        self.root = root
        self.iterations = iterations
        self.config = Config.model_validate(
            {
                "session": {"name": "night", "logs_dir": str(root / "logs")},
                "target": {"base_url": "http://127.0.0.1:9"},
                "phase": [
                    {"name": "api", "suite": [{"name": "rest", "run": "pytest api"}]},
                    {"name": "agents", "suite": [{"name": "ws", "run": "pytest agents"}]},
                ],
                "issues": {"tracker": "local", "max_new_per_iteration": 3},
            }
        ).model_copy(update={"path": str(root / "deployloop.toml")})
        self.stop = threading.Event()
        self.clock = FakeClock(self.stop)
        self.version = 1
        self.rss: dict[int, float] = {}

    def run(self) -> dict[int, float]:
        store = Store(self.root / "state")  # not $DEPLOYLOOP_STATE_DIR: this night is private
        options = session_module.RunOptions(max_iterations=self.iterations)
        row, _ = session_module.open_session(store, self.config, options)
        redactor = daemon.redactor_for(self.config)
        reporter = Reporter(self.sample)
        reporter.add(Journal(row.directory / "events.jsonl", redactor.redact))
        reporter.add(SessionLog(row.directory / "session.md", redactor.redact))
        reporter.add(LiveStatus(store, row.id, redactor.redact))
        reporter.add(StoryRecorder(store, row.id, redactor.redact))
        desk = IssueDesk(self.config, store, row.id, reporter, redactor)
        services = Services(
            run_suite=self.run_suite,
            run_probe=lambda probe: ProbeResult("unused", "http", True, "no probes configured"),
            read_version=lambda: f"v{self.version}",
            wait=self.wait,
            clock=self.clock,
            stop=self.stop,
            file_issues=desk,
        )
        the_plan = plan.build_plan(self.config)
        try:
            session = session_module.resume_point(store, row)
            result = Loop(self.config, the_plan, session, store, services, reporter).run()
        finally:
            desk.close()
            store.close()
        if result.iterations != self.iterations:
            raise RuntimeError(f"the night ended early: {result}")
        return self.rss

    def sample(self, event: Event) -> None:
        if isinstance(event, IterationEnd) and event.iteration in SAMPLES:
            gc.collect()
            self.rss[event.iteration] = rss_mb()

    def wait(self, tested: str | None) -> WaitResult:
        self.clock.now += 600
        self.version += 1
        return WaitResult(WaitEnd.CHANGED, f"v{self.version}")

    def run_suite(self, job: SuiteJob) -> SuiteRun:
        self.clock.now += 300
        failing = self.failures(job.suite.name)
        cases = []
        for i in range(CASES):
            test = f"tests/{job.suite.name}/test_flow{i // 20}.py::test_case_{i}"
            if job.select and test not in job.select:
                continue
            cause = failing.get(i)
            if cause is None:
                cases.append(CaseResult(test, f"test_case_{i}", "flow", Outcome.PASSED, 0.2))
                continue
            error_type, message = cause
            details = f"def test_case_{i}(client):\n>       check(client)\nE       {message}\n"
            cases.append(
                CaseResult(
                    test, f"test_case_{i}", "flow", Outcome.FAILED, 1.5, message, error_type,
                    details * 5, f"tests/{job.suite.name}/test_flow{i // 20}.py", 4 * i,
                )
            )  # fmt: skip
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        job.log_path.write_text("".join(f"{c.id} {c.outcome}\n" for c in cases), encoding="utf-8")
        return SuiteRun(
            job.phase.name, job.suite.name, tuple(cases), 300.0, 1, version=f"v{self.version}",
            log_path=str(job.log_path), expected_tests=None if job.select else CASES,
        )  # fmt: skip

    def failures(self, suite: str) -> dict[int, tuple[str, str]]:
        """A few failing tests for this version: two causes of the five, some fixed by now."""
        rnd = random.Random(f"{suite}-{self.version}")
        failing = {}
        for index in rnd.sample(range(len(CAUSES)), 2):
            error_type, template = CAUSES[index]
            for test in rnd.sample(range(CASES), rnd.randint(1, 3)):
                message = template.format(
                    hex=f"{rnd.getrandbits(32):08x}",
                    ip=f"10.0.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}",
                    num=rnd.randint(1000, 9999),
                )
                failing[test] = (error_type, message)
        return failing
