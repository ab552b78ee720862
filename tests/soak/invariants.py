"""What must hold after a soak run, read from the evidence only: GitHub's recorded requests and
issues, the state database (read-only), the events journals, the logs, the process table.

Each check returns a ``Check`` with numbers, so a PASS says how much was checked and a FAIL
says what broke. ``info`` checks report without failing the run.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployloop.events import read_journal
from deployloop.issues.observe import broken_fingerprint
from deployloop.issues.tracker import marker_of
from deployloop.testing.github_server import FakeGitHub, Recorded, iter_bodies
from tests.soak.project import Project

if TYPE_CHECKING:
    from tests.soak.runner import ExitRecord

Event = dict[str, Any]
RAW_SUFFIXES = (".log", ".xml")  # the suites' own output, kept as it was written
BROKEN_THRESHOLD = 0.5  # [issues] broken_threshold, the default the soak config keeps


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str
    info: bool = False  # reported, never fails the run

    def line(self) -> str:
        mark = "INFO" if self.info else ("PASS" if self.passed else "FAIL")
        return f"{mark} {self.name}: {self.detail}"


@dataclass
class Evidence:
    project: Project
    sessions: list[dict[str, Any]]  # state rows, oldest first
    iterations: dict[str, list[dict[str, Any]]]  # session → state rows
    clusters: dict[str, dict[str, dict[str, Any]]]  # session → fingerprint → record
    events: dict[str, list[Event]]  # session → journal
    issues: list[dict[str, Any]]  # every issue GitHub ever had
    calls: list[Recorded]
    secrets: tuple[str, ...]
    injections: list[dict[str, Any]]  # one per run of the legacy suite
    exits: list[ExitRecord]
    wanted: int
    orphans: list[str]
    closed_by_hand: dict[int, tuple[str, int]] = field(default_factory=dict)  # number → why, when

    @property
    def real_issues(self) -> list[dict[str, Any]]:
        """Issues, not pull requests (the REST list mixes them)."""
        return [issue for issue in self.issues if not issue.get("pull")]


def gather(
    project: Project,
    github: FakeGitHub,
    secrets: tuple[str, ...],
    exits: list[ExitRecord],
    wanted: int,
    orphans: list[str],
) -> Evidence:
    sessions, iterations, clusters = read_state(project.state_db)
    events = {  # every line read through its typed kind, then kept as the journal's record
        s["id"]: [e.to_json() for e in read_journal(Path(s["logs_dir"]) / s["id"] / "events.jsonl")]
        for s in sessions
    }
    with github._lock:  # a snapshot; the daemon is gone, this is just tidy
        issues = [dict(issue) for issue in github.issues.values()]
        calls = list(github.calls)
        closed_by_hand = dict(github.closed_by_hand)
    injections = []
    if project.injections.exists():
        lines = project.injections.read_text(encoding="utf-8").splitlines()
        injections = [json.loads(line) for line in lines if line.strip()]
    return Evidence(
        project, sessions, iterations, clusters, events, issues, calls, secrets, injections,
        exits, wanted, orphans, closed_by_hand,
    )  # fmt: skip


def read_state(
    db: Path,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """Sessions, iterations and cluster records, through a read-only connection."""
    if not db.exists():
        return [], {}, {}
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        sessions = [dict(r) for r in connection.execute("SELECT * FROM sessions ORDER BY started")]
        iterations: dict[str, list[dict[str, Any]]] = {s["id"]: [] for s in sessions}
        for row in connection.execute("SELECT * FROM iterations ORDER BY session, n"):
            iterations.setdefault(row["session"], []).append(dict(row))
        clusters: dict[str, dict[str, Any]] = {s["id"]: {} for s in sessions}
        for row in connection.execute("SELECT session, fingerprint, data FROM clusters"):
            clusters.setdefault(row["session"], {})[row["fingerprint"]] = json.loads(row["data"])
    finally:
        connection.close()
    return sessions, iterations, clusters


def check_all(e: Evidence) -> list[Check]:
    return [
        iterations_done(e),
        one_open_issue_per_live_cluster(e),
        no_duplicate_issues(e),
        outbox_drained(e),
        no_secret_leaves(e),
        raw_artefacts(e),
        no_orphans(e),
        harness_errors_reported(e),
        verdicts_consistent(e),
        results_kept(e),
        exit_codes(e),
        issue_activity(e),
        duplicate_comments(e),
        a_persons_word_stands(e),
        pull_requests_untouched(e),
    ]


# the journal, cut into iteration attempts ------------------------------------------------------


@dataclass
class Attempt:
    """The events of one try at an iteration: from its iteration_start to its end or cut-off."""

    session: str
    iteration: int
    resumed: bool  # started by a run that resumed the session
    events: list[Event]
    end: Event | None = None  # its iteration_end, when it got that far

    def of(self, kind: str) -> list[Event]:
        return [event for event in self.events if event["event"] == kind]


def attempts(e: Evidence) -> Iterator[Attempt]:
    for session, events in e.events.items():
        current: Attempt | None = None
        resumed = False
        for event in events:
            kind = event["event"]
            if kind == "session_start":
                resumed = bool(event.get("resumed"))
                if current is not None:
                    yield current
                current = None
            elif kind == "iteration_start":
                if current is not None:
                    yield current
                current = Attempt(session, int(event["iteration"]), resumed, [])
                resumed = False
            elif current is not None:
                current.events.append(event)
                if kind in ("iteration_end", "mixed"):
                    current.end = event if kind == "iteration_end" else None
                    yield current
                    current = None
        if current is not None:
            yield current


def _finished(e: Evidence) -> list[Attempt]:
    return [a for a in attempts(e) if a.end is not None]


# the checks --------------------------------------------------------------------------------


def iterations_done(e: Evidence) -> Check:
    ended = sum(1 for rows in e.iterations.values() for r in rows if r["ended"] is not None)
    done = len(_finished(e))
    ok = done >= e.wanted
    detail = f"{done}/{e.wanted} iterations ended (state: {ended}) in {len(e.sessions)} sessions"
    return Check("iterations", ok, detail)


def live_fingerprints(attempt: Attempt) -> set[str]:
    """The clusters failing (not flaky) in a finished iteration, as triage files them."""
    live: set[str] = set()
    ran: Counter[str] = Counter()
    for end in attempt.of("suite_end"):
        if end.get("pass") == "full":
            counts = end.get("counts") or {}
            ran[end["phase"]] += sum(counts.get(k, 0) for k in ("passed", "failed", "error"))
    for phase in attempt.of("phase_end"):
        flaky = set(phase.get("flaky") or ())
        hard = [c for c in phase.get("clusters") or () if not set(c["tests"]) <= flaky]
        failing = {t for c in hard for t in c["tests"] if t not in flaky}
        judged = ran[phase["phase"]]
        if len(hard) > 1 and judged and len(failing) / judged > BROKEN_THRESHOLD:
            live.add(broken_fingerprint(phase["phase"]))  # one issue for a broken deploy
        else:
            live |= {c["fingerprint"] for c in hard}
    return live


def one_open_issue_per_live_cluster(e: Evidence) -> Check:
    finished = _finished(e)
    if not finished:
        return Check("one open issue per live cluster", False, "no iteration finished")
    live = live_fingerprints(finished[-1])
    open_by_marker: Counter[str] = Counter()
    for issue in e.real_issues:
        fp = marker_of(issue["body"])
        if issue["state"] == "open" and fp is not None:
            open_by_marker[fp] += 1
    muted = {
        marker_of(issue["body"])
        for issue in e.real_issues
        if issue["state"] == "closed" and issue.get("state_reason") == "not_planned"
    }
    wanted = {fp: 0 if fp in muted else 1 for fp in live}  # a person's "not planned" stands
    wrong = {
        fp: open_by_marker.get(fp, 0) for fp, n in wanted.items() if open_by_marker.get(fp, 0) != n
    }
    # An open issue nobody's state keeps open is one deployloop forgot to close or never owned.
    kept_open = {
        fp
        for records in e.clusters.values()
        for fp, record in records.items()
        if record.get("status") == "open"
    }
    stray = sorted(fp for fp in open_by_marker if fp not in live and fp not in kept_open)
    ok = not wrong and not stray
    detail = (
        f"{len(live)} live clusters in the last iteration, "
        f"{sum(open_by_marker.values())} open issues ({len(stray)} stray)"
    )
    if wrong:
        detail += f"; open issues per live cluster not 1: {wrong}"
    if stray:
        detail += f"; stray: {stray}"
    return Check("one open issue per live cluster", ok, detail)


def no_duplicate_issues(e: Evidence) -> Check:
    markers = Counter(marker_of(issue["body"]) for issue in e.real_issues)
    unmarked = markers.pop(None, 0)
    twice = {fp: n for fp, n in markers.items() if n > 1}
    detail = f"{len(e.issues)} issues ever filed, {len(markers)} distinct markers"
    if twice:
        numbers = {
            fp: [i["number"] for i in e.real_issues if marker_of(i["body"]) == fp] for fp in twice
        }
        detail += f"; filed more than once: {numbers}"
    if unmarked:
        detail += f"; {unmarked} without a marker"
    return Check("no duplicate issues", not twice and not unmarked, detail)


def outbox_drained(e: Evidence) -> Check:
    path = e.project.outbox
    if not path.exists():
        return Check("outbox drained", True, "outbox.json absent after the fault-free iteration")
    pending = json.loads(path.read_text(encoding="utf-8")).get("pending", [])
    return Check("outbox drained", not pending, f"{len(pending)} writes still pending")


def _shared_files(e: Evidence) -> Iterator[Path]:
    """What a person reads or forwards: logs, events, session logs, outbox, console output."""
    root = e.project.root
    for path in sorted(e.project.logs.rglob("*")):
        if not path.is_file() or path.name.startswith("state.db"):
            continue
        if path.suffix in RAW_SUFFIXES or path.name.endswith(".progress.jsonl"):
            continue
        yield path
    for name in ("daemon.out", "second.out"):
        if (root / name).exists():
            yield root / name


def _hits(text: str, secrets: tuple[str, ...]) -> int:
    return sum(text.count(secret) for secret in secrets)


def no_secret_leaves(e: Evidence) -> Check:
    """No secret in any request GitHub received or any file a person reads. The detail says
    how many distinct secrets were seen raw (the leak mutant shows each kind is looked for)."""
    leaks: list[str] = []
    seen: set[str] = set()
    sent = 0
    for call in e.calls:
        found = sum(_hits(part, e.secrets) for part in iter_bodies([call]))
        if found:
            leaks.append(f"{call.method} {call.path} ({found})")
            seen.update(s for part in iter_bodies([call]) for s in e.secrets if s in part)
        sent += 1
    files = 0
    for path in _shared_files(e):
        files += 1
        text = path.read_text(encoding="utf-8", errors="replace")
        found = _hits(text, e.secrets)
        if found:
            leaks.append(f"{path.relative_to(e.project.root)} ({found})")
            seen.update(s for s in e.secrets if s in text)
    detail = f"{sent} requests and {files} log files scanned for {len(e.secrets)} secrets"
    if leaks:
        detail += f"; {len(seen)} distinct seen raw, in: {', '.join(leaks[:8])}"
    return Check("no secret leaves", not leaks, detail)


def raw_artefacts(e: Evidence) -> Check:
    """The suites' raw output and the state database hold what the tests printed: reported."""
    with_secret = []
    for path in sorted(e.project.logs.rglob("*")):
        raw = path.suffix in RAW_SUFFIXES or path.name.startswith("state.db")
        if (
            path.is_file()
            and raw
            and _hits(path.read_bytes().decode("utf-8", "replace"), e.secrets)
        ):
            with_secret.append(path.name)
    kinds = Counter(Path(name).suffix or name for name in with_secret)
    detail = (
        f"{len(with_secret)} raw files (suite .log/.xml, state.db) hold a secret: {dict(kinds)}"
    )
    return Check("raw artefacts", True, detail, info=True)


