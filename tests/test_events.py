"""Typed events: every kind round-trips through events.jsonl, and the sinks that must speak of
every kind (session log, live status, the report's story) do."""

from __future__ import annotations

import json
from dataclasses import replace
from io import StringIO
from pathlib import Path
from typing import TypeVar

import pytest

from deployloop.console import Console
from deployloop.events import (
    KINDS,
    CommitStatusSet,
    Deferred,
    Deploying,
    DryRun,
    Event,
    EventShapeError,
    FailedFirst,
    FailedFirstSuite,
    FailureCluster,
    Health,
    HookRan,
    IssueDone,
    IterationEnd,
    IterationStart,
    Journal,
    JUnitRepaired,
    MetricsFailed,
    Mixed,
    Muted,
    NotificationSent,
    NoTime,
    OutboxQueued,
    PhaseEnd,
    PhaseStart,
    RedeployTimeout,
    ReportWritten,
    RolloutProgress,
    SessionEnd,
    SessionStart,
    Settled,
    SkippedPhases,
    SuiteEnd,
    SuiteStart,
    TrackerWarning,
    Trigger,
    VersionSeen,
    Waiting,
    event_from_json,
    read_journal,
)
from deployloop.models import Verdict
from deployloop.redact import Redactor
from deployloop.sessionlog import SessionLog, describe
from deployloop.state import SessionRow, Store
from deployloop.statesinks import LiveStatus, StoryRecorder
from deployloop.view import EventView

TS = 1_750_000_000.125  # a millisecond-exact wall time: the journal keeps milliseconds
GATE = Verdict("pass_rate", False, "50.0% (1/2)", "≥ 100%", "one cause")
CLUSTER = FailureCluster("v1-abc", 2, "500 from /api", ("t::a", "t::b"))
SAMPLES: dict[str, Event] = {
    e.kind: e
    for e in (
        SessionStart(session="s-1", config="c.toml", resumed=True, deadline=TS + 60,
                     max_iterations=5, logs_dir="/logs/s-1",
                     notes=("state.db moved aside",), ts=TS),
        IterationStart(iteration=2, version=None, ts=TS),
        PhaseStart(phase="api", ts=TS),
        SuiteStart(phase="api", suite="smoke", tests=None, progress="/p.jsonl", previous_s=3.5,
                   pass_name="failed-first", ts=TS),
        SuiteEnd(phase="api", suite="smoke", counts={"passed": 1, "failed": 1}, wall_s=2.0,
                 harness_error="deadline reached", exit_code=None, pass_name="rerun", ts=TS),
        JUnitRepaired(phase="api", suite="smoke", notes=("out/a.xml: 1 trailing byte(s) after "
                      "the root element dropped",), ts=TS),
        PhaseEnd(phase="api", passed=False, verdicts=(GATE.describe(),), gates=(GATE,),
                 clusters=(CLUSTER,), flaky=("t::c",), ts=TS),
        SkippedPhases(phases=("journeys", "agents"), reason="api failed (fail_fast)", ts=TS),
        NoTime(phase="journeys", needs_s=1500.0, left_s=720.0, ts=TS),
        FailedFirst(passed=1, total=2, version="v2", ts=TS),
        FailedFirstSuite(phase="api", suite="smoke", passed=1, total=2, version="v2", early=False,
                         corrects=2, harness_error="runner killed by SIGKILL", ts=TS),
        IterationEnd(iteration=2, green=False, version="v2", duration_s=61.5, failing=("api",),
                     ts=TS),
        SessionEnd(status="failing", exit_code=1, iterations=2, reason="budget spent", ts=TS),
        IssueDone(action="created", number=7, title="api: 500", fingerprint="v1-abc",
                  dry_run=False, ts=TS),
        Deferred(titles=("a", "b"), ts=TS),
        OutboxQueued(queued=3, error="HTTP 502", ts=TS),
        DryRun(detail="would create issue 'x'", ts=TS),
        TrackerWarning(detail="GitHub dropped the labels", ts=TS),
        Muted(fingerprint="v1-abc", number=7, ts=TS),
        ReportWritten(paths=("/logs/s-1/report.md",), error=None, ts=TS),
        Health(ok=False, detail="connection refused", ts=TS),
        Mixed(from_version="v1", to_version="v2", ts=TS),
        Trigger(command="deploy.sh", ok=True, detail="deploy.sh (exit 0, 1.0 s)", ts=TS),
        Waiting(tested="v1", reason="polling every 30 s", ts=TS),
        RedeployTimeout(tested="v1", timeout_s=7200.0, then="retest", ts=TS),
        Deploying(detail="version source not answering", ts=TS),
        VersionSeen(version="v2", after_s=42.0, ts=TS),
        Settled(version="v2", seconds=3.0, ts=TS),
        RolloutProgress(version="v2", old_version="v1", seen=2, needed=3, ts=TS),
        NotificationSent(notice="red", via="json://127.0.0.1:9/", ok=False,
                         title="deployloop s: RED on v2", error="HTTP 500", ts=TS),
        HookRan(hook="on_issue", ok=True, detail="exit 0, 0.1 s", ts=TS),
        CommitStatusSet(sha="c0ffee1", state="failure", description="failing: api pass_rate",
                        ok=True, ts=TS),
        MetricsFailed(path="/m/deployloop.prom", error="read-only file system", ts=TS),
    )
}  # fmt: skip
# What ``status`` shows: the kinds that move the live record (its last_event among them).
LIVE_KINDS = {
    "session_start", "iteration_start", "phase_start", "suite_start", "suite_end", "phase_end",
    "waiting", "version_seen", "iteration_end", "session_end", "issue",
}  # fmt: skip
K = TypeVar("K")


