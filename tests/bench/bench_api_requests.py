"""GitHub API requests per iteration for 1000 failing tests in 5 causes, against the local stand-in.

A shared GitHub API is the scarce resource overnight: one paginated listing per iteration (and
only when there is something to write), labels checked once per run, no per-issue reads.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from deployloop.issues.compare import CompareCache
from deployloop.issues.deliver import apply
from deployloop.issues.github import GitHubTracker
from deployloop.issues.outbox import Outbox
from deployloop.issues.records import ClusterRecord, TriageContext
from deployloop.issues.triage import assess, with_issue_numbers
from deployloop.models import SuiteRun
from deployloop.redact import Redactor
from deployloop.testing import CAUSES, cause_map, context, failing_run
from deployloop.testing.github_server import FakeGitHub

GOALS = {
    "api_requests_first": ("<=", 15),
    "api_requests_repeat": ("<=", 6),
    "api_requests_statuses_per_iteration": ("<=", 2),  # pending + verdict, never a repeat
    # the commits between last good and first bad: one call per new cause at most (issue 22)
    "api_requests_compare_per_new_cause": ("<=", 1),
}

COUNTS = (400, 250, 150, 120, 80)  # 1000 failures, 5 causes; 1500 more tests pass


def runs(fixed: frozenset[str] = frozenset()) -> list[SuiteRun]:
    return [failing_run(cause_map(*COUNTS), passing=1500, fixed=fixed)]


class Bench:
    def __init__(self, github: FakeGitHub, state: Path) -> None:
        self.github = github
        self.tracker = GitHubTracker(github.repo, github.token, github.url, min_interval=0)
        self.outbox = Outbox(state)
        self.records: dict[str, ClusterRecord] = {}
        self.triage_s = 0.0

    def requests(self, the_runs: list[SuiteRun], ctx: TriageContext) -> int:
        """API requests one iteration (triage + apply) costs."""
        before = len(self.github.requests())
        started = time.perf_counter()
        records, actions = assess(self.records, the_runs, ctx)
        self.triage_s = max(self.triage_s, time.perf_counter() - started)
        result = apply(actions, self.tracker, self.outbox, Redactor())
        self.records = with_issue_numbers(records, result.issue_numbers)
        return len(self.github.requests()) - before


def status_requests(github: FakeGitHub, iterations: int = 4) -> float:
    """Commit-status requests per iteration over a night: three red commits, then a retest of
    the last one that stays red (no request), then green."""
    from deployloop.config import parse
    from deployloop.events import IterationEnd, IterationStart, PhaseEnd, Reporter
    from deployloop.models import Verdict
    from deployloop.tell import Tellers
    from deployloop.tell.night import Night
    from deployloop.tell.statuses import CommitStatuses, GitHubStatuses

    text = (
        '[target]\nbase_url = "http://127.0.0.1:9"\n[[phase]]\nname = "p"\n'
        '[[phase.suite]]\nname = "s"\nrun = "true"\n'
        f'[issues]\ntoken = "{github.token}"\napi_url = "{github.url}"\nwrite_interval = "0s"\n'
    )
    config = parse(text, "bench.toml", {})
    post = GitHubStatuses(github.repo, "deployloop/bench", config, str, threading.Event())
    tellers = Tellers(Night(config.issues, Path(".")), [CommitStatuses(post, Reporter(), None)])
    before = len(github.requests())
    shas = [f"{n:07x}abc" for n in range(1, iterations)] + [f"{iterations - 1:07x}abc"]
    for n, sha in enumerate(shas, 1):
        gate = Verdict("pass_rate", False, "0.0% (0/1)", "≥ 100%")
        tellers(IterationStart(iteration=n, version=sha))
        tellers(PhaseEnd(phase="p", passed=False, verdicts=(), gates=(gate,)))
        tellers(IterationEnd(iteration=n, green=False, version=sha, duration_s=1, failing=("p",)))
    return (len(github.requests()) - before) / len(shas)


def compare_requests(github: FakeGitHub, state: Path) -> float:
    """Compare-API requests per new cause: five causes new on a commit whose parent passed."""
    good, bad = github.add_commit("release: good"), github.add_commit("release: bad")
    bench = Bench(github, state)
    cache = CompareCache(lambda base, head: bench.tracker.compare(github.repo, base, head))
    passed = frozenset(t for run in runs() for t in (c.id for c in run.cases))
    ctx = replace(
        context(1, version=bad), previous_version=good, passed_before=passed, compare=cache
    )
    before = len(github.requests("GET", r"/compare/"))
    bench.requests(runs(), ctx)
    bench.tracker.dispose()
    return (len(github.requests("GET", r"/compare/")) - before) / len(CAUSES[:5])


def measure() -> dict[str, float]:
    with FakeGitHub() as github, tempfile.TemporaryDirectory() as state:
        statuses = status_requests(github)
        github.reset_calls()
        bench = Bench(github, Path(state))
        first = bench.requests(runs(), context(1))
        same = bench.requests(runs(), context(2))
        repeat = bench.requests(runs(), context(3, version="rev-002"))
        fixed = bench.requests(runs(frozenset(CAUSES[:5])), context(4, version="rev-003"))
        bench.tracker.dispose()
        restart = Bench(github, Path(state))  # state lost: everything is found by its marker
        restarted = restart.requests(runs(), context(5, version="rev-004"))
        restart.tracker.dispose()
        issues = len(github.issues)  # still one per cause: the restart reopened, not refiled
    with FakeGitHub() as github, tempfile.TemporaryDirectory() as state:
        compares = compare_requests(github, Path(state))
    return {
        "api_requests_first": first,
        "api_requests_repeat": repeat,
        "api_requests_repeat_same_version": same,
        "api_requests_all_fixed": fixed,
        "api_requests_after_restart": restarted,
        "issues_filed": issues,
        "triage_ms_1000_failures": bench.triage_s * 1000,
        "api_requests_statuses_per_iteration": statuses,
        "api_requests_compare_per_new_cause": compares,
    }


if __name__ == "__main__":
    for key, value in measure().items():
        print(f"{key}: {value:g}")
