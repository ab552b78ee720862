"""The simulator's deployed revisions: deploys in flight, gradual rollouts, rollbacks.

A deploy takes staging down for ``delay_s`` and then serves the next revision. With
``rollout_s`` it is gradual instead: for that long after the delay, each version read answers
the old or the new revision at random (two pods behind a load balancer), then the new one
only. Revisions are named ``rev-0001`` or, ``sha=True``, by a 40-hex commit SHA (the names
``sha_of`` gives), so the tests and the demo can stand for commit-SHA versions.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from typing import Any


def sha_of(number: int) -> str:
    """The commit SHA that stands for revision ``number`` when versions are SHAs."""
    return hashlib.sha1(f"revision {number}".encode()).hexdigest()


class Revisions:
    """What staging runs, settled lazily on each look (no timer thread); thread-safe."""

    def __init__(
        self, bug: bool = False, sha: bool = False, rng: random.Random | None = None
    ) -> None:
        self.sha = sha
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        self._revision = 1
        self._bug = bug
        self._deploying_until: float | None = None
        self._upcoming: tuple[int, bool | None] = (2, None)  # (revision, bug after; None: keep)
        self._rollout_until: float | None = None
        self._rollout_s = 0.0
        self._previous = 1
        self._deploys = 0

    def name(self, number: int) -> str:
        return sha_of(number) if self.sha else f"rev-{number:04d}"

    @property
    def version(self) -> str:
        """The revision a read answers; mid-rollout the old or the new one at random."""
        with self._lock:
            self._settle()
            rolling = self._rollout_until is not None and self.rng.random() < 0.5
            return self.name(self._previous if rolling else self._revision)

    @property
    def deploying(self) -> bool:
        with self._lock:
            self._settle()
            return self._deploying_until is not None

    @property
    def bug(self) -> bool:
        with self._lock:
            self._settle()
            return self._bug

    def set_bug(self, on: bool) -> None:
        with self._lock:
            self._settle()
            self._bug = on

    def deploy(
        self,
        fix: bool = True,
        delay_s: float = 1.0,
        *,
        rollout_s: float = 0.0,
        bug: bool | None = None,
        revision: int | None = None,
    ) -> str:
        """Start a deploy of ``revision`` (default: the next new one; an earlier one is a
        rollback). Afterwards the bug is ``bug`` when given, else gone when ``fix``."""
        with self._lock:
            self._settle()
            target = revision if revision is not None else self._newest() + 1
            self._upcoming = (target, bug if bug is not None else (False if fix else None))
            self._deploying_until = time.monotonic() + max(delay_s, 0.0)
            self._rollout_s = max(rollout_s, 0.0)
            self._deploys += 1
            self._settle()  # a zero delay deploys at once
            return self.name(target)

    def state(self) -> dict[str, Any]:
        with self._lock:
            self._settle()
            return {
                "version": self.name(self._revision),
                "bug": self._bug,
                "deploying": self._deploying_until is not None,
                "rolling_out": self._rollout_until is not None,
                "deploys": self._deploys,
            }

    def _newest(self) -> int:
        return max(self._revision, self._previous, self._upcoming[0] - 1)

    def _settle(self) -> None:
        now = time.monotonic()
        if self._deploying_until is not None and now >= self._deploying_until:
            self._deploying_until = None
            self._previous, (self._revision, bug) = self._revision, self._upcoming
            self._bug = self._bug if bug is None else bug
            self._rollout_until = now + self._rollout_s if self._rollout_s else None
        if self._rollout_until is not None and now >= self._rollout_until:
            self._rollout_until = None