def sample(kind: type[K]) -> K:
    """The sample of one event kind, typed as that kind (so mypy checks ``replace``)."""
    return next(event for event in SAMPLES.values() if isinstance(event, kind))


def test_the_samples_cover_every_kind() -> None:
    """Each kind of event has a sample here, so the tests below pin every kind."""
    assert set(SAMPLES) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_round_trips_through_json(kind: str) -> None:
    """to_json → JSON text → from_json gives back an equal event, under ``{"ts", "event"}``."""
    event = SAMPLES[kind]
    record = json.loads(json.dumps(event.to_json()))
    assert record["event"] == kind and record["ts"] == TS
    assert event_from_json(record) == event
    assert type(event).from_json(record) == event


def test_journal_keys_stay_as_they_were(tmp_path: Path) -> None:
    """The journal spells ``pass_name`` as ``pass`` and writes gates and clusters as objects."""
    path = tmp_path / "events.jsonl"
    journal = Journal(path)
    journal(SAMPLES["suite_start"])
    journal(SAMPLES["phase_end"])
    suite, phase = (json.loads(line) for line in path.read_text().splitlines())
    assert list(suite) == ["ts", "event", "phase", "suite", "tests", "progress", "previous_s",
                           "pass"]  # fmt: skip
    assert suite["pass"] == "failed-first"
    assert phase["gates"] == [{"gate": "pass_rate", "passed": False, "measured": "50.0% (1/2)",
                               "threshold": "≥ 100%", "reason": "one cause"}]  # fmt: skip
    assert phase["clusters"] == [
        {"fingerprint": "v1-abc", "count": 2, "message": "500 from /api", "tests": ["t::a", "t::b"]}
    ]


def test_an_older_journal_still_reads(tmp_path: Path) -> None:
    """A phase_end written before gates were recorded whole reads, without gates."""
    path = tmp_path / "events.jsonl"
    old = {"ts": 1.5, "event": "phase_end", "phase": "api", "passed": True,
           "verdicts": ["✅ pass_rate: 100.0% (2/2) (threshold ≥ 100%)"], "clusters": [],
           "flaky": []}  # fmt: skip
    path.write_text(json.dumps(old) + "\n")
    (event,) = read_journal(path)
    assert isinstance(event, PhaseEnd) and event.gates == () and event.passed
    assert event.verdicts == ("✅ pass_rate: 100.0% (2/2) (threshold ≥ 100%)",)


