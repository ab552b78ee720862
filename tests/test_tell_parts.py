"""The tellers one by one: the notification outbox, hooks that fail, commit statuses that repeat
or cannot be set, and nothing heavy loaded when no teller is configured."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from deployloop.config_schema import HooksConfig, IssuesConfig, NotifyConfig
from deployloop.events import (
    CommitStatusSet,
    Event,
    HookRan,
    IssueDone,
    IterationEnd,
    IterationStart,
    NotificationSent,
    PhaseEnd,
    Reporter,
    SessionStart,
)
from deployloop.models import Verdict
from deployloop.redact import Redactor
from deployloop.session import stop_left_behind
from deployloop.state import SessionRow
from deployloop.tell import Tellers
from deployloop.tell.hooks import HOOK_PID, Hooks
from deployloop.tell.night import Night
from deployloop.tell.notify import Notifier
from deployloop.tell.outbox import BACKOFF_S, NoticeOutbox
from deployloop.tell.statuses import CommitStatuses, GitHubStatuses
from deployloop.testing.github_server import FakeGitHub, Fault
from deployloop.testing.receiver import Receiver
from tests.helpers import config_text, phase_block, suite_block, wait_for

GATE = Verdict("pass_rate", False, "50.0% (1/2)", "≥ 100%")


def _night(tmp_path: Path) -> Night:
    return Night(IssuesConfig(), tmp_path / "logs")


def _iteration(n: int, version: str, green: bool) -> list[Event]:
    gates = () if green else (GATE,)
    return [
        IterationStart(iteration=n, version=version),
        PhaseEnd(phase="api", passed=green, verdicts=(), gates=gates),
        IterationEnd(iteration=n, green=green, version=version, duration_s=1.0, failing=()),
    ]


def _start(tmp_path: Path) -> SessionStart:
    return SessionStart(
        session="s-1", config="c.toml", resumed=False, deadline=None, max_iterations=5,
        logs_dir=str(tmp_path / "logs" / "s-1"),
    )  # fmt: skip


def test_a_failed_notification_waits_in_the_outbox_and_goes_out_next_time(tmp_path: Path) -> None:
    """A receiver answering 500 gets the message at the next iteration's end after its backoff,
    once; the outbox file never holds the receiver's URL (its token)."""
    seen: list[Event] = []
    reporter = Reporter(seen.append)
    outbox = NoticeOutbox(tmp_path / "state", "config-a")
    now = [1000.0]
    with Receiver() as receiver:
        receiver.fail = 1
        url = receiver.mattermost_url
        config = NotifyConfig(urls=[url])
        notifier = Notifier(config, "night", outbox, reporter, str, clock=lambda: now[0])
        tellers = Tellers(_night(tmp_path), [notifier])
        for event in [_start(tmp_path), *_iteration(1, "v1", green=False)]:
            tellers(event)
        assert len(outbox.pending()) == 1
        assert "slacktoken" not in (tmp_path / "state" / "notify-outbox.json").read_text()
        now[0] += BACKOFF_S
        for event in _iteration(2, "v2", green=False):  # still red: nothing new to say
            tellers(event)
        assert not outbox.pending()
        taken = receiver.received("/hooks/")
    assert len(taken) == 1 and "RED on v1" in taken[0].body["text"]
    sent = [e for e in seen if isinstance(e, NotificationSent)]
    assert [(e.ok, e.notice) for e in sent] == [(False, "red"), (True, "red")]
    assert sent[0].error and "slacktoken" not in sent[0].via


def test_a_failing_receiver_is_backed_off_and_reported_once_per_notice(tmp_path: Path) -> None:
    """Session end does not retry a notice that just failed; each failed notice is one event;
    the next night delivers it labelled with the session and time it came from."""
    seen: list[Event] = []
    outbox = NoticeOutbox(tmp_path / "state", "config-a")
    now = [1000.0]
    with Receiver() as receiver:
        receiver.fail = 100
        config = NotifyConfig(urls=[receiver.mattermost_url])
        notifier = Notifier(config, "n", outbox, Reporter(seen.append), str, clock=lambda: now[0])
        tellers = Tellers(_night(tmp_path), [notifier])
        for event in [_start(tmp_path), *_iteration(1, "v1", green=False)]:
            tellers(event)
        tellers.close()
        tellers.close()  # the session's end, as the daemon closes: nothing tried again
        assert len(receiver.posts) == 1
        failed = [e for e in seen if isinstance(e, NotificationSent)]
        assert [(e.ok, e.notice) for e in failed] == [(False, "red")]
        receiver.fail, now[0] = 0, now[0] + 8 * 3600
        later = Notifier(config, "n", outbox, Reporter(seen.append), str, clock=lambda: now[0])
        night = Tellers(_night(tmp_path), [later])
        start = dataclasses.replace(_start(tmp_path), session="s-2")
        for event in [start, *_iteration(1, "v9", green=False)]:
            night(event)
        (held, fresh) = [p.body["text"] for p in receiver.received("/hooks/")]
    assert held.startswith("[from session s-1, ") and "RED on v1" in held
    assert "RED on v9" in fresh and "[from session" not in fresh


