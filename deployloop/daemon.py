"""A whole ``run``, and the composition root: the one place the real parts are made and wired.

Lock, open or resume the session (``session``), build the real services once, run the loop,
record how it ended. The loop itself knows no subprocess, HTTP or clock; this module gives it
the real ones.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from deployloop import process
from deployloop.clock import Clock, RealClock
from deployloop.config import Config
from deployloop.events import (
    Journal,
    Reporter,
    ReportWritten,
    SessionEnd,
    SessionStart,
    Sink,
    Trigger,
)
from deployloop.executors import Executor, LocalExecutor, make_executor
from deployloop.issues.desk import IssueDesk
from deployloop.issues.records import IterationReport
from deployloop.iteration import Services
from deployloop.lock import InstanceLock, lock_path
from deployloop.loop import Loop, LoopResult
from deployloop.models import ProbeResult
from deployloop.plan import Plan
from deployloop.redact import Redactor
from deployloop.session import (
    RunOptions,
    config_key,
    end_stale,
    final_reduce,
    open_session,
    resume_point,
)
from deployloop.sessionlog import SessionLog
from deployloop.signals import StopSignal, capture_signals
from deployloop.state import SessionRow, Store, id_key, make_directory, state_dir
from deployloop.statesinks import LiveStatus, StoryRecorder
from deployloop.tell import make_tellers
from deployloop.wait import IntervalWaiter, RedeployWaiter, WaitResult


@dataclass(frozen=True, slots=True)
class RunOutcome:
    exit_code: int
    session: str
    reason: str
    directory: Path


def config_secrets(config: Config) -> list[str | None]:
    """Every value the config interpolated, and its own credentials (headers, tracker token)."""
    return [*config.secrets, *config.target.headers.values(), config.issues.token]


def redactor_for(config: Config) -> Redactor:
    """Masks the environment's secrets and the config's (``config_secrets``) whole."""
    return Redactor.from_env(os.environ, extra=config_secrets(config))


def run(config: Config, plan: Plan, options: RunOptions, sinks: list[Sink]) -> RunOutcome:
    """Run the loop under the instance lock; signals end it cleanly with 130/143."""
    stop = StopSignal()
    # The lock first: a second run must not even open (or move aside) the state.
    with InstanceLock(lock_path(config_key(config)), config.path), capture_signals(stop):
        # Before the session opens: an unreachable scheduler is one line and exit 3.
        directory = state_dir(config.session.logs_dir)
        # The state's key: a secret in a test id gets the same tag in every run of this state.
        redactor = redactor_for(config).with_id_key(id_key(directory))
        executor = make_executor(
            config.executor, stop.event, stop.force, redactor, config_secrets(config)
        )
        store = Store(directory)
        try:
            return _run_locked(config, plan, options, sinks, store, stop, executor, redactor)
        finally:
            store.close()
            executor.close()


def _run_locked(
    config: Config,
    plan: Plan,
    options: RunOptions,
    sinks: list[Sink],
    store: Store,
    stop: StopSignal,
    executor: Executor,
    redactor: Redactor,
) -> RunOutcome:
    stale = end_stale(store, config, time.time())
    row, resumed = open_session(store, config, options, redactor)
    make_directory(row.directory)  # a logs_dir that cannot be one: exit 2, not a crash
    store.update_live(row.id, {"pid": os.getpid()})  # status tells a dead run from a live one
    notes = [store.recovered] if store.recovered else []
    if stale is not None:
        notes.append(_ended_stale(store, stale, redactor))
    reporter = Reporter(*sinks)
    reporter.add(Journal(row.directory / "events.jsonl", redactor.redact))
    reporter.add(SessionLog(row.directory / "session.md", redactor.redact))
    reporter.add(LiveStatus(store, row.id, redactor.redact))
    reporter.add(StoryRecorder(store, row.id, redactor.redact))
    key = config_key(config)
    tellers = make_tellers(config, store, row.id, reporter, redactor, stop.event, key, plan.dry_run)
    if tellers is not None:  # last: what they report follows the event they answer
        reporter.add(tellers)
    reporter.emit(
        SessionStart(
            session=row.id,
            config=config.path,
            resumed=resumed,
            deadline=row.deadline,
            max_iterations=row.max_iterations,
            logs_dir=str(row.directory),
            notes=tuple(notes),
        )
    )
    session = resume_point(store, row)
    desk = IssueDesk(config, store, row.id, reporter, redactor, stop.event)
    try:
        services = real_services(config, reporter, stop, row, redactor, desk, executor)
        result = Loop(config, plan, session, store, services, reporter).run()
    finally:
        desk.close()
    exit_code = _end_session(store, row.id, result, stop.signum, reporter)
    _write_reports(store, row.id, redactor, reporter)
    if tellers is not None:
        tellers.close()
    return RunOutcome(exit_code, row.id, result.reason, row.directory)


def _end_session(
    store: Store, session_id: str, result: LoopResult, signum: int | None, reporter: Reporter
) -> int:
    """Report and store how the session ended; an interrupted one stays open to be resumed
    (``Store.unfinished`` offers it), but reads as interrupted, not running."""
    end = final_reduce(result, signum)
    status, exit_code = end.status, end.exit_code
    reporter.emit(
        SessionEnd(
            status=status,
            exit_code=exit_code,
            iterations=result.iterations,
            reason=result.reason,
        )
    )
    store.end_session(session_id, status, exit_code)
    return exit_code


def _ended_stale(store: Store, stale: SessionRow, redactor: Redactor) -> str:
    """Write the morning report of a session ended for its passed deadline; the line saying so."""
    from deployloop import report

    passed = time.strftime("%Y-%m-%d %H:%M", time.localtime(stale.deadline or 0))
    try:
        written = report.write_reports(store, stale.id, redactor.redact)
        where = f"its report: {written[0]}" if written else "no report"
    except OSError as exc:
        where = f"no report ({exc})"
    return (
        f"session {stale.id} could not resume: its deadline ({passed}) has passed; "
        f"ended it as abandoned ({where}) and started a new one"
    )


def _write_reports(store: Store, session_id: str, redactor: Redactor, reporter: Reporter) -> None:
    """The morning report next to session.md; a disk problem here must not change the verdict."""
    from deployloop import report

    try:
        paths = report.write_reports(store, session_id, redactor.redact)
    except OSError as exc:
        reporter.emit(ReportWritten(paths=(), error=str(exc)))
        return
    reporter.emit(ReportWritten(paths=tuple(str(p) for p in paths), error=None))


def real_services(
    config: Config,
    reporter: Reporter,
    stop: StopSignal,
    row: SessionRow,
    redactor: Redactor,
    file_issues: Callable[[IterationReport], None],
    executor: Executor | None = None,
) -> Services:
    """Every side effect the loop needs, made once from the config and the stop signal;
    suites run on ``executor`` (default: subprocesses here)."""
    clock = RealClock(stop.event)
    target = config.target
    runs_on = executor or LocalExecutor(stop.event, stop.force, redactor)
    health = _health(config, runs_on)
    read = version_reader(config, stop.event)
    trigger = None
    if config.redeploy is not None and config.redeploy.trigger:
        trigger = trigger_runner(config, reporter, stop.event, row, redactor)
    return Services(
        run_suite=runs_on.run,
        run_probe=lambda probe: _probes().run_probe(target, probe),
        read_version=read,
        wait=_waiter(config, read, health, clock, reporter, row.deadline),
        clock=clock,
        stop=stop.event,
        check_health=health,
        trigger=trigger,
        file_issues=file_issues,
    )


def _health(config: Config, executor: Executor) -> Callable[[], ProbeResult] | None:
    """Staging's health probe and the executor's (a dask scheduler), the first failing one
    answering; None when neither can fail."""
    target = config.target
    if target.health is None and executor.health() is None:
        return None

    def check() -> ProbeResult:
        cluster = executor.health()
        if cluster is not None and not cluster.ok:
            return cluster
        if target.health is None:
            assert cluster is not None
            return cluster
        staging: ProbeResult = _probes().health_probe(target)
        return staging

    return check


def _waiter(
    config: Config,
    read: Callable[[], str | None],
    health: Callable[[], ProbeResult] | None,
    clock: Clock,
    reporter: Reporter,
    deadline: float | None,
) -> Callable[[str | None], WaitResult]:
    """The wait between iterations: for a redeploy when configured, else a fixed interval."""
    if config.redeploy is None:
        return IntervalWaiter(config.session.interval, read, clock, reporter, deadline).wait
    return RedeployWaiter(config.redeploy, read, health, clock, reporter, deadline).wait


def _probes() -> ModuleType:
    """httpx, websockets and asyncio load only when a probe is configured (start-up is short)."""
    from deployloop import probes

    return probes


def version_reader(config: Config, stop: threading.Event | None = None) -> Callable[[], str | None]:
    """The deployed version, or None while staging cannot say (mid-deploy, down).

    ``stop`` ends a running version command early (its group is stopped like a suite's).
    """
    source = config.target.version
    if source is None:
        return lambda: None

    def read() -> str | None:
        from deployloop.version import VersionUnavailable, read_version

        try:
            return read_version(source, config.target, config.target.request_timeout, stop)
        except VersionUnavailable:
            return None

    return read


def trigger_runner(
    config: Config,
    reporter: Reporter,
    stop: threading.Event,
    row: SessionRow,
    redactor: Redactor | None = None,
) -> Callable[[int], None]:
    """Runs ``[redeploy] trigger``; its failure is reported as a harness error, not a crash.
    Its output goes to ``redeploy.log`` scrubbed with ``redactor`` as it is written."""
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
            redactor=redactor,
            pid_file=log.with_suffix(".pid"),  # reaped at the next start after a kill -9
        )
        ok = done.returncode == 0
        detail = f"{shown} (exit {done.returncode}, {done.wall_s:.1f} s)"
        if done.start_error:
            detail = f"{shown}: {done.start_error}"
        elif not ok:
            detail += f"; output tail: {process.tail(log, 400).strip()[-300:]}"
        reporter.emit(Trigger(command=shown, ok=ok, detail=detail))

    return trigger
