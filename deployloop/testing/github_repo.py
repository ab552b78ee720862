"""The GitHub stand-in's repository: issues, comments, labels and commit statuses in memory,
changed by GitHub's rules and shown in the JSON shapes PyGithub reads.

It behaves as GitHub does where deployloop's trust is at stake: every issue has an author
(``user.login``) and the listing filters by ``creator``; a user without push access
(``push_access = False``) gets a create's labels silently dropped; ``labels_forbidden`` answers a
label create with 403; pull requests share the issue numbers and appear in the issues list with
a ``pull_request`` key; closing sets ``state_reason`` (``close_by_hand`` plays a person);
``hidden`` issues are left out of every listing (an incomplete listing) while ``GET /issues/N``
still finds them. The HTTP side (routes, paging, auth, faults) is ``github_server``.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

STATUS_STATES = ("error", "failure", "pending", "success")  # what a commit status may be


@dataclass
class Reply:
    """One answer: HTTP status, the JSON payload, extra headers."""

    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)


def invalid() -> Reply:
    """GitHub's 422 for a body that misses what the call needs."""
    return Reply(422, {"message": "Validation Failed"})


class FakeRepository:
    """One repository's state; ``url`` is the server's base URL (``http://127.0.0.1:PORT``).

    Writes (``create_issue``, ``edit``...) expect ``_lock`` held by the caller; the public
    helpers tests call directly (``add_issue``, ``close_by_hand``...) take it themselves.
    """

    def __init__(self, repo: str, login: str, url: str) -> None:
        self.owner, self.name = repo.split("/", 1)
        self.login = login
        self.url = url
        self.push_access = True  # False: a create's labels are dropped, as GitHub does
        self.labels_forbidden = False  # True: creating a label answers 403
        self.hidden: set[int] = set()  # issue numbers every listing leaves out
        self.closed_by_hand: dict[int, tuple[str, int]] = {}  # number → (reason, comments then)
        self.issues: dict[int, dict[str, Any]] = {}
        self.labels: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}  # sha → commit statuses, oldest first
        self.history: list[tuple[str, str]] = []  # (sha, message) of the source repo, oldest first
        self._lock = threading.Lock()
        self._ids = 1000

    @property
    def repo(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    # what tests set up and read ------------------------------------------------------------
    def close_by_hand(self, number: int, reason: str = "completed") -> None:
        """A person closes issue ``number`` with GitHub's ``state_reason``."""
        with self._lock:
            issue = self.issues[number]
            issue.update(state="closed", state_reason=reason, closed_at=_now())
            self.closed_by_hand[number] = (reason, len(issue["comments"]))

    def add_label(self, name: str) -> None:
        """A label that exists before the run (as a maintainer made it)."""
        with self._lock:
            self.labels[name] = self._label(name)

    def add_issue(
        self,
        title: str,
        body: str,
        labels: list[str],
        state: str = "open",
        closed_at: str | None = None,
        author: str | None = None,
        pull: bool = False,
    ) -> int:
        """An issue (a pull request when ``pull``) filed by ``author`` (default: the token's
        user); returns its number."""
        with self._lock:
            fields = {"title": title, "body": body, "labels": labels}
            issue = self._new_issue(fields, author or self.login)
            issue["state"] = state
            issue["closed_at"] = closed_at if state == "closed" else None
            issue["pull"] = pull
            return int(issue["number"])

    def add_commit(self, message: str, sha: str | None = None) -> str:
        """A commit on top of the history (``sha``: its name, default one made from the
        message); returns its SHA."""
        with self._lock:
            made = hashlib.sha1(f"{len(self.history)}\0{message}".encode()).hexdigest()
            self.history.append((sha or made, message))
            return sha or made

    def compare(self, base: str, head: str) -> Reply:
        """GitHub's "Compare two commits" over the linear ``history`` (SHA prefixes work)."""
        at = {sha: n for n, (sha, _) in enumerate(self.history)}
        found = [
            next((at[s] for s in at if s.startswith(ref.lower())), None) for ref in (base, head)
        ]
        if found[0] is None or found[1] is None:
            return Reply(404, {"message": "Not Found"})
        start, end = found[0], found[1]
        between = self.history[start + 1 : end + 1]
        commits = [
            {"sha": sha, "commit": {"message": message}, "html_url": f"{self.url}/commit/{sha}"}
            for sha, message in between
        ]
        return Reply(200, {
            "url": f"{self.base()}/compare/{base}...{head}",
            "html_url": f"https://github.com/{self.repo}/compare/{base}...{head}",
            "status": "ahead" if end > start else "behind" if end < start else "identical",
            "ahead_by": max(0, end - start),
            "behind_by": max(0, start - end),
            "total_commits": len(commits),
            "commits": commits,
            "files": [],
        })  # fmt: skip

    def comments(self, number: int) -> list[str]:
        """The bodies of issue ``number``'s comments, oldest first."""
        with self._lock:
            return [c["body"] for c in self.issues[number]["comments"]]

    # writes, by GitHub's rules (the caller holds _lock) --------------------------------------
    def listed_issues(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        """The issues ``GET /issues`` lists for ``state``, ``labels`` and ``creator``, newest
        first; ``hidden`` ones never."""
        state = query.get("state", ["open"])[0]
        wanted = {x for x in query.get("labels", [""])[0].split(",") if x}
        creator = query.get("creator", [None])[0]
        return [
            self.issue_json(issue)
            for issue in sorted(self.issues.values(), key=lambda i: -int(i["number"]))
            if state in ("all", issue["state"])
            and wanted <= set(issue["labels"])
            and creator in (None, issue["author"])
            and issue["number"] not in self.hidden
        ]

    def create_issue(self, body: Any, login: str) -> Reply:
        """``POST /issues`` by ``login``: 201 and the issue, or 422 without a title."""
        if not isinstance(body, dict) or not body.get("title"):
            return invalid()
        if not self.push_access:
            body = {**body, "labels": []}  # GitHub drops them without a word
        for name in body.get("labels", []):
            self.labels.setdefault(name, self._label(name))  # as GitHub does
        return Reply(201, self.issue_json(self._new_issue(body, login)))

    def _new_issue(self, body: dict[str, Any], author: str) -> dict[str, Any]:
        number = len(self.issues) + 1
        self.issues[number] = {
            "number": number,
            "title": body["title"],
            "body": body.get("body"),
            "labels": list(body.get("labels", [])),
            "state": "open",
            "state_reason": None,
            "created_at": _now(),
            "closed_at": None,
            "comments": [],
            "author": author,
            "pull": False,
        }
        return self.issues[number]

    def edit(self, issue: dict[str, Any], body: dict[str, Any]) -> None:
        """``PATCH /issues/N``: a state change stamps ``closed_at`` and ``state_reason``."""
        for key in ("title", "body", "labels", "state_reason"):
            if key in body:
                issue[key] = body[key]
        if body.get("state") in ("open", "closed") and body["state"] != issue["state"]:
            issue["state"] = body["state"]
            issue["closed_at"] = _now() if body["state"] == "closed" else None
            if body["state"] == "open":
                issue["state_reason"] = "reopened"
            else:
                issue["state_reason"] = body.get("state_reason") or "completed"

    def add_comment(self, issue: dict[str, Any], body: Any, login: str) -> Reply:
        """``POST /issues/N/comments`` by ``login``: 201 and the comment, or 422 without a body."""
        if not isinstance(body, dict) or not body.get("body"):
            return invalid()
        self._ids += 1
        comment = {"id": self._ids, "body": body["body"], "created_at": _now(), "author": login}
        issue["comments"].append(comment)
        return Reply(201, self.comment_json(issue, comment))

    def create_label(self, body: dict[str, Any]) -> Reply:
        """``POST /labels``: 201, 403 when ``labels_forbidden``, 422 for a name that exists."""
        name = str(body.get("name", ""))
        if self.labels_forbidden:
            return Reply(403, {"message": "Resource not accessible by integration"})
        if not name or name in self.labels:
            errors = [{"resource": "Label", "code": "already_exists", "field": "name"}]
            return Reply(422, {"message": "Validation Failed", "errors": errors})
        self.labels[name] = self._label(name, body.get("color", "ededed"), body.get("description"))
        return Reply(201, self.labels[name])

    def add_status(self, sha: str, body: Any, login: str) -> Reply:
        """GitHub's "Create a commit status"; the server lists them (newest first)."""
        if not isinstance(body, dict) or body.get("state") not in STATUS_STATES:
            return invalid()
        self._ids += 1
        status = {
            "id": self._ids,
            "url": f"{self.base()}/statuses/{sha}",
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": body.get("context", "default"),
            "created_at": _now(),
            "updated_at": _now(),
            "creator": {"login": login, "id": 3, "type": "User"},
        }
        self.statuses.setdefault(sha, []).append(status)
        return Reply(201, status)

    # JSON shapes (the fields PyGithub reads) -------------------------------------------------
    def base(self) -> str:
        """The repository's API URL, ``{url}/repos/{owner}/{name}``."""
        return f"{self.url}/repos/{self.owner}/{self.name}"

    def repo_json(self) -> dict[str, Any]:
        """``GET /repos/{owner}/{name}``."""
        return {
            "id": 1,
            "name": self.name,
            "full_name": self.repo,
            "owner": {"login": self.owner, "id": 2, "type": "Organization"},
            "private": True,
            "url": self.base(),
            "html_url": f"{self.url}/{self.repo}",
        }

    def issue_json(self, issue: dict[str, Any]) -> dict[str, Any]:
        """An issue as the REST API shows it; a pull request carries ``pull_request``."""
        url = f"{self.base()}/issues/{issue['number']}"
        return {
            "id": 100_000 + issue["number"],
            "number": issue["number"],
            "title": issue["title"],
            "body": issue["body"],
            "state": issue["state"],
            "state_reason": issue["state_reason"],
            "labels": [self.labels.get(n) or self._label(n) for n in issue["labels"]],
            "url": url,
            "html_url": f"{self.url}/{self.repo}/issues/{issue['number']}",
            "comments_url": f"{url}/comments",
            "comments": len(issue["comments"]),
            "created_at": issue["created_at"],
            "updated_at": issue["created_at"],
            "closed_at": issue["closed_at"],
            "locked": False,
            "assignees": [],
            "user": {"login": issue["author"], "id": 3, "type": "User"},
            **({"pull_request": {"url": f"{self.base()}/pulls/{issue['number']}"}}
               if issue["pull"] else {}),
        }  # fmt: skip

    def comment_json(self, issue: dict[str, Any], comment: dict[str, Any]) -> dict[str, Any]:
        """One of ``issue``'s comments as the REST API shows it."""
        return {
            "id": comment["id"],
            "body": comment["body"],
            "created_at": comment["created_at"],
            "updated_at": comment["created_at"],
            "url": f"{self.base()}/issues/comments/{comment['id']}",
            "html_url": f"{self.url}/{self.repo}/issues/{issue['number']}",
            "issue_url": f"{self.base()}/issues/{issue['number']}",
            "user": {"login": comment["author"], "id": 3, "type": "User"},
        }

    def _label(
        self, name: str, color: str = "ededed", description: str | None = None
    ) -> dict[str, Any]:
        self._ids += 1
        return {
            "id": self._ids,
            "name": name,
            "color": color,
            "description": description,
            "default": False,
            "url": f"{self.base()}/labels/{quote(name, safe='')}",
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
