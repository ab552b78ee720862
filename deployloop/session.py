"""A session's life outside the loop: open or resume it, its deadline, where a resumed run picks
up, and the one reduction of how it ended to an exit code.

A session belongs to one config (its file and ``[session] name``) and stays ``running`` in the
state until it ends; a run killed or interrupted meanwhile is resumed by the next ``run``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, assert_never

from deployloop import process_groups
from deployloop.config import Config
from deployloop.durations import next_occurrence, parse_clock, parse_duration
from deployloop.errors import UsageError
from deployloop.gates import PhaseResult
from deployloop.iteration import IterationResult, Session
from deployloop.loop import LoopResult, Status
from deployloop.models import SuiteRun, Verdict
from deployloop.redact import Redactor
from deployloop.scrub import scrub_file
from deployloop.state import SessionRow, Store

# What a suite leaves in its iteration directory (runner). They are scrubbed as written, but a
# run killed under an older deployloop, or before the config named a secret, left them raw.
LEFTOVERS = ("*/*.log", "*/*.progress.jsonl", "*/*.xml")
INTERRUPTED = "interrupted"  # stopped by a signal: ended for now, resumed by the next run


def status_words(status: str) -> str:
    """How a stored session status reads to people (console, session.md, status, report)."""
    return "interrupted (resumable)" if status == INTERRUPTED else status


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``deployloop run``'s options (SPEC, Commands); durations and times still as typed."""

    budget: str | None = None
    until: str | None = None
    max_iterations: int | None = None
    phases: tuple[str, ...] = ()
    once: bool = False
    dry_run: bool = False
    new: bool = False


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """What a session's end is stored and reported as."""

    status: str  # the state's word: green, failing, unreachable, or interrupted (resumable)
    exit_code: int


def final_reduce(result: LoopResult, signum: int | None) -> SessionEnd:
    """The one place a session's end becomes its exit code (SPEC, ``run``'s exit codes).

    0 green, 1 gates still failing when the budget ran out, 3 target unreachable, and 128 + the
    signal that stopped it (130 SIGINT, 143 SIGTERM; SIGINT when none is known): "interrupted",
    which ``Store.unfinished`` still offers for resuming.
    """
    match result.status:
        case Status.GREEN:
            return SessionEnd("green", 0)
        case Status.FAILING:
            return SessionEnd("failing", 1)
        case Status.UNREACHABLE:
            return SessionEnd("unreachable", 3)
        case Status.INTERRUPTED:
            return SessionEnd(INTERRUPTED, 128 + (signum or signal.SIGINT))
        case _:
            assert_never(result.status)


def config_key(config: Config) -> str:
    """Which sessions belong to this config: its file and its session name."""
    return f"{Path(config.path).resolve()}#{config.session.name}"


def open_session(
    store: Store, config: Config, options: RunOptions, redactor: Redactor | None = None
) -> tuple[SessionRow, bool]:
    """Resume this config's unfinished session unless ``--new``; else start one.

    Either way the suites a killed run of the unfinished session left running are stopped
    first, then (with ``redactor``) the files it left are scrubbed (``scrub_left_behind``).
    Returns the session's row and whether it was resumed; UsageError for a bad budget.
    """
    key = config_key(config)
    existing = store.unfinished(key)
    if existing is not None:
        stop_left_behind(existing)
        if redactor is not None:
            scrub_left_behind(existing, redactor)
        if not options.new:
            store.resume_session(existing.id)
            return _with_options(store, config, options, existing), True
        store.end_session(existing.id, "abandoned", 1)
    now = time.time()
    row = SessionRow(
        id=_new_id(store, config.session.name, now),
        config_key=key,
        name=config.session.name,
        logs_dir=str(Path(config.session.logs_dir).resolve()),
        started=now,
        deadline=deadline(config, options, now),
        max_iterations=1
        if options.once
        else (options.max_iterations or config.session.max_iterations),
        status="running",
        exit_code=None,
        ended=None,
    )
    store.create_session(row)
    return row, False


