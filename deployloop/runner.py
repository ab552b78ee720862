"""Runs one suite and turns what happened into a SuiteRun, harness errors included.

A result is only a result when the harness worked: a pytest usage error, a crash, a missing or
truncated JUnit file or an empty collection says nothing about staging, and must never pass.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployloop import process
from deployloop.atomic import write_atomic
from deployloop.config import PhaseConfig, SuiteConfig
from deployloop.durations import format_duration
from deployloop.errors import JUnitError
from deployloop.models import CaseResult, Outcome, RunEnd, SuiteRun

INTERRUPTED = "interrupted; partial results kept"
PYTEST_EXIT = {
    2: "pytest was interrupted (exit 2)",
    3: "pytest internal error (exit 3)",
    4: "pytest usage error (exit 4)",
    5: "no tests collected (pytest exit 5)",
}
# The live-progress plugin is a stdlib-only module on its own path, so it loads in the suite's
# own Python environment even where deployloop is not installed.
PLUGIN_DIR = Path(__file__).parent / "plugin"
PLUGIN = "deployloop_live"
PROGRESS_ENV = "DEPLOYLOOP_PROGRESS"


@dataclass(frozen=True, slots=True)
class SuiteJob:
    """One suite to run now: where its files go, and optionally which tests only."""

    phase: PhaseConfig
    suite: SuiteConfig
    junit_path: Path
    log_path: Path
    select: tuple[str, ...] = ()  # pytest node ids: rerun just these
    deadline: float | None = None  # monotonic time the session ends; stops the suite early
    version: str | None = None


def is_pytest(argv: Sequence[str]) -> bool:
    """``pytest …``, ``py.test …`` or ``python -m pytest …``."""
    if not argv:
        return False
    exe = os.path.basename(argv[0])
    if exe in ("pytest", "py.test"):
        return True
    return exe.startswith("python") and list(argv[1:3]) == ["-m", "pytest"]


def build_argv(job: SuiteJob) -> list[str]:
    argv = process.split_command(job.suite.run)
    if not is_pytest(argv):
        return argv
    extra = [f"--junitxml={job.junit_path}", "-o", "junit_family=xunit1", "-p", PLUGIN]
    return [*argv, *extra, *(_from_cwd(node, job.suite.cwd) for node in job.select)]


def _from_cwd(node_id: str, cwd: str | None) -> str:
    """A node id as pytest wants it on the command line: relative to where it runs.

    JUnit ids are relative to pytest's rootdir, which may sit above the suite's cwd.
    """
    path, sep, rest = node_id.partition("::")
    parts = Path(path).parts
    base = Path(cwd or ".")
    for start in range(len(parts)):
        if (base.joinpath(*parts[start:])).exists():
            return str(Path(*parts[start:])) + sep + rest
    return node_id


def run_suite(
    job: SuiteJob,
    stop: threading.Event,
    env: Mapping[str, str] | None = None,
    redact: Callable[[str], str] | None = None,
    force: threading.Event | None = None,
) -> SuiteRun:
    """Run the job's command and read its JUnit output; never raises for a broken harness.

    ``stop`` ends the run (TERM to its group, a grace, KILL); ``force`` cuts that grace short.

    With ``redact``, the kept output, the kept JUnit file and the results are scrubbed of
    secrets before anything else sees them: tests print tokens more often than anyone thinks.
    """
    argv = build_argv(job)
    job.junit_path.parent.mkdir(parents=True, exist_ok=True)
    job.junit_path.unlink(missing_ok=True)
    timeout, by_deadline = _timeout(job)
    started_wall = time.time()
    done = process.run(
        argv,
        log_path=job.log_path,
        timeout=timeout,
        stop=stop,
        cwd=job.suite.cwd,
        env=_environment(job, env),
        pid_file=pid_path(job),
        force=force,
    )
    cases, junit_path, read_error = _read_results(job, is_pytest(argv), started_wall)
    ended, reason = how_it_ended(job, done, cases, read_error, is_pytest(argv), by_deadline)
    if junit_path is not None and junit_path != job.junit_path:
        shutil.copyfile(junit_path, job.junit_path)  # the raw file, kept beside the log
        junit_path = job.junit_path
    if junit_path is not None and junit_path.exists():
        from deployloop.junit import cap_kept

        cap_kept(junit_path)  # read whole above; kept for people (and scrubbed) as head and tail
    if redact is not None:
        cases = [_scrubbed(case, redact) for case in cases]
        for path in (job.log_path, job.junit_path):
            _scrub_file(path, redact)
    return SuiteRun(
        phase=job.phase.name,
        suite=job.suite.name,
        cases=tuple(cases),
        wall_s=done.wall_s,
        exit_code=done.returncode,
        harness_error=reason,
        version=job.version,
        junit_path=str(junit_path) if junit_path else None,
        log_path=str(job.log_path),
        expected_tests=None if job.select else job.suite.expect_tests,
        ended=ended,
    )


def pid_path(job: SuiteJob) -> Path:
    """Names the suite's running process group, so a restart can stop what a crash left."""
    return job.log_path.with_suffix(".pid")


