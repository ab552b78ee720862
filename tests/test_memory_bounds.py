"""Bounded by design (issue 19): what one iteration's many distinct failures cost beyond the
failures themselves, once clustered, triaged, stored and reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