def test_outboxes_of_two_configs_keep_apart(tmp_path: Path) -> None:
    """Two configs sharing a state directory each read and replace only their own notices."""
    a, b = NoticeOutbox(tmp_path, "a"), NoticeOutbox(tmp_path, "b")
    from deployloop.tell.outbox import Notice

    a.add(Notice("r1", "red", "A", "body"))
    b.add(Notice("r2", "green", "B", "body"))
    a.save([])
    assert a.pending() == [] and [n.title for n in b.pending()] == ["B"]


def _hooks(
    tmp_path: Path, seen: list[Event], redactor: Redactor | None = None, **commands: str
) -> Tellers:
    config = HooksConfig(timeout=0.5, **commands)
    hooks = Hooks(
        config, tmp_path, Reporter(seen.append), redactor or Redactor(), threading.Event()
    )
    tellers = Tellers(_night(tmp_path), [hooks])
    tellers(_start(tmp_path))
    return tellers


def test_a_failing_hook_is_reported_not_raised(tmp_path: Path) -> None:
    """A hook that exits 3, and one past its timeout, are HookRan(ok=False); the night goes on."""
    seen: list[Event] = []
    tellers = _hooks(
        tmp_path,
        seen,
        on_red="sh -c 'exit 3'",
        on_issue=f"{sys.executable} -c 'import time; time.sleep(30)'",
    )
    tellers(_iteration(1, "v1", green=False)[-1])
    tellers(IssueDone(action="created", number=1, title="t", fingerprint="f", dry_run=False))
    ran = [e for e in seen if isinstance(e, HookRan)]
    assert [(e.hook, e.ok) for e in ran] == [("on_red", False), ("on_issue", False)]
    assert "exit 3" in ran[0].detail and "timeout" in ran[1].detail


def test_a_hook_gets_json_on_stdin_and_fields_in_its_environment(tmp_path: Path) -> None:
    """stdin is the event's journal JSON; DEPLOYLOOP_NUMBER and _TITLE are its fields."""
    seen: list[Event] = []
    out = tmp_path / "got.json"
    script = (
        "import json,os,sys; d=json.load(sys.stdin); d['title_env']=os.environ['DEPLOYLOOP_TITLE']"
    )
    script += f"; open({str(out)!r}, 'w').write(json.dumps(d))"
    tellers = _hooks(tmp_path, seen, on_issue=f'{sys.executable} -c "{script}"')
    tellers(IssueDone(action="created", number=7, title="api: 500", fingerprint="f", dry_run=False))
    got = json.loads(out.read_text())
    assert got["event"] == "issue" and got["number"] == 7 and got["title_env"] == "api: 500"
    assert [e.ok for e in seen if isinstance(e, HookRan)] == [True]


def test_hook_output_is_scrubbed_as_written(tmp_path: Path) -> None:
    """A hook echoing a secret from its environment or argument leaves only the mask."""
    seen: list[Event] = []
    token, password = "StgTok-Env-99812", "HookPw-77231"
    redactor = Redactor([token, password])
    echo = (
        f"{sys.executable} -c 'import os, sys; print(os.environ[\"STAGING_TOKEN\"], sys.argv[1])'"
    )
    tellers = _hooks(tmp_path, seen, redactor, on_red=f"{echo} {password}")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STAGING_TOKEN", token)
        tellers(_iteration(1, "v1", green=False)[-1])
    log = (tmp_path / "logs" / "s-1" / "hooks.log").read_text()
    assert [e.ok for e in seen if isinstance(e, HookRan)] == [True]
    assert "[REDACTED]" in log and token not in log and password not in log