def progress_path(job: SuiteJob) -> Path:
    """Where the plugin streams per-test outcomes (one JSON object per line)."""
    return job.log_path.with_suffix(".progress.jsonl")


def _environment(job: SuiteJob, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {**os.environ, **(extra or {}), **job.suite.env}
    pythonpath = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{PLUGIN_DIR}{os.pathsep}{pythonpath}" if pythonpath else str(PLUGIN_DIR)
    env[PROGRESS_ENV] = str(progress_path(job))
    return env


def _scrubbed(case: CaseResult, redact: Callable[[str], str]) -> CaseResult:
    if not (case.message or case.details):
        return case
    return dataclasses.replace(case, message=redact(case.message), details=redact(case.details))


def _scrub_file(path: Path, redact: Callable[[str], str]) -> None:
    """Rewrite ``path`` redacted (atomically); suite logs are capped, so this stays bounded."""
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return
    clean = redact(text)
    if clean != text:
        write_atomic(path, clean, errors="surrogateescape")


def _timeout(job: SuiteJob) -> tuple[float, bool]:
    """The suite's own timeout, or less when the session's deadline comes first."""
    if job.deadline is None:
        return job.suite.timeout, False
    left = max(0.0, job.deadline - time.monotonic())
    return (left, True) if left < job.suite.timeout else (job.suite.timeout, False)


def _read_results(
    job: SuiteJob, pytest: bool, started_wall: float
) -> tuple[list[CaseResult], Path | None, str | None]:
    from deployloop import junit

    paths = [job.junit_path] if pytest else _fresh_matches(job, started_wall)
    if not paths or not paths[0].exists():
        where = job.junit_path if pytest else job.suite.junit or "(no junit = set)"
        return [], None, f"no JUnit file written ({where})"
    cases: list[CaseResult] = []
    try:
        for path in paths:
            cases.extend(junit.read_cases(path))
    except JUnitError as exc:
        return cases, paths[0], f"JUnit file unreadable: {exc.problem}"
    return cases, paths[0], None


def _fresh_matches(job: SuiteJob, started_wall: float) -> list[Path]:
    """Files matching ``junit`` written by this run (a stale file from last night is no result)."""
    if not job.suite.junit:
        return []
    base = Path(job.suite.cwd or ".")
    matches = sorted(Path(p) for p in glob.glob(str(base / job.suite.junit), recursive=True))
    return [p for p in matches if p.stat().st_mtime >= started_wall - 1.0]


def how_it_ended(
    job: SuiteJob,
    done: process.Completed,
    cases: Sequence[CaseResult],
    read_error: str | None,
    pytest: bool,
    by_deadline: bool,
) -> tuple[RunEnd, str | None]:
    """How the run ended, and in words why it cannot be trusted as a verdict on staging.

    The words are None exactly when the end is COMPLETED.
    """
    if done.ended is RunEnd.FAILED_TO_START:
        return done.ended, done.start_error
    if done.ended is RunEnd.INTERRUPTED:
        return done.ended, INTERRUPTED
    if done.ended is RunEnd.TIMEOUT and by_deadline:
        return RunEnd.DEADLINE, "stopped at the session deadline; partial results kept"
    if done.ended is RunEnd.TIMEOUT:
        limit = format_duration(job.suite.timeout)
        return done.ended, f"timed out after {limit}; process group stopped"
    if done.ended is RunEnd.KILLED_BY_SIGNAL:
        return done.ended, f"runner killed by {done.signal_name}"
    error = _runner_error(done, cases, read_error, pytest)
    return (RunEnd.COMPLETED, None) if error is None else (RunEnd.RUNNER_ERROR, error)


def _runner_error(
    done: process.Completed, cases: Sequence[CaseResult], read_error: str | None, pytest: bool
) -> str | None:
    """Why a runner that exited by itself produced no result (pytest's own exit codes first)."""
    if pytest and done.returncode in PYTEST_EXIT:
        return PYTEST_EXIT[done.returncode]
    if read_error:
        return read_error
    return _suspicious_results(done, cases)


def _suspicious_results(done: process.Completed, cases: Sequence[CaseResult]) -> str | None:
    if not cases:
        return "zero tests collected"
    if all(c.outcome is Outcome.SKIPPED for c in cases):
        return f"all {len(cases)} tests skipped"
    if done.returncode != 0 and not any(c.broken for c in cases):
        return f"runner exited {done.returncode} but its JUnit file reports no failure"
    return None
