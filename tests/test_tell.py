"""Telling people and systems (issue 23) over one real red → red → green night through the CLI:
notifications to real loopback receivers, a hook, commit statuses on the local GitHub server, and
the metrics textfile read back with prometheus-client's parser."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deployloop import report
from deployloop.config import parse
from deployloop.errors import ConfigError
from deployloop.events import DryRun, IssueDone, NotificationSent, read_journal
from deployloop.state import Store
from deployloop.testing.github_server import FakeGitHub
from deployloop.testing.receiver import Receiver
from tests.helpers import cli, config_text, phase_block, python_pytest, suite_block, write_tests

# One worker runs the whole module under pytest-xdist: its module-scoped fixture is costly.
pytestmark = pytest.mark.xdist_group(__name__)

SECRET = "sk_live_" + "9aZ8bY7cX6dW5eV4fU3gT2hS"  # the suites print it in a failure message
SHAS = ("c0ffee1", "c0ffee2", "c0ffee3")
PHASES = ("infrastructure", "business")

STAGING = """
    from pathlib import Path

    def rev():
        return int(Path(__file__).parent.parent.joinpath("version.txt").read_text().strip()[-1])
"""
INFRA = """
    import os
    from staging import rev

    def test_database():
        if rev() < 2:
            key = os.environ["NIGHT_API_TOKEN"]
            raise ConnectionError(f"database refused @here <!channel> with key {key}")
"""
JOURNEYS = """
    from staging import rev

    def test_checkout():
        assert rev() >= 3, "cart total was 0"
"""
BUMP = """
    from pathlib import Path

    path = Path(__file__).parent / "version.txt"
    path.write_text(f"c0ffee{int(path.read_text().strip()[-1]) + 1}\\n")
"""
HOOK = """
    import json, os, sys
    from pathlib import Path

    event = json.loads(sys.stdin.read())
    seen = {k: v for k, v in os.environ.items() if k.startswith("DEPLOYLOOP_")}
    with open(Path(__file__).parent / "hook.jsonl", "a") as out:
        out.write(json.dumps({"stdin": event, "env": seen}) + "\\n")
"""


@dataclass(frozen=True)
class Night:
    root: Path
    receiver: Receiver
    github: FakeGitHub
    exit_code: int
    output: str

    @property
    def session(self) -> Path:
        (found,) = [p for p in (self.root / "logs").iterdir() if (p / "session.md").exists()]
        return found


def _config(root: Path, receiver: Receiver, github: FakeGitHub) -> Path:
    (root / "version.txt").write_text(f"{SHAS[0]}\n")
    e2e = root / "e2e"
    write_tests(e2e, "staging.py", STAGING)
    write_tests(e2e, "test_infra.py", INFRA)
    write_tests(e2e, "test_journeys.py", JOURNEYS)
    write_tests(root, "bump.py", BUMP)
    write_tests(root, "hook.py", HOOK)
    suites = [
        suite_block("p1-critical", python_pytest(str(e2e / "test_infra.py")), cwd=str(e2e)),
        suite_block("journeys", python_pytest(str(e2e / "test_journeys.py")), cwd=str(e2e)),
    ]
    hook = f"{sys.executable} {root / 'hook.py'}"
    extra = (
        f'[target.version]\ncommand = "cat {root / "version.txt"}"\n\n'
        "[retest]\nrerun_failed = false\n\n"
        f'[redeploy]\ntrigger = "{sys.executable} {root / "bump.py"}"\n'
        'poll = "0.1s"\nsettle = "0s"\n\n'
        f'[issues]\ntoken = "${{NIGHT_GH_TOKEN}}"\napi_url = "{github.url}"\n\n'
        f'[notify]\nurls = ["{receiver.json_url}", "{receiver.mattermost_url}"]\n\n'
        f'[hooks]\non_issue = "{hook}"\non_green = "{hook}"\n\n'
        '[metrics]\ntextfile = "metrics/deployloop.prom"\n'
    )
    text = config_text(
        *(phase_block(name, suite) for name, suite in zip(PHASES, suites, strict=True)),
        session='interval = "0.1s"\nmax_iterations = 5\n',
        extra=extra,
    ).replace("[target]\n", f'[target]\nsource_repo = "{github.repo}"\n', 1)
    config = root / "deployloop.toml"
    config.write_text(text)
    return config


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    """One real night with every teller configured; the receivers stay up for the asserts."""
    root = tmp_path_factory.mktemp("tell")
    with Receiver() as receiver, FakeGitHub() as github:
        config = _config(root, receiver, github)
        env = {
            "DEPLOYLOOP_STATE_DIR": str(root / "state"),
            "NIGHT_API_TOKEN": SECRET,
            "NIGHT_GH_TOKEN": github.token,
        }
        done = cli("run", "-c", str(config), cwd=root, env=env)
        yield Night(root, receiver, github, done.returncode, done.stdout + done.stderr)


@pytest.mark.slow
def test_one_message_per_transition_on_each_receiver(night: Night) -> None:
    """red → red → green: red, green and the session's end, once each per receiver, no secret."""
    assert night.exit_code == 0, night.output
    titles = [p.body["title"] for p in night.receiver.received("/notify")]
    assert [t.split(": ", 1)[1].split(" ")[0] for t in titles] == ["RED", "GREEN", "session"]
    assert SHAS[0] in titles[0] and SHAS[2] in titles[1]
    slack = night.receiver.received("/hooks/")
    assert len(slack) == 3 and all("text" in p.body for p in slack)
    everything = json.dumps([p.body for p in night.receiver.posts])
    assert SECRET not in everything and night.github.token not in everything
    assert "<!channel>" not in everything and "@here" not in everything


