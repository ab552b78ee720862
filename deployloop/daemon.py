"""A whole ``run``: lock, open or resume the session, wire the real services, run the loop.

The loop itself knows no subprocess, HTTP or clock; this module gives it the real ones.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from deployloop import process
from deployloop.config import Config
from deployloop.durations import next_occurrence, parse_clock, parse_duration
from deployloop.errors import UsageError
from deployloop.events import Journal, Reporter, Sink
from deployloop.filing import IssueDesk
from deployloop.gates import PhaseResult
from deployloop.lock import InstanceLock, lock_path
from deployloop.loop import IterationResult, Loop, LoopResult, Services, Session, Status
from deployloop.models import Event, SuiteRun, Verdict
from deployloop.plan import Plan
from deployloop.redact import Redactor
from deployloop.runner import run_suite
from deployloop.sessionlog import SessionLog
from deployloop.signals import StopSignal, capture_signals
from deployloop.state import SessionRow, Store, state_dir
from deployloop.wait import IntervalWaiter, RedeployWaiter


@dataclass(frozen=True, slots=True)
class RunOptions:
    budget: str | None = None
    until: str | None = None
    max_iterations: int | None = None
    phases: tuple[str, ...] = ()
    once: bool = False
    dry_run: bool = False
    new: bool = False


@dataclass(frozen=True, slots=True)
class RunOutcome:
    exit_code: int
    session: str
    reason: str
    directory: Path


class RealClock:
    """Wall and monotonic time; waits end early when the stop event is set."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, seconds: float) -> bool:
        return self.stop.wait(max(0.0, seconds))


def config_key(config: Config) -> str:
    """Which sessions belong to this config: its file and its session name."""
    return f"{Path(config.path).resolve()}#{config.session.name}"


def redactor_for(config: Config) -> Redactor:
    """Masks the environment's secrets, every value the config interpolated, and the config's
    own credentials (headers, tracker token) whole."""
    secrets = [*config.secrets, *config.target.headers.values(), config.issues.token]
    return Redactor.from_env(os.environ, extra=secrets)


def run(config: Config, plan: Plan, options: RunOptions, sinks: list[Sink]) -> RunOutcome:
    """Run the loop under the instance lock; signals end it cleanly with 130/143."""
    store = Store(state_dir(config.session.logs_dir))
    stop = StopSignal()
    try:
        with (
            InstanceLock(lock_path(store.directory, config_key(config)), config.path),
            capture_signals(stop),
        ):
            return _run_locked(config, plan, options, sinks, store, stop)
    finally:
        store.close()


def _run_locked(
    config: Config,
    plan: Plan,
    options: RunOptions,
    sinks: list[Sink],
    store: Store,
    stop: StopSignal,
) -> RunOutcome:
    row, resumed = open_session(store, config, options)
    redactor = redactor_for(config)
    reporter = Reporter(*sinks)
    reporter.add(Journal(row.directory / "events.jsonl", redactor.redact))
    reporter.add(SessionLog(row.directory / "session.md", redactor.redact))
    reporter.add(LiveStatus(store, row.id))
    reporter.emit(
        "session_start",
        session=row.id,
        config=config.path,
        resumed=resumed,
        deadline=row.deadline,
        max_iterations=row.max_iterations,
        logs_dir=str(row.directory),
    )
    if resumed:
        for pid_file in row.directory.glob("*/*.pid"):
            process.stop_orphan(pid_file)  # a suite the killed run left behind
    session = resume_point(store, row)
    services = real_services(config, reporter, stop.event, row, redactor)
    desk = IssueDesk(config, store, row.id, reporter, redactor, stop.event)
    services.file_issues = desk
    try:
        result = Loop(config, plan, session, store, services, reporter).run()
    finally:
        desk.close()
    exit_code = stop.exit_code if result.status is Status.INTERRUPTED else result.status.value
    status = "running" if result.status is Status.INTERRUPTED else _status_word(result)
    reporter.emit(
        "session_end",
        status=status,
        exit_code=exit_code,
        iterations=result.iterations,
        reason=result.reason,
    )
    if status != "running":  # an interrupted session stays open for the next run to resume
        store.end_session(row.id, status, exit_code)
    _write_reports(store, row.id, redactor, reporter)
    return RunOutcome(exit_code, row.id, result.reason, row.directory)


def _write_reports(store: Store, session_id: str, redactor: Redactor, reporter: Reporter) -> None:
    """The morning report next to session.md; a disk problem here must not change the verdict."""
    from deployloop import report

    try:
        paths = report.write_reports(store, session_id, redactor.redact)
    except OSError as exc:
        reporter.emit("report", paths=[], error=str(exc))
        return
    reporter.emit("report", paths=[str(p) for p in paths], error=None)


