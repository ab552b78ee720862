"""Runs one suite and turns what happened into a SuiteRun, harness errors included.

A result is only a result when the harness worked: a pytest usage error, a crash, a missing or
truncated JUnit file or an empty collection says nothing about staging, and must never pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from deployloop import junit_files, process, process_groups
from deployloop.config import PhaseConfig, SuiteConfig
from deployloop.durations import format_duration
from deployloop.hookerrors import attach_hook_errors
from deployloop.junit_fields import with_files
from deployloop.logical import hollow
from deployloop.models import CaseResult, RunEnd, SuiteRun
from deployloop.oneline import one_line
from deployloop.progress import ScrubbedRecords, collected_count
from deployloop.pump import Pump
from deployloop.pytestline import runs_pytest
from deployloop.redact import MASK, Redactor
from deployloop.scrub import INTERVAL_S, scrubbed_case
from deployloop.shards import Shard

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
PLUGINS = "-p deployloop_live -p deployloop_run"
PROGRESS_ENV = "DEPLOYLOOP_PROGRESS"
JUNIT_ENV = "DEPLOYLOOP_JUNIT"
SELECT_ENV = "DEPLOYLOOP_SELECT"
MASK_ENV = "DEPLOYLOOP_SELECT_MASK"  # a selected id's redaction mask matches any text (plugin)
SHARD_ENV = "DEPLOYLOOP_SHARD"
USERS_JUNIT_ENV = "DEPLOYLOOP_USER_JUNIT"
NO_TESTS = 5  # pytest's exit code when it ran nothing: a shard may rightly get no test
USAGE_ERROR = 4
# How pytest tells a usage error (pytest.UsageError, and argparse's for an unknown option).
PYTEST_SAYS = re.compile(r"^(?:ERROR: (?!usage: )|[^:\n]+: error: )(.+)$", re.MULTILINE)
SAYS_CHARS = 300  # the most of pytest's own words a harness error quotes
# A terminal escape in quoted words, dropped whole (ECMA-48: CSI, 8-bit CSI, a terminated
# OSC, or ESC, intermediate bytes and a final byte: "ESC ( B" of tput sgr0).
TERMINAL_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-~]?)|\x9b[0-?]*[ -/]*[@-~]"
)
# xdist's --dist loadgroup writes "test_a@group" (pytest-xdist#992); "test_a[x@y.com]" is an id.
XDIST_GROUP = re.compile(r"@[^\[\]:@]*$")


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
    shard: Shard | None = None  # run only this shard of the suite's tests (shards.py)

    def not_run(self, reason: str, ended: RunEnd, log_path: Path | None = None) -> SuiteRun:
        """The job's run when it never ran to an end (``reason``, a harness error): no test
        counted, so it proves nothing about staging. ``log_path``: where its log is, if here."""
        return SuiteRun(
            phase=self.phase.name,
            suite=self.suite.name,
            cases=(),
            wall_s=0.0,
            exit_code=None,
            harness_error=reason,
            version=self.version,
            log_path=None if log_path is None else str(log_path),
            ended=ended,
        )


def plain_id(node_id: str) -> str:
    """A JUnit test id as pytest selects it: without the ``@group`` suffix of xdist loadgroup."""
    return XDIST_GROUP.sub("", node_id)


def run_suite(
    job: SuiteJob,
    stop: threading.Event,
    env: Mapping[str, str] | None = None,
    redactor: Redactor | None = None,
    force: threading.Event | None = None,
) -> SuiteRun:
    """Run the job's command and read its JUnit output; never raises for a broken harness.

    ``stop`` ends the run (TERM to its group, a grace, KILL); ``force`` cuts that grace short.

    With ``redactor``, no raw secret reaches ``logs/`` at any moment (tests print tokens more
    often than anyone thinks): the log and the progress file are scrubbed as they are written,
    the result files are written and read in a private place (``_private_place``) and only their
    scrubbed copies are kept, and the results (ids, messages, details) are scrubbed before anything
    else sees them. Raises ``OSError`` only when the files under ``logs/`` cannot be written.
    """
    argv = process.split_command(job.suite.run)
    _prepare(job)
    timeout, by_deadline = _timeout(job)
    started_wall = time.time()
    with _private_place(job, redactor) as (raw_job, progress, select):
        raw = raw_job.junit_path
        early = junit_files.EarlyRead(
            raw,
            lambda: junit_files.read(raw, job.suite, None, started_wall),
            lambda found: _results(job, raw, redactor, started_wall, found),
        )
        done = process.run(
            argv,
            log_path=job.log_path,
            timeout=timeout,
            stop=stop,
            cwd=job.suite.cwd,
            env=_environment(raw_job, env, progress, select),
            pid_file=pid_path(job),
            force=force,
            redactor=redactor,
            scratch=raw_job.junit_path.parent,
            meanwhile=early,
        )
        found, kept, cases = early.taken() or _results(job, raw, redactor, started_wall)
    # After the private place: the pump has written every progress line (the collected count).
    repairs = found.repairs
    collected = collected_count(progress_path(job)) if found.ours else None
    ended, reason = how_it_ended(job, done, cases, found, by_deadline, collected)
    # Read (the collected count): a 64k-test suite's would keep 20 MB an iteration (issue 19).
    progress_path(job).unlink(missing_ok=True)
    if redactor is not None:
        reason = None if reason is None else redactor.redact(reason)
        repairs = tuple(redactor.redact(note) for note in found.repairs)
    return SuiteRun(
        phase=job.phase.name,
        suite=job.suite.name,
        cases=tuple(cases),
        wall_s=done.wall_s,
        exit_code=done.returncode,
        harness_error=reason,
        version=job.version,
        junit_path=str(kept) if kept else None,
        log_path=str(job.log_path),
        expected_tests=None if job.select or job.shard else job.suite.expect_tests,
        ended=ended,
        collected=collected,
        repairs=repairs,
    )


class _Results(NamedTuple):
    found: junit_files.Found
    kept: Path | None  # the scrubbed copy beside the log
    cases: list[CaseResult]  # hook errors attached, scrubbed


def _results(
    job: SuiteJob,
    raw: Path,
    redactor: Redactor | None,
    started_wall: float,
    found: junit_files.Found | None = None,
) -> _Results:
    """The run's result files (``raw``: the plugin's report, in the private place) read
    (unless ``found`` already), kept scrubbed beside the log, and their cases with hook
    errors attached and scrubbed."""
    if found is None:
        found = junit_files.read(raw, job.suite, job.log_path, started_wall)
    kept = junit_files.keep(job.junit_path, found.files, redactor)
    cases = attach_hook_errors(found.cases, job.log_path)
    if redactor is not None:  # first: a selection's masked ids are found among scrubbed ones
        cases = [scrubbed_case(case, redactor) for case in cases]
    return _Results(found, kept, cases)


def pid_path(job: SuiteJob) -> Path:
    """Names the suite's running process group, so a restart can stop what a crash left."""
    return job.log_path.with_suffix(".pid")


