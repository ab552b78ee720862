"""The triage → tracker stage of an iteration: decide the issue actions, deliver them, remember.

Cluster records live in the state so a restarted run knows which issue stands for which cause;
the tracker's hidden markers are the second line of defence when the state is lost.
"""

from __future__ import annotations

import datetime as dt
import shlex
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from deployloop import process
from deployloop.config import Config, IssuesConfig, SuiteConfig
from deployloop.errors import TrackerError
from deployloop.events import (
    Deferred,
    DryRun,
    IssueDone,
    Muted,
    OutboxQueued,
    Reporter,
    TrackerWarning,
)
from deployloop.issues import triage
from deployloop.issues.compare import CompareCache
from deployloop.issues.deliver import SyncResult, apply, standing
from deployloop.issues.ledger import Ledger
from deployloop.issues.outbox import Outbox
from deployloop.issues.records import (
    ClusterRecord,
    Compare,
    IterationReport,
    PhaseInfo,
    TriageContext,
)
from deployloop.issues.tracker import Tracker, tracker_id
from deployloop.models import SuiteRun
from deployloop.redact import Redactor
from deployloop.state import Store

LOG_EXCERPT_BYTES = 65536  # enough to find this cause's own sections (issues.text.about)


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
        logs_dir = config.session.logs_dir
        # Scoped to this config's tracker: a state directory may serve several configs.
        self.outbox = Outbox(store.directory, tracker_id(config.issues, logs_dir))
        self._factory = tracker_factory or (
            lambda: make_tracker(config.issues, logs_dir, redactor, stop, store.directory)
        )
        self._tracker: Tracker | None = None
        self._compare = self._comparer()

    @property
    def tracker(self) -> Tracker:
        """Made on first use: a green night never talks to GitHub."""
        if self._tracker is None:
            self._tracker = self._factory()
        return self._tracker

    def _comparer(self) -> CompareCache | None:
        """Reads commits between versions through the GitHub tracker, when there is a source
        repo to read them from (``[target] source_repo``) and the tracker is GitHub."""
        repo = self.config.target.source_repo
        if repo is None or self.config.issues.tracker != "github":
            return None

        def fetch(base: str, head: str) -> Compare:
            from deployloop.issues.github import GitHubTracker

            tracker = self.tracker
            if not isinstance(tracker, GitHubTracker):  # a tracker made for tests
                raise TrackerError("the tracker cannot read commits")
            return tracker.compare(repo, base, head)

        return CompareCache(fetch)

    def close(self) -> None:
        """Release the tracker's connections, if one was made."""
        if self._tracker is not None:
            self._tracker.dispose()

    def __call__(self, report: IterationReport) -> None:
        own = self.store.clusters(self.session_id)
        previous = {
            fp: ClusterRecord.from_dict(data) for fp, data in (own or self._inherited()).items()
        }
        runs = _judged_runs(report)
        ctx = self.context(report)
        records, actions = triage.assess(previous, runs, ctx)
        listed = not own and not report.dry_run and _failing(records, report.iteration)
        if listed:  # the session's first word on its causes: what does the tracker hold?
            self.tracker.refresh()
            known = standing(self.tracker, self.config.issues.reopen_days)
            records, actions = triage.assess(previous, runs, replace(ctx, standing=known))
        self._tell_compare()
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
            max_new=self.config.issues.max_new_per_iteration,
            listed=listed,
        )
        self._save(triage.with_issue_numbers(records, result.issue_numbers), report)
        self._tell(result, report.version)

    def _inherited(self) -> dict[str, Any]:
        """A new session's causes, as the config's previous session left them: its issues
        are still this config's, to be adopted, announced once, and closed once fixed."""
        previous = self.store.previous_session(self.session_id)
        if previous is None:
            return {}
        kept = self.store.clusters(previous.id).items()
        return {fp: data for fp, data in kept if data.get("status") in ("open", "fixed")}

    def context(self, report: IterationReport) -> TriageContext:
        """What triage needs of ``report`` besides its runs: phases, reruns, repro, log tails."""
        phases = {p.name: p for p in self.config.phases}
        complete = frozenset(
            r.phase for r in report.phases if all(not run.harness_error for run in r.runs)
        )
        single = len(report.versions) <= 1  # a fix is verified on one version, not on a mix
        suites = {s.name: s for p in self.config.phases for s in p.suites}
        runs = [run for phase in report.phases for run in phase.runs]
        return TriageContext(
            iteration=report.iteration,
            version=report.version,
            previous_version=report.previous_version,
            issues=self.config.issues,
            now=dt.datetime.now(dt.UTC),
            phases={r.phase: PhaseInfo.of(phases[r.phase], r) for r in report.phases},
            complete_phases=complete if single else frozenset(),
            flaky={r.phase: frozenset(r.flaky) for r in report.phases},
            repro={run.suite: repro_lines(suites[run.suite]) for run in runs},
            log_excerpts={run.suite: _tail(run.log_path) for run in runs if run.log_path},
            retest=self.config.retest,
            clusters=self.config.clusters,
            passed_before=report.passed_before,
            tonight=self._tonight(),
            compare=self._compare,
        )

    def _tonight(self) -> tuple[str, ...]:
        """The versions this session's iterations ran on, oldest first (rollbacks show)."""
        rows = self.store.iterations(self.session_id)
        return tuple(str(row["version"]) for row in rows if row.get("version"))

    def _tell_compare(self) -> None:
        if self._compare is not None:
            for line in self._compare.warnings:
                self.reporter.emit(TrackerWarning(detail=line))
            self._compare.warnings.clear()

    def _save(self, records: dict[str, ClusterRecord], report: IterationReport) -> None:
        if report.dry_run:
            return  # a dry run decides, and leaves no trace that a later real run would trust
        self.store.save_clusters(self.session_id, {fp: r.to_dict() for fp, r in records.items()})

    def _tell(self, result: SyncResult, version: str | None) -> None:
        for done in result.done:
            fixed = f"verified fixed in {version or 'an unknown version'}"
            self.reporter.emit(
                IssueDone(
                    action=done.action,
                    number=done.number,
                    title=done.title,
                    fingerprint=done.fingerprint,
                    dry_run=False,
                    reason=fixed if done.action == "closed" else "",
                )
            )
        for line in result.dry_run:
            self.reporter.emit(DryRun(detail=line))
        for line in result.warnings:
            self.reporter.emit(TrackerWarning(detail=line))
        for fp, number in result.muted.items():
            self.reporter.emit(Muted(fingerprint=fp, number=number))
        if result.deferred:
            self.reporter.emit(Deferred(titles=tuple(result.deferred)))
        if result.queued:
            self.reporter.emit(OutboxQueued(queued=result.queued, error=result.error))