def _status_word(result: LoopResult) -> str:
    return {
        Status.GREEN: "green",
        Status.FAILING: "failing",
        Status.UNREACHABLE: "unreachable",
    }.get(result.status, "stopped")


def open_session(store: Store, config: Config, options: RunOptions) -> tuple[SessionRow, bool]:
    """Resume this config's unfinished session unless ``--new``; else start one."""
    key = config_key(config)
    existing = None if options.new else store.unfinished(key)
    if existing is not None:
        return existing, True
    if options.new and (old := store.unfinished(key)) is not None:
        store.end_session(old.id, "abandoned", 1)
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


class LiveStatus:
    """Keeps the state's ``live`` record current for ``status`` (cheap: major events only)."""

    TRACKED = frozenset(
        {"session_start", "iteration_start", "phase_start", "suite_start", "suite_end", "phase_end",
         "waiting", "version_seen", "iteration_end", "session_end", "issue"}
    )  # fmt: skip

    def __init__(self, store: Store, session_id: str) -> None:
        self.store = store
        self.session_id = session_id

    def __call__(self, event: Event) -> None:
        if event.kind not in self.TRACKED:
            return
        changes: dict[str, object] = {"last_event": event.kind, "last_event_ts": event.ts}
        d = event.data
        if event.kind == "iteration_start":
            changes.update(iteration=d["iteration"], version=d.get("version"), gates={})
        elif event.kind == "phase_start":
            changes.update(phase=d["phase"], suite=None, state="running")
        elif event.kind == "suite_start":
            changes.update(suite=d["suite"], state="running")
        elif event.kind == "phase_end":
            gates = dict(self.store.live(self.session_id).get("gates", {}))
            gates[d["phase"]] = {"passed": d["passed"], "verdicts": d["verdicts"]}
            changes.update(gates=gates, suite=None)
        elif event.kind == "waiting":
            changes.update(state="waiting for redeploy", phase=None, suite=None)
        elif event.kind == "session_end":
            changes.update(state=d["status"], phase=None, suite=None)
        self.store.update_live(self.session_id, changes)


def real_services(
    config: Config,
    reporter: Reporter,
    stop: threading.Event,
    row: SessionRow,
    redactor: Redactor,
) -> Services:
    clock = RealClock(stop)
    target = config.target
    deadline_at = row.deadline
    health = (lambda: _probes().health_probe(target)) if target.health else None
    read = version_reader(config)
    waiter: IntervalWaiter | RedeployWaiter
    if config.redeploy is None:
        waiter = IntervalWaiter(config.session.interval, read, clock, reporter, deadline_at)
    else:
        waiter = RedeployWaiter(config.redeploy, read, health, clock, reporter, deadline_at)
    services = Services(
        run_suite=lambda job: run_suite(job, stop, redact=redactor.redact),
        run_probe=lambda probe: _probes().run_probe(target, probe),
        read_version=read,
        wait=waiter.wait,
        clock=clock,
        stop=stop,
        check_health=health,
    )
    if config.redeploy is not None and config.redeploy.trigger:
        services.trigger = trigger_runner(config, reporter, stop, row)
    return services


def _probes() -> ModuleType:
    """httpx, websockets and asyncio load only when a probe is configured (start-up is short)."""
    from deployloop import probes

    return probes


def version_reader(config: Config) -> Callable[[], str | None]:
    """The deployed version, or None while staging cannot say (mid-deploy, down)."""
    source = config.target.version
    if source is None:
        return lambda: None

    def read() -> str | None:
        from deployloop.version import VersionUnavailable, read_version

        try:
            return read_version(source, config.target, config.target.request_timeout)
        except VersionUnavailable:
            return None

    return read


def trigger_runner(
    config: Config, reporter: Reporter, stop: threading.Event, row: SessionRow
) -> Callable[[int], None]:
    """Runs ``[redeploy] trigger``; its failure is reported as a harness error, not a crash."""
    assert config.redeploy is not None and config.redeploy.trigger
    command, timeout = config.redeploy.trigger, config.redeploy.trigger_timeout
    shown = config.redeploy.trigger_template or command  # ${NAME} form: people see no secret
    cwd = config.redeploy.cwd

    def trigger(n: int) -> None:
        log = row.directory / str(n) / "redeploy.log"
        done = process.run(
            process.split_command(command),
            log_path=log,
            timeout=timeout,
            stop=stop,
            cwd=cwd,
            env=dict(os.environ),
        )
        ok = done.returncode == 0
        detail = f"{shown} (exit {done.returncode}, {done.wall_s:.1f} s)"
        if not ok:
            detail += f"; output tail: {process.tail(log, 400).strip()[-300:]}"
        reporter.emit("trigger", command=shown, ok=ok, detail=detail)

    return trigger