def no_orphans(e: Evidence) -> Check:
    detail = f"{len(e.orphans)} processes left naming the soak directory"
    if e.orphans:
        detail += ": " + "; ".join(e.orphans[:3])
    return Check("no orphan process", not e.orphans, detail)


def _legacy_runs(e: Evidence) -> Iterator[tuple[dict[str, Any], Event | None]]:
    """Each run of the legacy suite with the suite_end the daemon wrote for it (None when the
    daemon died first: that result was never reported, and the suite ran again)."""
    for record in e.injections:
        session = Path(record["progress"]).parent.parent.name
        events = e.events.get(session, [])
        start = None
        for index, event in enumerate(events):
            if event["ts"] > record["t0"]:
                break
            if event["event"] == "suite_start" and event["suite"] == "legacy":
                start = index
        matched = None
        if start is not None:
            for event in events[start + 1 :]:
                if event["event"] == "session_start":
                    break
                if event["event"] == "suite_end" and event["suite"] == "legacy":
                    matched = event
                    break
        yield record, matched


def harness_errors_reported(e: Evidence) -> Check:
    truncated = reported = unreported = false_alarms = lost = 0
    for record, end in _legacy_runs(e):
        if end is None:
            lost += record["truncated"]
            continue
        error = end.get("harness_error") or ""
        if record["truncated"]:
            truncated += 1
            reported += bool(error)
            unreported += not error
        elif error and not error.startswith("interrupted"):
            false_alarms += 1
    passed_anyway = 0
    for attempt in attempts(e):
        broken = {end["phase"] for end in attempt.of("suite_end") if end.get("harness_error")}
        passed_anyway += sum(
            1 for p in attempt.of("phase_end") if p["passed"] and p["phase"] in broken
        )
    ok = not unreported and not false_alarms and not passed_anyway
    detail = (
        f"{truncated} truncated JUnit files reported: {reported} as harness errors"
        f" ({lost} more cut off by a kill); {false_alarms} false alarms;"
        f" {passed_anyway} phases passed despite a harness error"
    )
    return Check("harness errors reported", ok, detail)


