"""Calls to the GitHub API with pacing and bounded retries: the policy behind every request.

Rules, from GitHub's REST documentation ("Best practices for using the REST API", "Rate limits"):
writes are serialised and spaced ``min_interval`` apart; ``Retry-After`` and ``x-ratelimit-reset``
are honoured; secondary limits without a hint wait at least a minute; 5xx and lost answers back
off exponentially, all within a bounded total wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from deployloop.clock import Clock
from deployloop.errors import TrackerError
from deployloop.issues.tracker import TrackerRejected

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    max_wait: float = 300.0  # seconds one call may spend waiting, all retries together
    backoff: float = 2.0  # first wait after a 5xx or a lost answer; doubles each time
    secondary_wait: float = 60.0  # GitHub: wait at least a minute when no header says how long


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    delay: float | None  # None: not worth retrying
    uncertain: bool  # the write may have happened
    rejected: bool = False  # this write can never succeed as it is


class Caller:
    """Runs one API operation at a time under the policy; ``clean`` scrubs error text."""

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Clock,
        stop: threading.Event,
        min_interval: float,
        clean: Callable[[str], str],
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.stop = stop
        self.min_interval = min_interval
        self.clean = clean
        self._write_lock = threading.Lock()
        self._last_write = float("-inf")

    def call(
        self,
        what: str,
        op: Callable[[], T],
        *,
        write: bool,
        recover: Callable[[], T | None] | None = None,
    ) -> T:
        """Run ``op`` with pacing and bounded retries; ``recover`` finds a lost write's result."""
        waited = 0.0
        uncertain = False
        for attempt in range(1, self.policy.attempts + 1):
            try:
                if uncertain and recover is not None:
                    # Never re-send a write that may have landed until a read says it did not.
                    done = recover()
                    if done is not None:
                        return done
                return self._attempt(op, write)
            except Exception as exc:
                failure = self._classify(exc, attempt)
            uncertain = uncertain or failure.uncertain
            if failure.delay is None:
                error = TrackerRejected if failure.rejected else TrackerError
                raise error(f"GitHub: {what}: {failure.reason}")
            if attempt == self.policy.attempts or waited + failure.delay > self.policy.max_wait:
                break
            self.clock.wait(failure.delay)
            waited += failure.delay
            if self.stop.is_set():
                raise TrackerError(f"GitHub: {what}: {failure.reason} (stopped while backing off)")
        gave_up = f"gave up after {attempt} attempts, {waited:.0f} s waited"
        raise TrackerError(f"GitHub: {what}: {failure.reason} ({gave_up})")

    def _pace(self) -> None:
        wait = self._last_write + self.min_interval - self.clock.monotonic()
        if wait > 0:
            self.clock.wait(wait)

    def _attempt(self, op: Callable[[], T], write: bool) -> T:
        if not write:
            return op()
        with self._write_lock:
            self._pace()
            try:
                return op()
            finally:
                self._last_write = self.clock.monotonic()

    def _classify(self, exc: Exception, attempt: int) -> _Failure:
        import requests
        from github import GithubException

        backoff = self.policy.backoff * 2 ** (attempt - 1)
        if isinstance(exc, GithubException):
            return self._http_failure(exc.status, exc.headers or {}, exc.data, backoff)
        if isinstance(exc, requests.exceptions.RequestException | OSError):
            return _Failure(self.clean(f"no answer: {type(exc).__name__}"), backoff, True)
        if isinstance(exc, ValueError):  # a cut-off JSON answer: the write may have landed
            return _Failure("malformed answer", backoff, True)
        raise exc

    def _http_failure(
        self, status: int, headers: dict[str, Any], data: Any, backoff: float
    ) -> _Failure:
        message = str(data.get("message", "")) if isinstance(data, dict) else str(data or "")
        reason = self.clean(f"HTTP {status}: {message[:200]}".rstrip(": "))
        limit = rate_limit_wait(status, headers, message, self.clock.time())
        if limit is not None:
            return _Failure(reason, limit if limit >= 0 else self.policy.secondary_wait, False)
        if status >= 500:
            return _Failure(reason, backoff, True)
        # 422: this write is invalid; 401/403/404 (token, permission, repo) hold for every
        # write, so those stay queued until the configuration is fixed.
        return _Failure(reason, None, False, rejected=status == 422)


def rate_limit_wait(status: int, headers: dict[str, Any], message: str, now: float) -> float | None:
    """Seconds to wait for a rate limit (-1: limited, no hint), or None when not limited."""
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    limited = status == 429 or (
        status == 403
        and (
            "retry-after" in lower
            or lower.get("x-ratelimit-remaining") == "0"
            or "rate limit" in message.lower()
        )
    )
    if not limited:
        return None
    if "retry-after" in lower:
        return max(float(lower["retry-after"]), 1.0)
    if lower.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lower:
        return max(float(lower["x-ratelimit-reset"]) - now + 1.0, 1.0)
    return -1.0