def users_report_note(log_path: Path) -> Path:
    """Where a sharded suite's first shard notes the path of the user's own ``--junitxml``
    (one absolute path, written by the run plugin; absent when there is none), given the
    shard's log path. ``shards.write_users_report`` reads it after the merge."""
    return log_path.with_suffix(".user-junit")


def progress_path(job: SuiteJob) -> Path:
    """Where the plugin's per-test outcomes are kept, scrubbed (one JSON object per line),
    while the suite runs: the live view tails it, and ``run_suite`` reads its collected count
    and then drops it (the results are in the state and the JUnit file). A run killed with
    deployloop leaves it, scrubbed on resume; the next run of the job starts it afresh."""
    return job.log_path.with_suffix(".progress.jsonl")


def _prepare(job: SuiteJob) -> None:
    """No stale file from an earlier run of this job may pass for this run's results."""
    job.junit_path.parent.mkdir(parents=True, exist_ok=True)
    for path in (job.junit_path, progress_path(job), users_report_note(job.log_path)):
        path.unlink(missing_ok=True)
    shutil.rmtree(junit_files.kept_dir(job.junit_path), ignore_errors=True)


@contextlib.contextmanager
def _private_place(
    job: SuiteJob, redactor: Redactor | None
) -> Iterator[tuple[SuiteJob, Path, Path | None]]:
    """A private directory (mode 0700, removed on leaving) for what the suite writes raw.

    Yields the job with its JUnit file moved there, the file naming a rerun's tests (ids may
    hold secrets: never under ``logs/``), and a FIFO for the progress plugin: a pump
    copies what the plugin writes into ``progress_path(job)``, scrubbed line by line, so the
    kept file never holds a raw test id. The FIFO is held open for writing here too, so two
    pytest runs in one command see one stream, and the plugin never blocks on a missing reader.
    """
    with tempfile.TemporaryDirectory(prefix=process_groups.SCRATCH_PREFIX) as scratch:
        fifo = Path(scratch) / "progress"
        os.mkfifo(fifo, 0o600)
        read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        held_fd = os.open(fifo, os.O_WRONLY)
        pump = Pump(f"progress-{job.suite.name}")
        try:
            pump.add(read_fd, _progress_writer(job, redactor))
        except OSError:
            os.close(read_fd)
            os.close(held_fd)
            raise
        select = _select_file(job, Path(scratch))
        if job.shard is not None:
            job.shard.write(Path(scratch) / "shard")
        with pump:
            try:
                raw_job = dataclasses.replace(job, junit_path=Path(scratch) / job.junit_path.name)
                yield raw_job, fifo, select
            finally:
                os.close(held_fd)  # the suite is gone: end of file once the pump has read it all