def test_read_journal_skips_what_is_not_an_event(tmp_path: Path) -> None:
    """Rotated part first; torn, foreign, unknown and mistyped lines are left out, not fatal."""
    path = tmp_path / "events.jsonl"
    path.with_suffix(".jsonl.1").write_text(json.dumps(SAMPLES["phase_start"].to_json()) + "\n")
    bad_type = {**SAMPLES["iteration_start"].to_json(), "iteration": "two"}
    lines = [json.dumps(SAMPLES["mixed"].to_json()), "[1, 2]", '{"event": "nope", "ts": 1}',
             json.dumps(bad_type), '{"event": "torn']  # fmt: skip
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\n")
    assert read_journal(path) == [SAMPLES["phase_start"], SAMPLES["mixed"]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"iteration": "2"}, "iteration_start.iteration: expected int"),
        ({"iteration": True}, "iteration_start.iteration: expected int"),
        ({"version": 3}, "iteration_start.version: expected str"),
        ({"iteration": None}, "iteration_start.iteration: expected int"),
    ],
)
def test_from_json_names_the_mistyped_field(change: dict[str, object], message: str) -> None:
    """A value of the wrong type is an EventShapeError naming the kind and the field."""
    record = {**SAMPLES["iteration_start"].to_json(), **change}
    with pytest.raises(EventShapeError, match=message):
        IterationStart.from_json(record)


def test_from_json_checks_nested_values() -> None:
    """Inside a gate or a cluster a missing or mistyped field is named by its path."""
    record = SAMPLES["phase_end"].to_json()
    record["gates"] = [{"gate": "p95_s", "passed": "no", "measured": "", "threshold": ""}]
    with pytest.raises(EventShapeError, match=r"phase_end\.gates\[0\]\.passed"):
        PhaseEnd.from_json(record)
    record = SAMPLES["phase_end"].to_json()
    del record["clusters"][0]["tests"]
    with pytest.raises(EventShapeError, match=r"phase_end\.clusters\[0\]: missing 'tests'"):
        PhaseEnd.from_json(record)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_has_a_line_in_the_session_log(kind: str, tmp_path: Path) -> None:
    """session.md and the console say something about every kind, and the same words."""
    log = tmp_path / "session.md"
    SessionLog(log)(SAMPLES[kind])
    stream = StringIO()
    EventView(Console(stream))(SAMPLES[kind])
    line = describe(SAMPLES[kind])
    assert line.strip()
    assert line in stream.getvalue()
    if kind not in ("iteration_start", "phase_end"):  # headings, not lines
        assert line in log.read_text()


def test_session_log_phase_block_lists_gates_flaky_and_clusters(tmp_path: Path) -> None:
    """A phase_end becomes a block: verdict lines, flaky tests, each cluster with its tests."""
    log = tmp_path / "session.md"
    SessionLog(log)(SAMPLES["phase_end"])
    text = log.read_text()
    assert "Phase api: ❌ failed" in text and f"- {GATE.describe()}" in text
    assert "- flaky (passed on rerun): t::c" in text
    assert "- failing cluster `v1-abc` (2 tests): 500 from /api\n  - t::a\n  - t::b" in text


def test_session_log_indents_multi_line_messages(tmp_path: Path) -> None:
    """Item 15: pytest's "+ where" lines stay inside the cluster's item, in a code block."""
    message = "AssertionError: assert 500 == 200\n+ where 500 = resp.status"
    cluster = FailureCluster("v1-abc", 1, message, ("t::a",))
    event = replace(sample(PhaseEnd), clusters=(cluster,))
    log = tmp_path / "session.md"
    SessionLog(log)(event)
    text = log.read_text()
    assert "(1 test): AssertionError: assert 500 == 200\n\n  ```\n  + where 500" in text
    assert "\n+ where" not in text


def test_session_log_says_why_an_issue_closed(tmp_path: Path) -> None:
    """Item 15: a closed issue's line names the version it was verified fixed in."""
    closed = replace(sample(IssueDone), action="closed", number=1,
                     reason="verified fixed in rev-0002")  # fmt: skip
    assert describe(closed) == "issue closed #1: verified fixed in rev-0002: api: 500"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "state")
    store.create_session(
        SessionRow("s-1", "k", "s", str(tmp_path), TS, None, 5, "running", None, None)
    )
    return store


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_live_status_tracks_the_kinds_status_shows(kind: str, store: Store) -> None:
    """Exactly the kinds ``status`` shows move the live record; the others leave it alone."""
    LiveStatus(store, "s-1", str)(SAMPLES[kind])
    live = store.live("s-1")
    if kind in LIVE_KINDS:
        assert (live["last_event"], live["last_event_ts"]) == (kind, TS)
    else:
        assert live == {}


