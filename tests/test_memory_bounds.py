"""Bounded by design (issue 19): what one iteration's many distinct failures cost beyond the
failures themselves, once clustered, triaged, stored and reported, in memory and in time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from deployloop import plan
from deployloop.models import CaseResult, Outcome, SuiteRun
from deployloop.redact import Redactor
from tests.bench.common import REPO

FAILURES = 20_000
# Beyond the failures held: clustering, triage, storing and the report each hold a lean record
# per failure at most (10.7 MB here); before issue 19's fix they held full ones (35.3 MB).
BOUND_MB = 20.0

# A process of its own: VmHWM is reset (``clear_refs``) once the failures are built, so the
# figure is what the stages added at their peak, whatever the interpreter and imports cost.
STAGES = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path
from deployloop.config import IssuesConfig
from deployloop.issues.records import PhaseInfo, TriageContext
from deployloop.issues.triage import assess
from deployloop.models import CaseResult, Outcome, SuiteRun
from deployloop.report import build
from deployloop.state import SessionRow, Store
from deployloop.summary import summarize

def status(key):
    with open("/proc/self/status") as lines:
        return int(next(l for l in lines if l.startswith(key)).split()[1]) / 1024

n_failures, state = int(sys.argv[1]), Path(sys.argv[2])
cases = tuple(
    CaseResult(
        f"tests/test_m{n // 100}.py::test_{n}", f"test_{n}", f"tests.test_m{n // 100}",
        Outcome.FAILED, 0.01, f"distinct failure {n} {n * 7919:x}", f"E{n}Error",
        f'Traceback\\n  File "t.py", line {n}\\nE{n}Error: distinct failure {n}',
    )
    for n in range(n_failures)
)
run = SuiteRun("all", "many", cases, 1.0, 1)
store = Store(state)
row = SessionRow("s", "k", "bounds", str(state / "logs"), 0.0, None, 1, "running", None, None)
store.create_session(row)
store.begin_iteration("s", 1, "v1")
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # VmHWM := VmRSS now
before = status("VmHWM:")
summary = summarize(cases, top=50)
ctx = TriageContext(1, "v1", None, IssuesConfig(), datetime.now(UTC), {"all": PhaseInfo("all")})
records, actions = assess({}, [run], ctx)
store.save_run("s", 1, "full", run)
store.end_iteration("s", 1, "v1", False, {"phases": {"all": False}})
data = build(store, "s")
print(json.dumps({
    "added_mb": status("VmHWM:") - before,
    "clusters": summary.others + len(summary.clusters),
    "actions": [a.kind for a in actions],
    "failed": data.iterations[0].phases[0].failed,
}))
"""


def test_many_distinct_failures_cost_lean_records_only(tmp_path: Path) -> None:
    """20,000 distinct failures through summary, triage, state and report: the peak they add
    stays under BOUND_MB, with every cluster counted and one broken-deploy issue."""
    done = subprocess.run(
        [sys.executable, "-c", STAGES, str(FAILURES), str(tmp_path / "state")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert found["clusters"] == FAILURES
    assert found["actions"] == ["create"]
    assert found["failed"] == FAILURES
    assert found["added_mb"] < BOUND_MB, found["added_mb"]


def _seconds(action: Callable[[], object]) -> float:
    """The least wall time of three calls: the least noisy figure on a shared machine."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def _broken_run(failures: int) -> SuiteRun:
    cases = tuple(
        CaseResult(f"t.py::test_{n}", f"test_{n}", "t", Outcome.FAILED, 0.1, f"E{n}Error: {n}")
        for n in range(failures)
    )
    return SuiteRun("p", "s", cases, 1.0, 1)


def test_many_failures_cost_linear_time() -> None:
    """Four times the distinct failures cost about four times as much to select for a rerun and
    to scrub, never sixteen (a list searched per failure made 100k failures take minutes)."""
    small, large = _broken_run(5_000), _broken_run(20_000)
    assert len(plan.failed_tests([large])["s"]) == 20_000
    ratio = _seconds(lambda: plan.failed_tests([large])) / _seconds(
        lambda: plan.failed_tests([small])
    )
    assert ratio < 8, f"rerun selection: {ratio:.1f}x the time for 4x the failures"
    redactor = Redactor.from_env({"API_TOKEN": "s3cr3t-value-xyz"})
    few, many = ([c.message for c in run.cases] for run in (small, large))
    ratio = _seconds(lambda: [redactor.redact(t) for t in many]) / _seconds(
        lambda: [redactor.redact(t) for t in few]
    )
    assert ratio < 8, f"scrubbing: {ratio:.1f}x the time for 4x the failures"