def verdicts_consistent(e: Evidence) -> Check:
    checked = bad = 0
    problems: list[str] = []
    for attempt in _finished(e):
        assert attempt.end is not None
        phases = attempt.of("phase_end")
        green = bool(phases) and all(p["passed"] for p in phases)
        failing = [p["phase"] for p in phases if not p["passed"]]
        checked += 1
        if attempt.end["green"] != green or list(attempt.end.get("failing") or []) != failing:
            bad += 1
            problems.append(f"{attempt.session}#{attempt.iteration}")
    disagree = 0
    for session, rows in e.iterations.items():
        ends = {a.iteration: a.end for a in _finished(e) if a.session == session}
        for row in rows:
            end = ends.get(row["n"])
            if row["ended"] is not None and end is not None and bool(row["green"]) != end["green"]:
                disagree += 1
                problems.append(f"state {session}#{row['n']}")
    detail = (
        f"{checked} iterations: green iff every phase passed ({bad} wrong); "
        f"state agrees with the journal ({disagree} disagree)"
    )
    if problems:
        detail += f"; {', '.join(problems[:5])}"
    return Check("verdicts consistent", not bad and not disagree, detail)


def results_kept(e: Evidence) -> Check:
    """A resumed iteration does not rerun a suite whose result was already recorded."""
    resumed = rerun = 0
    done: dict[tuple[str, int], set[str]] = {}
    for attempt in attempts(e):
        key = (attempt.session, attempt.iteration)
        finished = {
            end["suite"]
            for end in attempt.of("suite_end")
            if end.get("pass") == "full"
            and not str(end.get("harness_error") or "").startswith("interrupted")
        }
        if attempt.resumed and key in done:
            resumed += 1
            again = {s["suite"] for s in attempt.of("suite_start") if s.get("pass") == "full"}
            rerun += len(again & done[key])
        if attempt.of("mixed"):
            done.pop(key, None)  # restarted on a new version: everything runs again
        else:
            done.setdefault(key, set()).update(finished)
    detail = f"{resumed} resumed iterations, {rerun} finished suites run again"
    return Check("results kept across restarts", not rerun, detail)


