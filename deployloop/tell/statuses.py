"""GitHub commit statuses on the tested commit, when versions are commit SHAs.

With ``[target] source_repo`` set and a version of 7 to 40 hex digits, the status
``deployloop/<session name>`` on that commit is ``pending`` while an iteration runs on it,
``success`` when every gate passed, ``failure`` with the failing gates in its description
(GitHub keeps 140 characters), ``error`` when the iteration was cut short (a new version
mid-run, the session interrupted). Its target is the report: ``[target] report_url`` +
``/<session>/report.html`` when the logs are published, else the report's ``file://`` URL.
A state equal to the one last set on that commit is not sent again, nor ``pending`` on a
commit that already has a verdict from this run (a retest keeps it until a new one differs).
Requests go through PyGithub and ``issues.github_calls.Caller`` (paced, bounded retries)
with the ``[issues]`` token and API URL (GitHub REST: "Create a commit status",
``POST /repos/{owner}/{repo}/statuses/{sha}``). A status that cannot be set is reported,
never fatal. A dry run sets none: it says what it would set (``DryRun``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeGuard

from deployloop.config import Config
from deployloop.errors import TrackerError
from deployloop.events import (
    CommitStatusSet,
    DryRun,
    Event,
    IterationEnd,
    IterationStart,
    Mixed,
    Reporter,
    SessionEnd,
)
from deployloop.issues.github_calls import Caller, RetryPolicy
from deployloop.oneline import one_line
from deployloop.tell.night import Night

if TYPE_CHECKING:
    from github.Repository import Repository

SHA = re.compile(r"[0-9a-fA-F]{7,40}")
MAX_DESCRIPTION = 140  # GitHub's limit for a status description
POLICY = RetryPolicy(attempts=3, max_wait=30.0)  # a status is worth less than the night's time

Post = Callable[[str, str, str, str], None]  # sha, state, description, target URL


class GitHubStatuses:
    """Sets commit statuses in ``repo``; TrackerError (scrubbed) when GitHub will not."""

    def __init__(
        self,
        repo: str,
        context: str,
        config: Config,
        clean: Callable[[str], str],
        stop: threading.Event,
    ) -> None:
        from deployloop.clock import RealClock

        self.repo_name = repo
        self.context = context
        self.issues = config.issues
        self._call = Caller(POLICY, RealClock(stop), stop, self.issues.write_interval, clean)
        self._repo: Repository | None = None

    def _repository(self) -> Repository:
        """Made on first use: PyGithub loads only when a status is set (lazy: no GET)."""
        if self._repo is None:
            from github import Auth, Github

            assert self.issues.token is not None  # the config validator requires it
            gh = Github(
                base_url=self.issues.api_url.rstrip("/"),
                auth=Auth.Token(self.issues.token),
                retry=None,
                timeout=15,
                seconds_between_requests=None,
                seconds_between_writes=None,
                lazy=True,
            )
            self._repo = gh.get_repo(self.repo_name)
        return self._repo

    def __call__(self, sha: str, state: str, description: str, target: str) -> None:
        def create() -> Any:
            commit = self._repository().get_commit(sha)
            return commit.create_status(
                state, target_url=target, description=description, context=self.context
            )

        self._call.call(f"commit status on {sha}", create, write=True)


class CommitStatuses:
    """The commit-status teller: one status per change of state on each tested commit; with
    ``dry_run`` it posts none and reports what it would post."""

    def __init__(
        self, post: Post, reporter: Reporter, report_url: str | None, dry_run: bool = False
    ) -> None:
        self.post = post
        self.dry_run = dry_run
        self.reporter = reporter
        self.report_url = report_url
        self._last: dict[str, tuple[str, str]] = {}  # sha → (state, description) last set

    def on(self, event: Event, night: Night) -> None:
        match event:
            case IterationStart(version=version) if _is_sha(version):
                self._set(night, version, "pending", f"iteration {event.iteration} running")
            case IterationEnd(version=version, green=True) if _is_sha(version):
                self._set(night, version, "success", "every gate passed")
            case IterationEnd(version=version) if _is_sha(version):
                self._set(night, version, "failure", failure_description(night))
            case Mixed(from_version=version) if _is_sha(version):
                self._set(night, version, "error", f"staging moved to {event.to_version} mid-run")
            case SessionEnd() if _is_sha(night.version) and self._pending(night.version):
                self._set(night, night.version, "error", f"session ended: {event.reason}")
            case _:
                pass

    def close(self, night: Night) -> None:
        """Nothing queued: every status was sent (or reported) when its event came."""

    def _pending(self, sha: str | None) -> bool:
        return sha is not None and self._last.get(sha, ("",))[0] == "pending"

    def _set(self, night: Night, sha: str, state: str, description: str) -> None:
        description = _clip(description)
        if self._last.get(sha) == (state, description):
            return
        if state == "pending" and sha in self._last:
            return  # a retest of a commit keeps its verdict until a different one replaces it
        if self.dry_run:
            self._last[sha] = (state, description)
            detail = f"would set commit status {state} on {sha}: {description}"
            self.reporter.emit(DryRun(detail=detail))
            return
        try:
            self.post(sha, state, description, self._target(night))
        except TrackerError as exc:
            self.reporter.emit(CommitStatusSet(sha, state, description, ok=False, error=str(exc)))
            return
        self._last[sha] = (state, description)
        self.reporter.emit(CommitStatusSet(sha, state, description, ok=True))

    def _target(self, night: Night) -> str:
        if self.report_url:
            return f"{self.report_url.rstrip('/')}/{night.session}/report.html"
        return night.reports[1].resolve().as_uri()


def failure_description(night: Night) -> str:
    """``failing: <phase gate: measured>; …``: the failing gates, as many as 140 characters hold."""
    gates = "; ".join(g.describe() for g in night.failing_gates) or "gates failing"
    return f"failing: {gates}"


def _clip(text: str) -> str:
    return one_line(text, MAX_DESCRIPTION)


def _is_sha(version: str | None) -> TypeGuard[str]:
    return version is not None and SHA.fullmatch(version) is not None