def _progress_writer(job: SuiteJob, redactor: Redactor | None) -> ScrubbedRecords:
    """The kept progress file's writer: a selection's lines (a rerun's few tests, whose
    final outcomes failed-first waits on: ``retest.FirstVerdict``) are written as they come,
    a whole suite's in batches; a secret in an id is tagged as the results tag it, so a
    test is found by its id there too."""
    interval_s = 0.0 if job.select else INTERVAL_S
    return ScrubbedRecords(progress_path(job), redactor, interval_s=interval_s)


def _select_file(job: SuiteJob, scratch: Path) -> Path | None:
    """The file naming the tests a rerun selects, one node id a line (read by the plugin)."""
    if not job.select:
        return None
    path = scratch / "select"
    path.write_text("".join(f"{plain_id(i)}\n" for i in job.select), "utf-8")
    return path


def _environment(
    job: SuiteJob, extra: Mapping[str, str] | None, progress: Path, select: Path | None
) -> dict[str, str]:
    """The suite's environment, with deployloop's pytest plugins switched on through the
    variables pytest reads however the run line starts it (``PYTEST_ADDOPTS``)."""
    env = {**os.environ, **(extra or {}), **job.suite.env}
    pythonpath = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{PLUGIN_DIR}{os.pathsep}{pythonpath}" if pythonpath else str(PLUGIN_DIR)
    env["PYTEST_ADDOPTS"] = f"{env.get('PYTEST_ADDOPTS', '')} {PLUGINS}".strip()
    env[PROGRESS_ENV] = str(progress)
    env[JUNIT_ENV] = str(job.junit_path)
    if select is not None:
        env[SELECT_ENV] = str(select)
        env[MASK_ENV] = MASK
    if job.shard is not None:
        env[SHARD_ENV] = str(job.junit_path.with_name("shard"))
    if job.shard is not None and job.shard.index == 1 and select is None:
        env[USERS_JUNIT_ENV] = str(users_report_note(job.log_path))
    return env


