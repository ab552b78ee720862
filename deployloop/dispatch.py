"""A phase's suites side by side (``[[phase]] parallel``), and a suite's shards
(``[[phase.suite]] shards``) run together and merged into the suite's one result.

Each running suite or shard is one thread driving one run through the loop's own single-suite
path (its events, state rows and version stamps), so live view, logs, state and resume stay
per suite; the threads only wait on their run. The phase is the barrier: ``side_by_side``
returns when every started run has ended. A stop is seen by every running group at once (they
share the stop event), and after it, or once the session deadline cut a run short, nothing new
starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from deployloop import shards
from deployloop.config import PhaseConfig, SuiteConfig
from deployloop.events import Reporter, SuiteEnd
from deployloop.models import RunEnd, SuiteRun
from deployloop.runner import users_report_note
from deployloop.shards import Shard
from deployloop.state import Store

T = TypeVar("T")


def side_by_side(
    items: Sequence[T],
    width: int,
    work: Callable[[T], SuiteRun],
    halt: Callable[[SuiteRun], bool],
) -> list[SuiteRun]:
    """``work`` on each item, up to ``width`` at once, in order of starting; the runs in the
    items' order. Once a finished run makes ``halt`` true, items not yet started are skipped
    (their runs are missing from the list). ``width`` 1 runs them one after another in this
    thread, exactly as a plain loop would."""
    halted = threading.Event()

    def guarded(item: T) -> SuiteRun | None:
        if halted.is_set():
            return None
        run = work(item)
        if halt(run):
            halted.set()
        return run

    if width <= 1 or len(items) <= 1:
        results = [guarded(item) for item in items]
    else:
        with ThreadPoolExecutor(min(width, len(items)), "deployloop-suite") as pool:
            results = list(pool.map(guarded, items))
    return [run for run in results if run is not None]


def run_phase(
    phase: PhaseConfig,
    kept: dict[str, SuiteRun],
    stop: threading.Event,
    run_suite: Callable[[SuiteConfig], SuiteRun],
) -> list[SuiteRun]:
    """The phase's suites, ``parallel`` at a time, each through ``run_suite`` unless a resumed
    session ``kept`` its run (taken out of ``kept``). After a stop, or once a run was cut
    short by the session deadline, nothing new starts."""

    def one(suite: SuiteConfig) -> SuiteRun:
        done = kept.pop(suite.name, None)
        return done if done is not None else run_suite(suite)

    def halt(run: SuiteRun) -> bool:
        return stop.is_set() or run.ended is RunEnd.DEADLINE

    return side_by_side(phase.suites, phase.parallel, one, halt)


@dataclass(frozen=True)
class Sharded:
    """Runs one suite as its shards and stores the merged result as the suite's full run.

    ``run_shard`` is the loop's single-suite path for one shard (it emits the shard's
    SuiteStart/SuiteEnd and stores its ``shard-i`` row). Durations come from the suite's last
    full run under the same config (``Store.durations``).
    """

    store: Store
    reporter: Reporter
    session_id: str
    iteration_dir: Path
    iteration: int

    def run(self, suite: SuiteConfig, run_shard: Callable[[Shard], SuiteRun]) -> SuiteRun:
        """The suite's merged result, stored as its ``full`` run (``partial`` when a stop cut a
        shard short, so a resumed session runs the suite again) and reported by a SuiteEnd.
        Its JUnit is ``<iteration>/<suite>.xml`` like any suite's (SPEC, "Files it writes"),
        merged from the shards' reports; the user's own ``--junitxml``, if the run line names
        one, gets a copy of it. Raises ``OSError`` when files under ``logs/`` cannot be
        written."""
        durations = self.store.durations(self.session_id, suite.name)
        planned = shards.shards_for(durations, suite.shards)
        ran = side_by_side(planned, len(planned), run_shard, lambda run: False)
        log_path = self.iteration_dir / f"{suite.name}.log"
        report = shards.write_merged(log_path.with_suffix(".xml"), ran)
        merged = shards.merge(ran, suite.expect_tests, log_path, report)
        note = users_report_note(Path(ran[0].log_path or log_path))
        if problem := shards.write_users_report(note, report):
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"[deployloop] {problem}\n")
        record_run(self.store, self.reporter, self.session_id, self.iteration, "full", merged)
        return merged


def record_run(
    store: Store, reporter: Reporter, session_id: str, iteration: int, pass_name: str, run: SuiteRun
) -> None:
    """Store a finished pass and report it. Only a run the stop actually cut short is
    ``partial``: one that finished just before the signal is a result, and a resumed session
    must not run it again."""
    partial = run.ended is RunEnd.INTERRUPTED
    store.save_run(session_id, iteration, "partial" if partial else pass_name, run)
    reporter.emit(
        SuiteEnd(
            phase=run.phase,
            suite=run.suite,
            counts=run.counts,
            wall_s=run.wall_s,
            harness_error=run.harness_error,
            exit_code=run.exit_code,
            pass_name=pass_name,
        )
    )