@pytest.mark.slow
def test_messages_carry_gates_causes_version_and_report(night: Night) -> None:
    """The red message names the failing gates with values and the new causes with links; the
    green one the causes it fixed; each the report's path."""
    red, green, _ = (p.body["message"] for p in night.receiver.received("/notify"))
    assert "infrastructure pass_rate: 0.0% (0/1) (threshold ≥ 100%)" in red
    assert "new causes:" in red and str(night.root / "logs" / "issues") in red
    assert "fixed causes:" in green and "cart total was 0" in green
    assert f"report: {night.session / 'report.html'}" in red


@pytest.mark.slow
def test_notifications_are_in_the_journal_and_the_report(night: Night) -> None:
    """Each send is a NotificationSent in events.jsonl; the report's Notifications section lists
    the ones sent during the night."""
    sent = [
        e for e in read_journal(night.session / "events.jsonl") if isinstance(e, NotificationSent)
    ]
    assert [e.notice for e in sent] == [
        "red",
        "red",
        "green",
        "green",
        "session_end",
        "session_end",
    ]
    assert all(e.ok for e in sent) and all("slacktoken" not in e.via for e in sent)
    text = (night.session / "report.md").read_text()
    assert "## Notifications" in text and text.count("| green |") == 2


@pytest.mark.slow
def test_on_issue_hook_gets_the_journal_event_on_stdin(night: Night) -> None:
    """The hook reads the issue event as events.jsonl holds it, and DEPLOYLOOP_* its fields."""
    runs = [json.loads(line) for line in (night.root / "hook.jsonl").read_text().splitlines()]
    journal = [
        json.loads(line) for line in (night.session / "events.jsonl").read_text().splitlines()
    ]
    issues = [r for r in journal if r["event"] == "issue"]
    assert [r["stdin"] for r in runs if r["stdin"]["event"] == "issue"] == issues
    created = next(r for r in runs if r["stdin"].get("action") == "created")
    assert created["env"]["DEPLOYLOOP_ACTION"] == "created"
    assert created["env"]["DEPLOYLOOP_VERSION"] == SHAS[0]
    assert created["env"]["DEPLOYLOOP_ISSUE_URL"].endswith(".md")
    green = [r for r in runs if r["stdin"]["event"] == "iteration_end"]
    assert [r["env"]["DEPLOYLOOP_GREEN"] for r in green] == ["1"]
    assert SECRET not in json.dumps(runs)


@pytest.mark.slow
def test_commit_statuses_pending_then_verdict_never_repeated(night: Night) -> None:
    """Each tested SHA: pending, then failure (naming the gates) or success; nothing twice."""
    states = {sha: [s["state"] for s in night.github.statuses[sha]] for sha in SHAS}
    assert states == {
        SHAS[0]: ["pending", "failure"],
        SHAS[1]: ["pending", "failure"],
        SHAS[2]: ["pending", "success"],
    }
    failure = night.github.statuses[SHAS[1]][1]
    assert failure["description"].startswith("failing: business pass_rate: 0.0%")
    assert len(failure["description"]) <= 140
    assert failure["context"] == "deployloop/t"
    assert failure["target_url"] == (night.session / "report.html").resolve().as_uri()


