"""The GitHub tracker, through PyGithub, careful with a shared API.

- Issues are found by listing the issues their author opened (``creator=``, state all, 100 a
  page), never the search API (it lags by minutes), and never by label: GitHub silently drops
  the labels of a create when the token's user lacks push access. An issue is deployloop's only
  when its author is the token's user (``GET /user``) or a login deployloop filed under before
  (the ledger), and it is not a pull request (the REST list returns those too). A fingerprint
  the ledger knows but the listing lacks is fetched by number, never filed again. The listing
  is cached until ``refresh()``.
- Labels GitHub dropped from a create, or refused to create (403), are one warning each.
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
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

from deployloop.clock import Clock, RealClock
from deployloop.issues.github_calls import Caller, RetryPolicy, rate_limit_wait
from deployloop.issues.ledger import Ledger
from deployloop.issues.records import Commit, Compare
from deployloop.issues.tracker import Issue, by_fingerprint, marker_of, remark
from deployloop.redact import Redactor

if TYPE_CHECKING:
    from github import GithubException
    from github.Issue import Issue as GhIssue
    from github.Repository import Repository

T = TypeVar("T")
LABEL_COLOR = "d73a4a"


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
        ledger: Ledger | None = None,
    ) -> None:
        from github import Auth, Github

        self.repo_name = repo
        self.list_label = list_label
        self.min_interval = min_interval
        self.stop = stop or threading.Event()
        self.clock: Clock = clock or RealClock(self.stop)  # a backoff ends early on SIGTERM
        self.redactor = (redactor or Redactor()).with_secrets([token])
        self._call = Caller(
            policy or RetryPolicy(), self.clock, self.stop, min_interval, self._clean
        )
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
        self.ledger = ledger or Ledger()
        self._login: str | None = None  # the token's user, once asked
        self._asked_login = False
        self._unlabelable: set[str] = set()  # labels GitHub refused to create (403)
        self._warnings: dict[str, str] = {}  # kind → line, once per tracker
        self._told: set[str] = set()

    # reading --------------------------------------------------------------------------------
    def existing(self) -> dict[str, Issue]:
        if self._cache is None:
            self._cache = self._call.call("list issues", self._list, write=False)
        return dict(self._cache)

    def refresh(self) -> None:
        self._cache = None

    def _list(self) -> dict[str, Issue]:
        owners = self._owners()
        found = [
            _issue(item)
            for login in owners
            for item in self._repo.get_issues(state="all", creator=cast(Any, login))
            if not _is_pull(item)
        ]
        listed = by_fingerprint([issue for issue in found if issue.author in owners])
        self.ledger.remember_many((fp, i.number, i.author) for fp, i in listed.items())
        return {**self._unlisted(listed), **listed}

    def _owners(self) -> tuple[str, ...]:
        """The logins whose issues are deployloop's: the token's user, then the ledger's."""
        login = self._whoami()
        return tuple(dict.fromkeys([*([login] if login else []), *self.ledger.logins()]))

    def _whoami(self) -> str | None:
        """The token's user (one GET per tracker); None when GitHub will not say (an app's
        installation token gets 403): then only the ledger's logins are trusted."""
        from github import GithubException

        if not self._asked_login:
            try:
                self._login = str(self._gh.get_user().login)
            except GithubException as exc:
                if exc.status not in (403, 404) or self._limited(exc):
                    raise
            self._asked_login = True
        return self._login

    def _unlisted(self, listed: dict[str, Issue]) -> dict[str, Issue]:
        """Issues the ledger says deployloop filed but the listing lacks, read by number: a
        listing can be incomplete, and a missing issue must never be filed again."""
        found: dict[str, Issue] = {}
        for fp, number in self.ledger.issues().items():
            if fp in listed:
                continue
            issue = self._fetch(number)
            if issue is None:
                self.ledger.forget(fp, number)
            else:
                found[fp] = replace(issue, fingerprint=fp)
        return found

    def _fetch(self, number: int) -> Issue | None:
        """Issue ``number`` when it exists and is an issue; None when deleted or a pull."""
        from github import GithubException

        item = self._repo.get_issue(number)
        try:
            item.complete()
        except GithubException as exc:
            if exc.status in (404, 410):
                return None
            raise
        return None if _is_pull(item) else _issue(item)

    # writing --------------------------------------------------------------------------------
    def create(self, title: str, body: str, labels: tuple[str, ...]) -> Issue:
        title, body = self.redactor.redact(title), self.redactor.redact(body)
        labels = tuple(dict.fromkeys((self.list_label, *labels)))
        self._ensure_labels(labels)
        labels = tuple(x for x in labels if x not in self._unlabelable)
        fp = marker_of(body)

        def post() -> Issue:
            return _issue(self._repo.create_issue(title=title, body=body, labels=list(labels)))

        def already() -> Issue | None:
            self._cache = self._list()  # one plain read: the retry loop around it decides
            issue = self._cache.get(fp) if fp else None
            return issue if issue is not None and issue.state == "open" else None

        issue = self._call.call(f"create issue {title[:60]!r}", post, write=True, recover=already)
        if issue.fingerprint:
            self.ledger.remember(issue.fingerprint, issue.number, issue.author)
        self._check_labels(issue, labels)
        if self._cache is not None and issue.fingerprint:
            self._cache[issue.fingerprint] = issue
        return issue

    def warnings(self) -> list[str]:
        lines = [line for kind, line in self._warnings.items() if kind not in self._told]
        self._told.update(self._warnings)
        return lines

    def _warn(self, kind: str, line: str) -> None:
        self._warnings.setdefault(kind, self._clean(line))

    def _check_labels(self, issue: Issue, asked: tuple[str, ...]) -> None:
        """GitHub drops a create's labels without an error when the user lacks push access."""
        dropped = [name for name in asked if name not in issue.labels]
        if dropped:
            self._warn(
                "labels dropped",
                f"GitHub dropped label(s) {', '.join(dropped)} from new issue #{issue.number} "
                f"in {self.repo_name}: the token's user likely lacks push access; deployloop "
                "still finds its issues by author and its ledger",
            )

    def comment(self, number: int, body: str, *, verify: bool = False) -> None:
        body = self.redactor.redact(body)
        target = self._repo.get_issue(number)  # lazy: no GET

        def post() -> bool:
            target.create_comment(body)
            return True

        def already() -> bool | None:
            return True if any(c.body == body for c in target.get_comments()) else None

        if verify and self._call.call(f"read comments of #{number}", already, write=False):
            return
        self._call.call(f"comment on #{number}", post, write=True, recover=already)

    def close(self, number: int, comment: str, *, verify: bool = False) -> None:
        # State first: PATCH is idempotent, so a retry after a lost answer is harmless.
        self._set_state(number, "closed")
        self.comment(number, comment, verify=verify)

    def reopen(self, number: int, comment: str, *, verify: bool = False) -> None:
        self._set_state(number, "open")
        self.comment(number, comment, verify=verify)

    def rekey(self, number: int, old: str, new: str) -> None:
        """Edit the marker line of #``number``'s body (PATCH: idempotent, so retried safely);
        the ledger learns ``new`` either way, so the issue is found even if a person edited
        the marker away."""
        target = self._repo.get_issue(number)  # lazy: the body is read inside the call

        def patch() -> Issue:
            body = remark(target.body, old, new)
            if body is not None:
                target.edit(body=body)
            return replace(_issue(target), fingerprint=new)

        issue = self._call.call(f"re-key #{number}", patch, write=True)
        self.ledger.forget(old, number)
        self.ledger.remember(new, number, issue.author)
        if self._cache is not None:
            self._cache.pop(old, None)
            self._cache[new] = issue

    def compare(self, repo: str, base: str, head: str) -> Compare:
        """What changed in ``repo`` from commit ``base`` to ``head``: one GET of GitHub's compare
        API (its first page: up to 250 commits, oldest first); TrackerError when it fails."""

        def read() -> Compare:
            found = self._gh.get_repo(repo).compare(base, head)
            raw = found.raw_data
            commits = tuple(
                Commit(str(c.get("sha", "")), str((c.get("commit") or {}).get("message", "")))
                for c in raw.get("commits") or ()
                if isinstance(c, dict)
            )
            url = f"https://github.com/{repo}/compare/{base}...{head}"
            return Compare(base, head, url, commits, int(raw.get("total_commits") or 0))

        return self._call.call(f"compare {base[:12]}...{head[:12]}", read, write=False)

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

        issue = self._call.call(f"set #{number} {state}", patch, write=True)
        if self._cache is not None and issue.fingerprint:
            self._cache[issue.fingerprint] = issue

    def _ensure_labels(self, labels: tuple[str, ...]) -> None:
        """Create missing labels: listed once per run, each created at most once."""
        if self._labels is None:
            listing = self._call.call(
                "list labels", lambda: [x.name for x in self._repo.get_labels()], write=False
            )
            self._labels = set(listing)
        for name in labels:
            if name not in self._labels and name not in self._unlabelable:
                made = self._call.call(
                    f"create label {name!r}", partial(self._create_label, name), write=True
                )
                (self._labels if made else self._unlabelable).add(name)

    def _create_label(self, name: str) -> bool:
        """True once the label exists; False when GitHub forbids creating it (403)."""
        from github import GithubException

        try:
            self._repo.create_label(name, LABEL_COLOR, "filed by deployloop")
        except GithubException as exc:
            if exc.status == 403 and not self._limited(exc):
                self._warn(
                    f"label {name}",
                    f"GitHub refused to create label {name!r} in {self.repo_name} (HTTP 403): "
                    "create it by hand; issues are filed without it meanwhile",
                )
                return False
            if exc.status != 422:  # 422: it exists already (created meanwhile): fine
                raise
        return True

    def _limited(self, exc: GithubException) -> bool:
        """A 403 that is a rate limit (retried) rather than a refusal."""
        data, now = exc.data, self.clock.time()
        message = str(data.get("message", "")) if isinstance(data, dict) else ""
        return rate_limit_wait(exc.status, exc.headers or {}, message, now) is not None

    def _clean(self, text: str) -> str:
        return self.redactor.redact(text)


def _issue(item: GhIssue) -> Issue:
    """Our Issue from a PyGithub one, reading only fields the listing carries (no lazy GETs)."""
    closed = item.closed_at
    raw = _raw(item)
    user = raw.get("user")
    return Issue(
        number=item.number,
        title=item.title,
        state="closed" if item.state == "closed" else "open",
        fingerprint=marker_of(item.body),
        labels=tuple(label.name for label in item.labels),
        url=item.html_url,
        closed_at=closed.isoformat() if closed else None,
        author=str(user.get("login") or "") if isinstance(user, dict) else "",
        state_reason=raw.get("state_reason"),
    )


def _is_pull(item: GhIssue) -> bool:
    """The REST issues list returns pull requests too, marked by a ``pull_request`` key."""
    return _raw(item).get("pull_request") is not None


def _raw(item: GhIssue) -> dict[str, Any]:
    """The JSON GitHub sent for ``item``. PyGithub's properties would fetch the whole issue
    again for a key the answer left out (``pull_request`` is absent on plain issues)."""
    return cast(dict[str, Any], item._rawData)
