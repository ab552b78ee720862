"""The GitHub tracker, through PyGithub, careful with a shared API.

- Issues are found by listing the deployloop label (state all, 100 a page), never the search API
  (it lags by minutes); the listing is cached until ``refresh()``.
- Writes are serialised and spaced ``min_interval`` apart (GitHub asks for ≥ 1 s).
- ``Retry-After`` and ``x-ratelimit-reset`` are honoured, 403/429 secondary limits and 5xx are
  backed off, all within a bounded total wait; then TrackerError (the caller keeps the write
  in the outbox).
- PyGithub's own retries are off, so a POST is never re-sent blindly: when a create's answer is
  lost (5xx, timeout) the issue may exist, so the listing is read again and searched for the
  marker before trying again. A comment is checked against the issue's comments the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from deployloop.clock import Clock, RealClock
from deployloop.errors import TrackerError
from deployloop.issues.tracker import Issue, TrackerRejected, by_fingerprint, marker_of
from deployloop.redact import Redactor

if TYPE_CHECKING:
    from github.Issue import Issue as GhIssue
    from github.Repository import Repository

T = TypeVar("T")
LABEL_COLOR = "d73a4a"


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


class GitHubTracker:
    name = "github"

    def __init__(
        self,
        repo: str,
        token: str,
        api_url: str = "https://api.github.com",
        redactor: Redactor | None = None,
        *,
        list_label: str = "deployloop",
        min_interval: float = 1.0,
        clock: Clock | None = None,
        stop: threading.Event | None = None,
        policy: RetryPolicy | None = None,
        timeout: int = 15,
    ) -> None:
        from github import Auth, Github

        self.repo_name = repo
        self.list_label = list_label
        self.min_interval = min_interval
        self.stop = stop or threading.Event()
        self.clock: Clock = clock or RealClock(self.stop)  # a backoff ends early on SIGTERM
        self.policy = policy or RetryPolicy()
        self.redactor = (redactor or Redactor()).with_secrets([token])
        # retry=None: no silent re-POST; lazy: no GET behind every object we touch.
        self._gh = Github(
            base_url=api_url.rstrip("/"),
            auth=Auth.Token(token),
            per_page=100,
            retry=None,
            timeout=timeout,
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
        )
        self._repo: Repository = self._gh.get_repo(repo)
        self._cache: dict[str, Issue] | None = None
        self._labels: set[str] | None = None  # known to exist, listed once per run
        self._write_lock = threading.Lock()
        self._last_write = float("-inf")

    # reading --------------------------------------------------------------------------------
    def existing(self) -> dict[str, Issue]:
        if self._cache is None:
            self._cache = self._call("list issues", self._list, write=False)
        return dict(self._cache)

    def refresh(self) -> None:
        self._cache = None

    def _list(self) -> dict[str, Issue]:
        found = self._repo.get_issues(state="all", labels=[self.list_label])
        return by_fingerprint([_issue(item) for item in found])

    # writing --------------------------------------------------------------------------------
    def create(self, title: str, body: str, labels: tuple[str, ...]) -> Issue:
        title, body = self.redactor.redact(title), self.redactor.redact(body)
        labels = tuple(dict.fromkeys((self.list_label, *labels)))  # the listing finds it by this
        self._ensure_labels(labels)
        fp = marker_of(body)

        def post() -> Issue:
            return _issue(self._repo.create_issue(title=title, body=body, labels=list(labels)))

        def already() -> Issue | None:
            self._cache = self._list()  # one plain read: the retry loop around it decides
            issue = self._cache.get(fp) if fp else None
            return issue if issue is not None and issue.state == "open" else None

        issue = self._call(f"create issue {title[:60]!r}", post, write=True, recover=already)
        if self._cache is not None and issue.fingerprint:
            self._cache[issue.fingerprint] = issue
        return issue

    def comment(self, number: int, body: str, *, verify: bool = False) -> None:
        body = self.redactor.redact(body)
        target = self._repo.get_issue(number)  # lazy: no GET

        def post() -> bool:
            target.create_comment(body)
            return True

        def already() -> bool | None:
            return True if any(c.body == body for c in target.get_comments()) else None

        if verify and self._call(f"read comments of #{number}", already, write=False):
            return
        self._call(f"comment on #{number}", post, write=True, recover=already)

    def close(self, number: int, comment: str, *, verify: bool = False) -> None:
        # State first: PATCH is idempotent, so a retry after a lost answer is harmless.
        self._set_state(number, "closed")
        self.comment(number, comment, verify=verify)

    def reopen(self, number: int, comment: str, *, verify: bool = False) -> None:
        self._set_state(number, "open")
        self.comment(number, comment, verify=verify)

    def dispose(self) -> None:
        self._gh.close()

    def _set_state(self, number: int, state: str) -> None:
        target = self._repo.get_issue(number)

        def patch() -> Issue:
            if state == "closed":
                target.edit(state="closed", state_reason="completed")
            else:
                target.edit(state="open")
            return _issue(target)

        issue = self._call(f"set #{number} {state}", patch, write=True)
        if self._cache is not None and issue.fingerprint:
            self._cache[issue.fingerprint] = issue

    def _ensure_labels(self, labels: tuple[str, ...]) -> None:
        """Create missing labels: listed once per run, each created at most once."""
        if self._labels is None:
            listing = self._call(
                "list labels", lambda: [x.name for x in self._repo.get_labels()], write=False
            )
            self._labels = set(listing)
        for name in labels:
            if name not in self._labels:
                self._call(f"create label {name!r}", partial(self._create_label, name), write=True)
                self._labels.add(name)

    def _create_label(self, name: str) -> bool:
        from github import GithubException

        try:
            self._repo.create_label(name, LABEL_COLOR, "filed by deployloop")
        except GithubException as exc:
            if exc.status != 422:  # 422: it exists already (created meanwhile): fine
                raise
        return True

    # retries --------------------------------------------------------------------------------
    def _call(
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
            return _Failure(self._clean(f"no answer: {type(exc).__name__}"), backoff, True)
        if isinstance(exc, ValueError):  # a cut-off JSON answer: the write may have landed
            return _Failure("malformed answer", backoff, True)
        raise exc

    def _http_failure(
        self, status: int, headers: dict[str, Any], data: Any, backoff: float
    ) -> _Failure:
        message = str(data.get("message", "")) if isinstance(data, dict) else str(data or "")
        reason = self._clean(f"HTTP {status}: {message[:200]}".rstrip(": "))
        limit = _rate_limit_wait(status, headers, message, self.clock.time())
        if limit is not None:
            return _Failure(reason, limit if limit >= 0 else self.policy.secondary_wait, False)
        if status >= 500:
            return _Failure(reason, backoff, True)
        # 422: this write is invalid; 401/403/404 (token, permission, repo) hold for every
        # write, so those stay queued until the configuration is fixed.
        return _Failure(reason, None, False, rejected=status == 422)

    def _clean(self, text: str) -> str:
        return self.redactor.redact(text)


def _rate_limit_wait(
    status: int, headers: dict[str, Any], message: str, now: float
) -> float | None:
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


def _issue(item: GhIssue) -> Issue:
    """Our Issue from a PyGithub one, reading only fields the listing carries (no lazy GETs)."""
    closed = item.closed_at
    return Issue(
        number=item.number,
        title=item.title,
        state="closed" if item.state == "closed" else "open",
        fingerprint=marker_of(item.body),
        labels=tuple(label.name for label in item.labels),
        url=item.html_url,
        closed_at=closed.isoformat() if closed else None,
    )