@pytest.mark.slow
def test_a_dry_run_tells_no_one_and_says_what_it_would(tmp_path: Path) -> None:
    """--dry-run with [notify], [hooks], source_repo, [metrics]: no post, status, hook or
    metrics file; DryRun lines."""
    with Receiver() as receiver, FakeGitHub() as github:
        config = _config(tmp_path, receiver, github)
        text = config.read_text().replace("[hooks]\n", f'[hooks]\non_red = "{HOOK_CMD}"\n', 1)
        config.write_text(text.replace("{root}", str(tmp_path)))
        env = {"DEPLOYLOOP_STATE_DIR": str(tmp_path / "state"), "NIGHT_API_TOKEN": SECRET}
        env["NIGHT_GH_TOKEN"] = github.token
        done = cli("run", "-c", str(config), "--once", "--dry-run", cwd=tmp_path, env=env)
        assert receiver.posts == [] and github.statuses == {}, done.stdout + done.stderr
    assert not (tmp_path / "hook.jsonl").exists() and not (tmp_path / "red.txt").exists()
    assert not (tmp_path / "metrics").exists()
    (journal,) = tmp_path.glob("logs/*/events.jsonl")
    said = [e.detail for e in read_journal(journal) if isinstance(e, DryRun)]
    assert any(line.startswith("would notify") for line in said), said
    assert any(line.startswith("would run on_red") for line in said), said
    assert any(line.startswith(f"would set commit status failure on {SHAS[0]}") for line in said)
    assert sum(line.startswith("would write metrics to") for line in said) == 1, said


HOOK_CMD = "touch {root}/red.txt"


@pytest.mark.slow
def test_metrics_textfile_matches_the_session(night: Night) -> None:
    """The textfile parses, and its numbers are the session's: iteration, rates, issues."""
    text = (night.root / "metrics" / "deployloop.prom").read_text()
    samples = {
        (s.name, s.labels.get("phase", ""), s.labels.get("gate", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    store = Store(night.root / "state")
    try:
        data = report.build(store)
        issues = [e for _, e in store.story(data.session, IssueDone)]
    finally:
        store.close()
    last = data.iterations[-1]
    assert samples[("deployloop_iteration", "", "")] == last.n == 3
    assert samples[("deployloop_green", "", "")] == 1
    for stats in last.phases:
        assert samples[("deployloop_phase_pass_ratio", stats.phase, "")] == stats.pass_rate
        assert samples[("deployloop_phase_passed", stats.phase, "")] == 1
    assert samples[("deployloop_gate_passed", "business", "pass_rate")] == 1
    filed = sum(e.action == "created" for e in issues)
    closed = sum(e.action == "closed" for e in issues)
    assert samples[("deployloop_issues_filed_total", "", "")] == filed == 2
    assert samples[("deployloop_issues_closed_total", "", "")] == closed == 2
    assert samples[("deployloop_open_causes", "", "")] == 0
    assert 0 <= samples[("deployloop_seconds_since_last_green", "", "")] < 60
    assert samples[("deployloop_redeploy_wait_seconds", "", "")] >= 0


def test_source_repo_needs_a_token() -> None:
    """Commit statuses go through the API: source_repo without [issues] token is a config error."""
    text = config_text(phase_block("p", suite_block("s", "true"))).replace(
        "[target]\n", '[target]\nsource_repo = "acme/app"\n', 1
    )
    with pytest.raises(ConfigError, match="source_repo needs \\[issues\\] token"):
        parse(text, "c.toml", {})


def test_notify_on_refuses_an_unknown_transition() -> None:
    """``[notify] on`` takes the five transitions only, and urls must be URLs."""
    text = config_text(phase_block("p", suite_block("s", "true")))
    bad = text + '\n[notify]\nurls = ["json://127.0.0.1/x"]\non = ["purple"]\n'
    with pytest.raises(ConfigError, match="notify"):
        parse(bad, "c.toml", {})
    with pytest.raises(ConfigError):
        parse(text + '\n[notify]\nurls = ["not a url"]\n', "c.toml", {})


@pytest.mark.parametrize("url", ["foo://bar", "json://"])
def test_validate_checks_each_notify_url_with_apprise(tmp_path: Path, url: str) -> None:
    """`validate` refuses a URL apprise cannot use, naming its index and scheme, exit 2."""
    text = config_text(phase_block("p", suite_block("s", "true")))
    good = "json://127.0.0.1:9/x"
    path = tmp_path / "c.toml"
    path.write_text(text + f'\n[notify]\nurls = ["{good}", "{url}"]\n')
    done = cli("validate", "-c", str(path), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "notify.urls[1]" in line and url.partition("://")[0] in line, line


def test_until_takes_a_toml_time() -> None:
    """`until = 07:00:00` (a TOML time, not a string) is 07:00, not a datetime.time error."""
    text = config_text(phase_block("p", suite_block("s", "true")))
    config = parse(text.replace("[session]\n", "[session]\nuntil = 07:00:00\n", 1), "c.toml", {})
    assert config.session.until is not None and config.session.until.hour == 7
    with pytest.raises(ConfigError, match="write it as a string") as info:
        parse(text.replace("[session]\n", "[session]\nuntil = 07:00:30\n", 1), "c.toml", {})
    assert "datetime" not in str(info.value.problems)
