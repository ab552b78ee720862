"""The triage → tracker stage of an iteration: decide the issue actions, deliver them, remember.

Cluster records live in the state so a restarted run knows which issue stands for which cause;
the tracker's hidden markers are the second line of defence when the state is lost.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path

from deployloop import process, triage
from deployloop.config import Config
from deployloop.events import Reporter
from deployloop.issuetext import PhaseInfo
from deployloop.loop import IterationReport
from deployloop.outbox import Outbox
from deployloop.redact import Redactor
from deployloop.state import Store
from deployloop.tracker import SyncResult, Tracker, apply, make_tracker

LOG_EXCERPT_BYTES = 3000


class IssueDesk:
    """Called by the loop once per iteration with its results."""

    def __init__(
        self,
        config: Config,
        store: Store,
        session_id: str,
        reporter: Reporter,
        redactor: Redactor,
        stop: threading.Event | None = None,
        tracker_factory: Callable[[], Tracker] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.session_id = session_id
        self.reporter = reporter
        self.redactor = redactor
        self.outbox = Outbox(store.directory)
        self._factory = tracker_factory or (
            lambda: make_tracker(config.issues, config.session.logs_dir, redactor, stop)
        )
        self._tracker: Tracker | None = None

    @property
    def tracker(self) -> Tracker:
        """Made on first use: a green night never talks to GitHub."""
        if self._tracker is None:
            self._tracker = self._factory()
        return self._tracker

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.dispose()

    def __call__(self, report: IterationReport) -> None:
        previous = {
            fp: triage.ClusterRecord.from_dict(data)
            for fp, data in self.store.clusters(self.session_id).items()
        }
        runs = [run for phase in report.phases for run in phase.runs]
        records, actions = triage.assess(previous, runs, self.context(report))
        if not actions and not len(self.outbox):
            self._save(records, report)
            return
        result = apply(
            actions,
            self.tracker,
            self.outbox,
            self.redactor,
            dry_run=report.dry_run,
            verify=report.resumed,  # a killed run may have sent some of these already
        )
        self._save(triage.with_issue_numbers(records, result.issue_numbers), report)
        self._tell(result)

    def context(self, report: IterationReport) -> triage.TriageContext:
        phases = {p.name: p for p in self.config.phases}
        complete = frozenset(
            r.phase for r in report.phases if all(not run.harness_error for run in r.runs)
        )
        suites = {s.name: s for p in self.config.phases for s in p.suites}
        runs = [run for phase in report.phases for run in phase.runs]
        return triage.TriageContext(
            iteration=report.iteration,
            version=report.version,
            previous_version=report.previous_version,
            issues=self.config.issues,
            now=dt.datetime.now(dt.UTC),
            phases={r.phase: PhaseInfo.of(phases[r.phase], r) for r in report.phases},
            complete_phases=complete,
            flaky=frozenset(test for r in report.phases for test in r.flaky),
            repro={run.suite: suites[run.suite].run_template for run in runs},
            log_excerpts={run.suite: _tail(run.log_path) for run in runs if run.log_path},
            retest=self.config.retest,
            clusters=self.config.clusters,
        )

    def _save(self, records: dict[str, triage.ClusterRecord], report: IterationReport) -> None:
        if report.dry_run:
            return  # a dry run decides, and leaves no trace that a later real run would trust
        self.store.save_clusters(self.session_id, {fp: r.to_dict() for fp, r in records.items()})

    def _tell(self, result: SyncResult) -> None:
        for done in result.done:
            self.reporter.emit(
                "issue",
                action=done.action,
                number=done.number,
                title=done.title,
                fingerprint=done.fingerprint,
                dry_run=False,
            )
        for line in result.dry_run:
            self.reporter.emit("dry_run", detail=line)
        if result.deferred:
            self.reporter.emit("deferred", titles=result.deferred)
        if result.queued:
            self.reporter.emit("outbox", queued=result.queued, error=result.error)


def _tail(path: str) -> str:
    return process.tail(Path(path), LOG_EXCERPT_BYTES)