KILLED_HOOK = """
import sys, threading
from pathlib import Path
from deployloop.config_schema import HooksConfig, IssuesConfig
from deployloop.events import IterationEnd, Reporter, SessionStart
from deployloop.redact import Redactor
from deployloop.session import stop_left_behind
from deployloop.state import SessionRow
from deployloop.tell.hooks import HOOK_PID, Hooks
from deployloop.tell.night import Night
root = Path(sys.argv[1])
hooks = Hooks(HooksConfig(on_red="sleep 377"), root, Reporter(), Redactor(), threading.Event())
night = Night(IssuesConfig(), root / "logs")
night.fold(SessionStart(session="s-1", config="c.toml", resumed=False, deadline=None,
                        max_iterations=5, logs_dir=str(root / "logs" / "s-1")))
hooks.on(IterationEnd(iteration=1, green=False, version="v1", duration_s=1.0, failing=()), night)
"""


def test_a_hook_left_by_a_killed_run_is_stopped_at_the_next_start(tmp_path: Path) -> None:
    """kill -9 of deployloop mid-hook leaves hooks.pid; stop_left_behind then ends the group."""
    runner = subprocess.Popen([sys.executable, "-c", KILLED_HOOK, str(tmp_path)])
    pid_file = tmp_path / "logs" / "s-1" / HOOK_PID
    try:
        wait_for(pid_file.exists, timeout=20)
        leader = int(pid_file.read_text().split()[0])
    finally:
        runner.kill()
        runner.wait(10)
    try:
        assert _alive(leader)
        row = SessionRow("s-1", "k", "t", str(tmp_path / "logs"), 0, None, 5, "running", None, None)
        stop_left_behind(row)
        wait_for(lambda: not _alive(leader), timeout=10)
        assert not pid_file.exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader, signal.SIGKILL)  # no test leaves a process running


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie of an exited child counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _statuses(github: FakeGitHub, seen: list[Event]) -> CommitStatuses:
    text = config_text(phase_block("p", suite_block("s", "true")))
    text += (
        f'\n[issues]\ntoken = "{github.token}"\napi_url = "{github.url}"\nwrite_interval = "0s"\n'
    )
    from deployloop.config import parse

    config = parse(text, "c.toml", {})
    post = GitHubStatuses(github.repo, "deployloop/t", config, str, threading.Event())
    return CommitStatuses(post, Reporter(seen.append), "https://ci.example.com/logs")


def test_statuses_are_not_repeated_and_descriptions_fit(tmp_path: Path) -> None:
    """The same state twice is sent once; a long failure description is cut to 140 characters;
    the target is the published report."""
    seen: list[Event] = []
    with FakeGitHub() as github:
        tellers = Tellers(_night(tmp_path), [_statuses(github, seen)])
        tellers(_start(tmp_path))
        many = tuple(Verdict(f"gate{i}", False, "0.0% (0/9)", "≥ 100%") for i in range(10))
        for _ in range(2):
            tellers(IterationStart(iteration=1, version="abcdef1"))
            tellers(PhaseEnd(phase="api", passed=False, verdicts=(), gates=many))
            tellers(
                IterationEnd(iteration=1, green=False, version="abcdef1", duration_s=1, failing=())
            )
        tellers(IterationStart(iteration=2, version="rev-2"))  # not a SHA: no status
        posted = github.statuses["abcdef1"]
        assert len(github.requests("POST", "/statuses/")) == 2
    assert [s["state"] for s in posted] == ["pending", "failure"]
    assert len(posted[1]["description"]) == 140 and posted[1]["description"].endswith("…")
    assert posted[1]["target_url"] == "https://ci.example.com/logs/s-1/report.html"


def test_a_status_github_refuses_is_reported(tmp_path: Path) -> None:
    """A 422 from GitHub is a CommitStatusSet(ok=False) with the reason, not an exception."""
    seen: list[Event] = []
    with FakeGitHub() as github:
        github.inject(Fault("POST", "/statuses/", status=422, message="No commit found"))
        tellers = Tellers(_night(tmp_path), [_statuses(github, seen)])
        tellers(_start(tmp_path))
        tellers(IterationStart(iteration=1, version="abcdef1"))
    (event,) = [e for e in seen if isinstance(e, CommitStatusSet)]
    assert not event.ok and event.error and "No commit found" in event.error


@pytest.mark.parametrize("module", ["apprise", "prometheus_client", "github"])
def test_nothing_heavy_loads_without_tellers(module: str) -> None:
    """The CLI and the daemon import neither apprise, prometheus-client nor PyGithub."""
    code = f"import sys, deployloop.cli, deployloop.daemon; sys.exit({module!r} in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