def exit_codes(e: Evidence) -> Check:
    by_kind = Counter((x.role, x.expected) for x in e.exits)
    bad = [x for x in e.exits if not x.ok]
    slowest_term = max((x.took_s for x in e.exits if x.expected == "term"), default=0.0)
    detail = (
        f"{by_kind[('daemon', 'kill')]} kill -9 (-9), {by_kind[('daemon', 'term')]} SIGTERM "
        f"(143, slowest {slowest_term:.1f} s), {by_kind[('second', 'lock')]} second starts (75), "
        f"{by_kind[('daemon', 'end')]} own ends (0/1), "
        f"{sum(1 for x in e.exits if x.role == 'fs')} broken-machine starts; {len(bad)} unexpected"
    )
    if bad:
        detail += ": " + "; ".join(
            f"{x.role} {x.expected} → {x.rc} {x.note[:200]}" for x in bad[:4]
        )
    ok = not bad and slowest_term <= 15.0
    return Check("exit codes", ok, detail)


def issue_activity(e: Evidence) -> Check:
    """What the tracker was asked to do: shows which paths the run exercised."""
    actions = Counter(
        event["action"]
        for events in e.events.values()
        for event in events
        if event["event"] == "issue"
    )
    queued = sum(
        1 for events in e.events.values() for event in events if event["event"] == "outbox"
    )
    statuses = Counter(call.status for call in e.calls)
    faults = sum(n for status, n in statuses.items() if status >= 500 or status in (403, 429))
    detail = (
        ", ".join(f"{k} {v}" for k, v in sorted(actions.items()))
        + f"; {queued} iterations left writes in the outbox; {len(e.calls)} requests,"
        + f" {faults} answered with a fault"
    )
    return Check("issue activity", True, detail, info=True)