def _timeout(job: SuiteJob) -> tuple[float, bool]:
    """The suite's own timeout, or less when the session's deadline comes first."""
    if job.deadline is None:
        return job.suite.timeout, False
    left = max(0.0, job.deadline - time.monotonic())
    return (left, True) if left < job.suite.timeout else (job.suite.timeout, False)


def how_it_ended(
    job: SuiteJob,
    done: process.Completed,
    cases: Sequence[CaseResult],
    found: junit_files.Found,
    by_deadline: bool,
    collected: int | None,
) -> tuple[RunEnd, str | None]:
    """How the run ended, and in words why it cannot be trusted as a verdict on staging.
    ``collected``: how many tests pytest collected (the progress file's count), if it said.

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
    error = _runner_error(job, done, cases, found, collected)
    return (RunEnd.COMPLETED, None) if error is None else (RunEnd.RUNNER_ERROR, error)


def _runner_error(
    job: SuiteJob,
    done: process.Completed,
    cases: Sequence[CaseResult],
    found: junit_files.Found,
    collected: int | None,
) -> str | None:
    """Why a runner that exited by itself produced no full result (pytest's exit codes first)."""
    pytest = found.ours or runs_pytest(job.suite.run)
    if job.shard is not None and done.returncode == NO_TESTS and not cases:
        return None  # shards.merge judges emptiness on the merged suite
    if pytest and done.returncode == USAGE_ERROR:
        return _usage_error(job.log_path)
    if pytest and done.returncode in PYTEST_EXIT:
        # xdist stops an -x / --maxfail run as interrupted (exit 2): what did not run is the news
        partial = _not_run(job, cases, collected) if done.returncode == 2 else None
        return partial or PYTEST_EXIT[done.returncode]
    if found.error:
        return found.error
    whole = job.shard is None  # a shard's emptiness and all-skipped: judged on the merged suite
    return _suspicious_results(done, cases, whole) or _not_run(job, cases, collected)


def _usage_error(log_path: Path) -> str:
    """pytest's exit 4 in words, with what pytest said last about it in the log's tail
    (``ERROR: …``, or argparse's ``prog: error: …``) as one printable line of at most
    ``SAYS_CHARS``, terminal escapes dropped: an option it does not know, a plugin refusing
    the run."""
    said = PYTEST_SAYS.findall(process.tail(log_path))
    if not said:
        return PYTEST_EXIT[USAGE_ERROR]
    bare = TERMINAL_ESCAPE.sub("", said[-1])
    words = one_line("".join(c if c.isprintable() else " " for c in bare), SAYS_CHARS)
    return f"{PYTEST_EXIT[USAGE_ERROR]}: {words}"


def _suspicious_results(
    done: process.Completed, cases: Sequence[CaseResult], whole: bool = True
) -> str | None:
    if whole and (problem := hollow(cases)):
        return problem
    if done.returncode != 0 and not any(c.broken for c in cases):
        return f"runner exited {done.returncode} but its JUnit file reports no failure"
    return None


def _not_run(job: SuiteJob, cases: Sequence[CaseResult], collected: int | None) -> str | None:
    """Tests asked for or collected that never ran (``-x``, ``--maxfail``, a rerun whose ids
    select nothing): the run is partial, and said so, never judged as complete."""
    if job.select:
        # a module's id is found when its tests ran; a masked id (a secret in a parametrize
        # id) when its test ran: its record, scrubbed first, holds the same masked id
        ran = with_files(plain_id(c.id) for c in cases)
        missing = [i for i in job.select if plain_id(i) not in ran]
        if missing:
            picked = len(job.select) - len(missing)
            return f"rerun selected {picked} of {len(job.select)} tests (not found: {missing[0]})"
        return None
    if collected is not None and collected > len(cases):
        return f"stopped early: {collected - len(cases)} of {collected} tests did not run"
    return None
