"""The passes of one iteration's suites: each run between two reads of the staging version,
rerun once when the version moved under it, saved to the store and told as events.

``SeenVersions`` keeps what those reads saw, for the iteration's report and restart.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from deployloop.config import PhaseConfig, SuiteConfig
from deployloop.dispatch import record_run
from deployloop.events import JUnitRepaired, Mixed, Reporter, SuiteStart
from deployloop.iteration import IterationResult, Services, Session
from deployloop.models import RunEnd, SuiteRun
from deployloop.runner import SuiteJob, progress_path
from deployloop.shards import Shard
from deployloop.state import Store


class Passes:
    """Runs the suite passes of iteration ``n`` of ``session``; one instance per iteration."""

    def __init__(
        self, n: int, session: Session, store: Store, services: Services, reporter: Reporter
    ) -> None:
        self.n = n
        self.session = session
        self.store = store
        self.services = services
        self.reporter = reporter
        self.versions = SeenVersions()

    def run(
        self,
        phase: PhaseConfig,
        suite: SuiteConfig,
        version: str | None,
        pass_name: str,
        select: Sequence[str] = (),
        shard: Shard | None = None,
        watch: Callable[[Path], contextlib.AbstractContextManager[None]] | None = None,
    ) -> SuiteRun:
        """One pass of ``suite``, stamped with the version staging answered before and after it
        (a read that fails stands for no change). ``watch``, given the pass's progress file,
        is entered while the pass runs (``retest.FirstVerdict.watching``).

        A run that saw two versions is rerun on the newer one, once per suite and pass in an
        iteration; mixed again, it stands with the harness error "staging serves mixed versions
        A/B": neither a fix nor a regression (IterationReport.mixed_suites)."""
        before = self.services.read_version() or version
        run = self._once(phase, suite, before, pass_name, select, shard, watch)
        after = self.services.read_version() or before
        if before is None or after is None or after == before or run.ended is not RunEnd.COMPLETED:
            self.versions.saw(suite.name, before)
            return run
        rerun = self.versions.claim_rerun(suite.name, pass_name) and not self.services.stop.is_set()
        self.reporter.emit(
            Mixed(from_version=before, to_version=after, suite=suite.name, rerun=rerun)
        )
        if rerun:
            return self.run(phase, suite, after, pass_name, select, shard, watch)
        pair = "/".join(sorted((before, after)))  # one wording whichever pod answered first
        mixed = replace(run, harness_error=f"staging serves mixed versions {pair}")
        self.store.save_run(self.session.id, self.n, pass_name, mixed)
        self.versions.saw(suite.name, before, after)
        return mixed

    def _once(
        self,
        phase: PhaseConfig,
        suite: SuiteConfig,
        version: str | None,
        pass_name: str,
        select: Sequence[str],
        shard: Shard | None = None,
        watch: Callable[[Path], contextlib.AbstractContextManager[None]] | None = None,
    ) -> SuiteRun:
        base = self.session.directory / str(self.n)
        # "+" is in no suite name (config_values.Name), so suite "s.rerun" never meets s's rerun
        stem = suite.name if pass_name == "full" else f"{suite.name}+{pass_name}"
        job = SuiteJob(
            phase=phase,
            suite=suite,
            junit_path=base / f"{stem}.xml",
            log_path=base / f"{stem}.log",
            select=tuple(select),
            deadline=self._deadline(),
            version=version,
            shard=shard,
        )
        self.reporter.emit(
            SuiteStart(
                phase=phase.name,
                suite=suite.name,
                tests=len(select) or suite.expect_tests,
                progress=str(progress_path(job)),
                previous_s=self.store.last_wall_s(self.session.id, suite.name),
                pass_name=pass_name,
            )
        )
        with contextlib.nullcontext() if watch is None else watch(progress_path(job)):
            run = self.services.run_suite(job)
        record_run(self.store, self.reporter, self.session.id, self.n, pass_name, run)
        if run.repairs:  # told in the run's story, not only in the suite's log
            self.reporter.emit(JUnitRepaired(phase=phase.name, suite=suite.name, notes=run.repairs))
        return run

    def _deadline(self) -> float | None:
        if self.session.deadline is None:
            return None
        clock = self.services.clock
        return clock.monotonic() + max(0.0, self.session.deadline - clock.time())


class SeenVersions:
    """The versions one iteration's suites ran on, read around each run (``Passes.run``).

    Locked: a phase's suites (and shards) may run in parallel threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[str, ...]] = {}  # suite → versions its last run saw
        self._reruns: set[tuple[str, str]] = set()  # (suite, pass) already rerun as mixed

    def saw(self, suite: str, *versions: str | None) -> None:
        with self._lock:
            self._seen[suite] = tuple(dict.fromkeys(v for v in versions if v is not None))

    def claim_rerun(self, suite: str, pass_name: str) -> bool:
        """True the first time a (suite, pass) asks: the one mixed rerun it gets."""
        with self._lock:
            first = (suite, pass_name) not in self._reruns
            self._reruns.add((suite, pass_name))
            return first

    def all(self) -> tuple[str, ...]:
        """Every version seen, in the order first seen."""
        with self._lock:
            return tuple(dict.fromkeys(v for seen in self._seen.values() for v in seen))

    def mixed_suites(self) -> tuple[str, ...]:
        """Suites whose run saw two versions even after their rerun."""
        with self._lock:
            return tuple(suite for suite, seen in self._seen.items() if len(seen) > 1)

    def stamped(self, result: IterationResult) -> IterationResult:
        """``result`` on the one version its suites saw (staging may have moved between the
        iteration's first read and its first suite); unchanged when they saw none or several."""
        seen = self.all()
        return replace(result, version=seen[0]) if len(seen) == 1 else result
