"""Between iterations: trigger the deploy, wait for a new version, let it settle.

While staging is mid-deploy it refuses connections or answers 5xx: that is "deploying", not a
failure. Every wait goes through the clock, so a stop signal ends it at once.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

from deployloop.clock import Clock
from deployloop.config import RedeployConfig
from deployloop.events import (
    Deploying,
    Reporter,
    RolloutProgress,
    Settled,
    VersionSeen,
    Waiting,
)
from deployloop.models import ProbeResult


class WaitEnd(enum.Enum):
    """Why a wait between iterations ended; the loop decides on this alone."""

    CHANGED = "changed"  # a new version (or, without [redeploy], the interval passed)
    TIMEOUT = "timeout"  # [redeploy] timeout passed with no new version
    INTERRUPTED = "interrupted"  # a stop signal
    DEADLINE = "deadline"  # the session's deadline comes before the next iteration could


@dataclass(frozen=True, slots=True)
class WaitResult:
    outcome: WaitEnd
    version: str | None = None


ReadVersion = Callable[[], str | None]  # None while staging cannot say (deploying)
CheckHealth = Callable[[], ProbeResult]


@dataclass
class RedeployWaiter:
    """Waits for the deployed version to differ from the one tested, then for it to settle."""

    config: RedeployConfig
    read_version: ReadVersion
    check_health: CheckHealth | None
    clock: Clock
    reporter: Reporter
    deadline: float | None = None  # wall time the session ends

    def wait(self, tested: str | None) -> WaitResult:
        started = self.clock.monotonic()
        limit = started + self.config.timeout
        self.reporter.emit(Waiting(tested=tested, reason=f"polling every {self.config.poll:g} s"))
        answering = True  # say so once when staging stops answering, not at every poll
        while True:
            version = self.read_version()
            if version is None and answering:
                self.reporter.emit(Deploying(detail="version source not answering"))
            answering = version is not None
            if version is not None and version != tested:
                self.reporter.emit(
                    VersionSeen(version=version, after_s=self.clock.monotonic() - started)
                )
                if self.config.converge > 1:
                    return self._converge(version, tested, started, limit)
                return self._settle(version)
            stop = self._pause(self.config.poll * random.uniform(0.9, 1.0), limit)
            if stop:
                return stop

    def _settle(self, version: str) -> WaitResult:
        """Healthy continuously for ``settle`` seconds on ``version`` before retesting."""
        if self.check_health is None or self.config.settle <= 0:
            self.reporter.emit(Settled(version=version, seconds=0.0))
            return WaitResult(WaitEnd.CHANGED, version)
        healthy_since: float | None = None
        step = min(self.config.poll, max(self.config.settle / 4, 0.05))
        while True:
            now = self.clock.monotonic()
            if self.check_health().ok:
                healthy_since = now if healthy_since is None else healthy_since
                if now - healthy_since >= self.config.settle:
                    self.reporter.emit(Settled(version=version, seconds=now - healthy_since))
                    return WaitResult(WaitEnd.CHANGED, version)
            else:
                healthy_since = None
            stop = self._pause(step, None)
            if stop:
                return stop

    def _converge(
        self, version: str, tested: str | None, started: float, limit: float
    ) -> WaitResult:
        """``converge`` reads in a row, ``settle / converge`` apart (so spread over ``settle``),
        that answer ``version`` with a healthy health check. An old-version read restarts the
        count (a rollout under way); a third version is settled on instead. Bounded by the
        redeploy timeout; never busy: every read follows a pause."""
        needed = self.config.converge
        step = self.config.settle / needed if self.config.settle > 0 else self.config.poll
        count, since = 0, self.clock.monotonic()
        while count < needed:
            stop = self._pause(step, limit)
            if stop:
                return stop
            now, healthy = self.read_version(), self._healthy()
            if now == version and healthy:
                count += 1
                continue
            if now is not None and now not in (version, tested):
                self.reporter.emit(
                    VersionSeen(version=now, after_s=self.clock.monotonic() - started)
                )
                version = now
            elif tested is not None and now == tested:
                self.reporter.emit(
                    RolloutProgress(version=version, old_version=tested, seen=count, needed=needed)
                )
            count, since = 0, self.clock.monotonic()
        self.reporter.emit(Settled(version=version, seconds=self.clock.monotonic() - since))
        return WaitResult(WaitEnd.CHANGED, version)

    def _healthy(self) -> bool:
        return self.check_health is None or self.check_health().ok

    def _pause(self, seconds: float, limit: float | None) -> WaitResult | None:
        """Sleep interruptibly; a WaitResult when the wait must end instead."""
        if limit is not None and self.clock.monotonic() + seconds > limit:
            seconds = max(0.0, limit - self.clock.monotonic())
        if self.deadline is not None and self.clock.time() + seconds >= self.deadline:
            self.clock.wait(max(0.0, self.deadline - self.clock.time()))
            return WaitResult(WaitEnd.DEADLINE)
        if self.clock.wait(seconds):
            return WaitResult(WaitEnd.INTERRUPTED)
        if limit is not None and self.clock.monotonic() >= limit:
            return WaitResult(WaitEnd.TIMEOUT)
        return None


@dataclass
class IntervalWaiter:
    """No [redeploy] section: iterations are simply spaced by an interval."""

    interval: float
    read_version: ReadVersion
    clock: Clock
    reporter: Reporter
    deadline: float | None = None

    def wait(self, tested: str | None) -> WaitResult:
        self.reporter.emit(Waiting(tested=tested, reason=f"next iteration in {self.interval:g} s"))
        if self.deadline is not None and self.clock.time() + self.interval >= self.deadline:
            return WaitResult(WaitEnd.DEADLINE)  # no room for another iteration: end now, not later
        if self.clock.wait(self.interval):
            return WaitResult(WaitEnd.INTERRUPTED)
        return WaitResult(WaitEnd.CHANGED, self.read_version())