def test_live_status_follows_an_iteration(store: Store) -> None:
    """Iteration, phase, suite, gates and state follow the events, and end with the session."""
    live = LiveStatus(store, "s-1", str)
    for kind in ("iteration_start", "phase_start", "suite_start"):
        live(SAMPLES[kind])
    assert {k: store.live("s-1")[k] for k in ("iteration", "phase", "suite", "state")} == {
        "iteration": 2, "phase": "api", "suite": "smoke", "state": "running",
    }  # fmt: skip
    live(SAMPLES["phase_end"])
    assert store.live("s-1")["gates"] == {"api": {"passed": False, "verdicts": [GATE.describe()]}}
    live(SAMPLES["waiting"])
    assert store.live("s-1")["state"] == "waiting for redeploy"
    live(SAMPLES["session_end"])
    assert (store.live("s-1")["state"], store.live("s-1")["phase"]) == ("failing", None)


def test_story_recorder_files_events_under_their_iteration(store: Store) -> None:
    """The report's events land in the iteration they happened in; a wait in the one it follows."""
    record = StoryRecorder(store, "s-1", str)
    record(SAMPLES["session_start"])
    record(IterationStart(iteration=1, version="v1"))
    for kind in ("phase_end", "skipped_phases", "issue", "version_seen", "mixed", "waiting"):
        record(SAMPLES[kind])
    record(IterationStart(iteration=2, version="v2"))
    record(SAMPLES["failed_first"])
    record(SAMPLES["session_end"])
    assert store.story("s-1", PhaseEnd) == [(1, SAMPLES["phase_end"])]
    assert store.story("s-1", SkippedPhases) == [(1, SAMPLES["skipped_phases"])]
    assert store.story("s-1", IssueDone) == [(1, SAMPLES["issue"])]
    assert store.story("s-1", VersionSeen) == [(1, SAMPLES["version_seen"])]
    assert store.story("s-1", FailedFirst) == [(2, SAMPLES["failed_first"])]
    assert store.story("s-1", SessionEnd) == [(2, SAMPLES["session_end"])]
    assert store.story("s-1", Mixed) == [] and store.story("s-1", Waiting) == []


def test_a_restarted_iteration_tells_its_phases_afresh(store: Store) -> None:
    """An iteration started again (mixed version, resume) drops its phases, keeps its issues."""
    record = StoryRecorder(store, "s-1", str)
    record(IterationStart(iteration=1, version="v1"))
    record(SAMPLES["phase_end"])
    record(SAMPLES["failed_first"])
    record(SAMPLES["issue"])
    again = PhaseEnd(phase="api", passed=True, verdicts=(), ts=TS + 1)
    StoryRecorder(store, "s-1", str)(IterationStart(iteration=1, version="v2"))
    record(again)
    assert store.story("s-1", PhaseEnd) == [(1, again)]
    assert store.story("s-1", FailedFirst) == []
    assert store.story("s-1", IssueDone) == [(1, SAMPLES["issue"])]


def test_a_damaged_story_record_is_left_out(store: Store) -> None:
    """A story row that no longer reads as its kind is skipped: the report still builds."""
    store.add_story("s-1", 1, SAMPLES["issue"])
    store.db.execute("INSERT INTO story VALUES ('s-1', 1, 'issue', '{\"number\": \"x\"}')")
    store.db.execute("INSERT INTO story VALUES ('s-1', 1, 'issue', 'not json')")
    assert store.story("s-1", IssueDone) == [(1, SAMPLES["issue"])]


def test_state_sinks_store_no_raw_secret(store: Store, tmp_path: Path) -> None:
    """A secret in a version string (and in every kind's strings) reaches neither the live
    record nor the story in state.db: both sinks scrub with the session's redactor."""
    secret = "s3cr3t-deploy-value"
    redact = Redactor([secret]).redact
    live, story = LiveStatus(store, "s-1", redact), StoryRecorder(store, "s-1", redact)
    for event in (*SAMPLES.values(), IterationStart(iteration=1, version="rev-")):
        for sink in (live, story):
            sink(_tainted(event, secret))
    assert store.live("s-1")["version"] == redact(f"rev-{secret}") != f"rev-{secret}"
    store.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir() if p.is_file())
    assert secret.encode() not in raw


def _tainted(event: Event, secret: str) -> Event:
    """``event`` with the secret appended to each of its top-level string fields."""
    record = event.to_json()
    for key, value in record.items():
        if isinstance(value, str) and key != "event":
            record[key] = value + secret
    return event_from_json(record)