def end_stale(store: Store, config: Config, now: float) -> SessionRow | None:
    """End this config's unfinished session if its deadline passed while no run held it.

    The night after a crash (kill -9, reboot, ``systemctl stop``) must run, not resume a
    session with no time left (case 26): it is ended as ``abandoned`` (exit 1), the suites its
    killed run left are stopped, and the next ``open_session`` starts a new one. Returns the
    ended session's row, or None when there was none to end.
    """
    existing = store.unfinished(config_key(config))
    if existing is None or existing.deadline is None or existing.deadline > now:
        return None
    stop_left_behind(existing)
    store.end_session(existing.id, "abandoned", 1)
    return existing


def _with_options(store: Store, config: Config, options: RunOptions, row: SessionRow) -> SessionRow:
    """A resumed session under this start's ``--budget``/``--until``/``--max-iterations``:
    each one given replaces the session's (a deadline counted from now, a cap on its
    iterations in all); the config's own values never override what the session had."""
    new_deadline = row.deadline
    if options.budget or options.until:
        new_deadline = deadline(config, options, time.time())
    new_max = options.max_iterations or row.max_iterations
    if (new_deadline, new_max) == (row.deadline, row.max_iterations):
        return row
    store.set_limits(row.id, new_deadline, new_max)
    return dataclasses.replace(row, deadline=new_deadline, max_iterations=new_max)


def stop_left_behind(row: SessionRow) -> None:
    """Stop every group a killed run of this session left (its pid files survived it): suites
    and the redeploy trigger in the iteration directories, hooks in the session's own."""
    for pid_file in [*row.directory.glob("*.pid"), *row.directory.glob("*/*.pid")]:
        process_groups.stop_orphan(pid_file)


def scrub_left_behind(row: SessionRow, redactor: Redactor) -> int:
    """Rewrite scrubbed every suite log, progress file and JUnit copy in the session's
    iteration directories (``scrub_file``; a clean file is left alone). Returns the masks
    made. Raises ``OSError`` when a file cannot be rewritten: a start must not go on past a
    raw secret it could not remove."""
    return sum(
        scrub_file(path, redactor, xml=path.suffix == ".xml")
        for pattern in LEFTOVERS
        for path in row.directory.glob(pattern)
    )


def _new_id(store: Store, name: str, now: float) -> str:
    """``<name>-<start time>``, suffixed when two sessions start within a second."""
    base = f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"
    candidate, n = base, 1
    while store.session(candidate) is not None:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def deadline(config: Config, options: RunOptions, now: float) -> float | None:
    """The sooner of the budget and the clock deadline (wall time), or None."""
    try:
        budget = parse_duration(options.budget) if options.budget else config.session.budget
        until = parse_clock(options.until) if options.until else config.session.until
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    candidates = []
    if budget is not None:
        candidates.append(now + budget)
    if until is not None:
        candidates.append(next_occurrence(until, dt.datetime.fromtimestamp(now)).timestamp())
    return min(candidates) if candidates else None


def resume_point(store: Store, row: SessionRow) -> Session:
    """Where a resumed session picks up: the unfinished iteration, keeping its finished suites."""
    iterations = store.iterations(row.id)
    session = Session(row.id, row.directory, row.deadline, row.max_iterations)
    finished = [it for it in iterations if it["ended"] is not None]
    if finished:
        last = finished[-1]
        runs = tuple(run for _, run in store.runs(row.id, last["n"]))
        session.previous = _replayed(last, runs)
        session.first_iteration = last["n"] + 1
    open_ones = [it for it in iterations if it["ended"] is None]
    # Stopped between iterations (in the redeploy wait): the tested version is unchanged, so
    # the resumed run waits again before testing (none finished: there is nothing to wait on).
    session.wait_first = bool(finished) and not open_ones
    if open_ones:
        session.first_iteration = open_ones[-1]["n"]
        session.resuming = True
        session.done_runs = {
            run.suite: run for _, run in store.runs(row.id, session.first_iteration)
        }
    return session


def _replayed(row: dict[str, Any], runs: tuple[SuiteRun, ...]) -> IterationResult:
    """A finished iteration rebuilt from state: enough for failed-first and version checks."""
    by_phase: dict[str, list[SuiteRun]] = {}
    for run in runs:
        by_phase.setdefault(run.phase, []).append(run)
    verdicts = () if row["green"] else (Verdict("resumed", False, "failed before restart", "pass"),)
    phases = tuple(PhaseResult(name, tuple(r), (), verdicts) for name, r in by_phase.items())
    return IterationResult(int(row["n"]), row["version"], phases)