def make_tracker(
    issues: IssuesConfig,
    logs_dir: str | Path,
    redactor: Redactor,
    stop: threading.Event | None = None,
    state_dir: str | Path | None = None,
) -> Tracker:
    """The tracker the config asks for: GitHub, or markdown files under <logs_dir>/issues.

    ``state_dir``: where the GitHub tracker keeps its ledger (None: in memory only)."""
    if issues.tracker == "github":
        from deployloop.issues.github import GitHubTracker
        from deployloop.issues.github_calls import RetryPolicy

        # The config validator guarantees both.
        assert issues.repo is not None
        assert issues.token is not None
        identity = tracker_id(issues, logs_dir)
        ledger = Ledger.for_tracker(state_dir, identity) if state_dir else Ledger(None, identity)
        return GitHubTracker(
            issues.repo,
            issues.token,
            issues.api_url or "https://api.github.com",
            redactor,
            list_label=issues.labels[0] if issues.labels else "deployloop",
            min_interval=issues.write_interval,
            policy=RetryPolicy(backoff=issues.retry_backoff, max_wait=issues.retry_max_wait),
            stop=stop,
            ledger=ledger,
        )
    from deployloop.issues.local import LocalTracker

    return LocalTracker(issues.dir or Path(logs_dir) / "issues", redactor)


def _failing(records: dict[str, ClusterRecord], iteration: int) -> bool:
    """Some cause fails in this iteration."""
    return any(r.status == "open" and r.last_seen_iteration == iteration for r in records.values())


def repro_lines(suite: SuiteConfig) -> str:
    """How to run ``suite`` by hand, as configured: its directory, the names of the variables
    its config sets, and its run line with ``${NAME}`` unexpanded (no secret is shown)."""
    lines = [f"cd {shlex.quote(str(suite.cwd))}"] if suite.cwd else []
    if suite.env:
        lines.append(f"# with the environment its config sets: {', '.join(sorted(suite.env))}")
    return "\n".join([*lines, suite.run_template or suite.run])


def _judged_runs(report: IterationReport) -> list[SuiteRun]:
    """The runs triage judges: a suite that saw two versions belongs to neither, so its
    failures make no issue and its passes verify no fix."""
    mixed = set(report.mixed_suites)
    return [run for phase in report.phases for run in phase.runs if run.suite not in mixed]


def _tail(path: str) -> str:
    return process.tail(Path(path), LOG_EXCERPT_BYTES)
