"""Issue 22 end to end: real staging stand-ins, real pytest suites, the real run."""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from deployloop import daemon
from deployloop.config import load
from deployloop.daemon import RunOutcome
from deployloop.events import (
    Event,
    EventBase,
    IssueDone,
    IterationStart,
    Mixed,
    RolloutProgress,
    Settled,
    SuiteStart,
    Waiting,
)
from deployloop.plan import build_plan
from deployloop.session import RunOptions
from deployloop.simulator import Simulator
from deployloop.simversions import sha_of
from deployloop.testing.github_server import FakeGitHub
from tests.helpers import cli, python_pytest, session_dirs, wait_for, write_tests

E = TypeVar("E", bound=EventBase)

# A copy of ../shared/cases/27-version-flap-mixed: the tests run from the repository alone.
CASE_27 = Path(__file__).parent / "data" / "cases" / "27-version-flap-mixed"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def flapping(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """Case 27's two pods answering rev-0001 and rev-0002 in turn, on a free port."""
    case = tmp_path / "case"
    shutil.copytree(CASE_27, case)
    port = free_port()
    stub = subprocess.Popen(
        [sys.executable, "flap_stub.py", str(port)], cwd=case, stdin=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _listening(port), timeout=10)
        yield case, port
    finally:
        stub.kill()
        stub.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_case_27_flapping_version_is_one_verdict_not_a_busy_loop(
    flapping: tuple[Path, int],
) -> None:
    """--once: the suite runs twice (one mixed rerun), then 'staging serves mixed versions'."""
    case, port = flapping
    config = (case / "cfg.toml").read_text().replace("18082", str(port))
    config = config.replace("venv/bin/pytest -q", python_pytest())
    (case / "cfg.toml").write_text(config)
    done = cli("run", "--once", "-c", "cfg.toml", cwd=case, timeout=120)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    (session,) = session_dirs(case / "logs")
    log = (session / "session.md").read_text()
    assert log.count("suite smoke/smoke started") == 2
    assert log.count("iteration 1 started") + log.count("## Iteration 1") == 1
    assert "❌ smoke: harness: staging serves mixed versions rev-0001/rev-0002" in log
    assert "rerunning it on rev-000" in log
    assert "deadline" not in log.split("## Summary")[-1]


# simulator-backed nights, run in-process (daemon.run) with a sink that plays the deploys ------

AGENTS = """
import json, os, urllib.request

def test_agent_pipeline():
    with urllib.request.urlopen(os.environ["STAGING_URL"] + "/_control/state", timeout=5) as r:
        assert json.load(r)["bug"] is False, "agent pipeline crashed (1011)"
"""
FLIP = """
import json, os, pathlib, urllib.request

def test_flip_once():
    marker = pathlib.Path(os.environ["FLIP_MARKER"])
    if not marker.exists():  # the first run only: a deploy lands in the middle of the suite
        marker.write_text("flipped")
        body = json.dumps({"fix": False, "delay_s": 0}).encode()
        url = os.environ["STAGING_URL"] + "/_control/deploy"
        urllib.request.urlopen(urllib.request.Request(url, body, method="POST"), timeout=5)
"""
OTHER = """
def test_checkout_total():
    assert 41 == 42, "checkout total is off by one"
"""


def night(
    tmp_path: Path,
    staging: Simulator,
    phases: str,
    extra: str = "",
    deploys: Sequence[Callable[[], object]] = (),
    once: bool = False,
    max_iterations: int = 3,
) -> tuple[RunOutcome, list[Event]]:
    """A whole run against ``staging``; each redeploy wait plays the next of ``deploys``."""
    suite = tmp_path / "suite"
    for name, source in (
        ("test_agents.py", AGENTS),
        ("test_flip.py", FLIP),
        ("test_other.py", OTHER),
    ):
        write_tests(suite, name, source)
    text = f"""
[session]
name = "versions"
logs_dir = "{tmp_path / "logs"}"
max_iterations = {max_iterations}

[target]
base_url = "{staging.base_url}"
version = {{ url = "/version", json = "commit" }}
{extra}
[retest]
rerun_failed = false
{phases.replace("SUITE", str(suite)).replace("PYTEST", python_pytest())}
"""
    (tmp_path / "deployloop.toml").write_text(text)
    config = load(tmp_path / "deployloop.toml")
    events: list[Event] = []
    script = iter(deploys)

    def sink(event: Event) -> None:
        events.append(event)
        if isinstance(event, Waiting):
            next(script, lambda: None)()

    outcome = daemon.run(config, build_plan(config, once=once), RunOptions(), [sink])
    return outcome, events


def suite_block_for(name: str, files: str, url: str, **env: str) -> str:
    variables = ", ".join(f'{k} = "{v}"' for k, v in {"STAGING_URL": url, **env}.items())
    return (
        f'[[phase]]\nname = "{name}"\n  [[phase.suite]]\n  name = "{name}"\n'
        f'  run = "PYTEST {files}"\n  cwd = "SUITE"\n  env = {{ {variables} }}\n'
    )


def of(events: list[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


@pytest.mark.slow
def test_version_flip_mid_suite_is_mixed_and_rerun_without_a_second_issue(
    tmp_path: Path,
) -> None:
    """A deploy lands mid-suite: mixed, rerun on the new version, one issue (its), no close."""
    with Simulator(bug=True) as staging:
        phase = suite_block_for(
            "agents", "test_flip.py test_agents.py", staging.base_url,
            FLIP_MARKER=str(tmp_path / "flipped"),
        )  # fmt: skip
        outcome, events = night(tmp_path, staging, phase, once=True)
    assert outcome.exit_code == 1
    (mixed,) = of(events, Mixed)
    assert (mixed.suite, mixed.rerun) == ("agents", True)
    assert (mixed.from_version, mixed.to_version) == ("rev-0001", "rev-0002")
    assert [s.suite for s in of(events, SuiteStart)] == ["agents", "agents"]
    issues = of(events, IssueDone)
    assert [i.action for i in issues] == ["created"]
    (issue,) = (tmp_path / "logs" / "issues").glob("*.md")
    assert "First seen failing on `rev-0002`" in issue.read_text()  # not on the mixed run's


@pytest.mark.slow
def test_gradual_rollout_is_not_retested_until_converged_then_once(tmp_path: Path) -> None:
    """Old and new answered at random for 1.5 s: no retest till 3 reads agree, then one."""
    rolled: list[float] = []

    def rollout() -> None:
        staging.deploy(fix=True, delay_s=0.2, rollout_s=1.5)
        rolled.append(time.time() + 0.2 + 1.5)

    redeploy = '[redeploy]\npoll = "0.1s"\nsettle = "2s"\nconverge = 3\ntimeout = "30s"\n'
    # seed 10: the first read after the deploy answers the new version, the next the old one
    with Simulator(bug=True, seed=10) as staging:
        phase = suite_block_for("agents", "test_agents.py", staging.base_url)
        outcome, events = night(tmp_path, staging, phase + redeploy, deploys=[rollout])
    assert outcome.exit_code == 0
    (progress, *_) = of(events, RolloutProgress)
    assert (progress.version, progress.old_version, progress.needed) == ("rev-0002", "rev-0001", 3)
    (settled,) = of(events, Settled)
    retests = [e for e in of(events, IterationStart) if e.iteration == 2]
    assert len(retests) == 1 and retests[0].version == "rev-0002"
    assert progress.ts < settled.ts <= retests[0].ts
    assert retests[0].ts >= rolled[0]  # the rollout was over before anything was retested


@pytest.mark.slow
def test_fix_regression_and_rollback_on_commit_shas_with_the_commits_between(
    tmp_path: Path,
) -> None:
    """Good, bad (issue: compare link, commits), fixed, regressed, fixed, rolled back."""
    with FakeGitHub() as github, Simulator(sha_versions=True) as staging:
        for n in range(1, 6):
            github.add_commit(f"feat: step {n}a")
            github.add_commit(f"release {n}", sha=sha_of(n))
        extra = (
            f'source_repo = "{github.repo}"\n\n[issues]\ntracker = "github"\n'
            f'repo = "{github.repo}"\ntoken = "{github.token}"\napi_url = "{github.url}"\n'
            'write_interval = "0s"\n'
        )
        plays = [(2, True), (3, False), (4, True), (5, False), (2, True)]
        deploys = [
            functools.partial(staging.deploy, delay_s=0, revision=n, bug=bug) for n, bug in plays
        ]
        phases = suite_block_for("agents", "test_agents.py", staging.base_url)
        # a check that fails on every version keeps the night going past the fixes
        phases += '[[phase]]\nname = "other"\n  [[phase.probe]]\n  kind = "http"\n'
        phases += '  url = "/api/missing"\n'
        redeploy = '[redeploy]\npoll = "0.1s"\nsettle = "0s"\ntimeout = "30s"\n'
        outcome, _ = night(tmp_path, staging, phases + redeploy, extra, deploys, max_iterations=6)
        agents = next(i for i in github.issues.values() if "agents" in i["title"])
        body, comments = agents["body"], github.comments(agents["number"])
        compares = github.requests("GET", r"/compare/")
    assert outcome.exit_code == 1  # "other" fails on every version
    sha = {n: sha_of(n) for n in range(1, 6)}
    assert f"First seen failing on `{sha[2]}`, last passed on `{sha[1]}`." in body
    assert f"https://github.com/{github.repo}/compare/{sha[1]}...{sha[2]}" in body
    assert "feat: step 2a" in body and "release 1" not in body  # the commits between
    assert len(compares) == 1  # one call, for the one cause new after a good version
    assert [c.split(":")[0].split(" (")[0] for c in comments] == [
        f"✅ Verified fixed in `{sha[3]}`",
        f"Regressed in `{sha[4]}`",
        f"✅ Verified fixed in `{sha[5]}`",
        f"Rolled back to `{sha[2]}`",
    ]
    assert f"(fixed in `{sha[3]}`)" in comments[1] and f"(fixed in `{sha[5]}`)" in comments[3]
    report = (outcome.directory / "report.md").read_text().split("## Versions")[1]
    assert [f"`{sha[n]}`" in report for n in range(1, 6)] == [True] * 5  # the timeline
    assert f"regressed in {sha[2]}" in report  # the cause's line: rolled back, failing again