def duplicate_comments(e: Evidence) -> Check:
    """The same comment posted twice on one issue: noise for whoever watches it (reported)."""
    repeated: dict[int, int] = {}
    total = 0
    for issue in e.issues:
        bodies = Counter(comment["body"] for comment in issue.get("comments", ()))
        total += sum(bodies.values())
        extra = sum(n - 1 for n in bodies.values() if n > 1)
        if extra:
            repeated[issue["number"]] = extra
    detail = f"{total} comments, {sum(repeated.values())} repeats of an earlier identical one"
    if repeated:
        detail += f" (issue: repeats {repeated})"
    return Check("duplicate comments", True, detail, info=True)


def a_persons_word_stands(e: Evidence) -> Check:
    """An issue closed by hand as not planned stays closed and gets no further comment."""
    by_number = {issue["number"]: issue for issue in e.issues}
    broken = []
    planned = {n: seen for n, (why, seen) in e.closed_by_hand.items() if why == "not_planned"}
    for number, comments_then in planned.items():
        issue = by_number[number]
        if issue["state"] != "closed" or len(issue["comments"]) != comments_then:
            broken.append(number)
    detail = (
        f"{len(e.closed_by_hand)} issues closed by hand, {len(planned)} as not planned: "
        f"{len(broken)} reopened or commented on afterwards"
    )
    if broken:
        detail += f" ({broken})"
    return Check("a person's word stands", not broken, detail)


def pull_requests_untouched(e: Evidence) -> Check:
    """Pull requests carrying a marker are never adopted, commented on or closed."""
    pulls = {issue["number"] for issue in e.issues if issue.get("pull")}
    touched = sorted(
        {
            int(match.group(1))
            for call in e.calls
            if call.method != "GET"
            and (match := re.search(r"/issues/(\d+)", call.path))
            and int(match.group(1)) in pulls
        }
    )
    detail = f"{len(pulls)} pull requests with a live marker; {len(touched)} written to"
    return Check(
        "pull requests untouched", not touched, detail + (f" {touched}" if touched else "")
    )
