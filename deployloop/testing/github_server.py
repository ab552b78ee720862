"""A local stand-in for the GitHub REST API: the subset PyGithub uses to file issues (and to
set commit statuses).

A threaded ``http.server`` on 127.0.0.1 (port 0) that keeps issues, comments and labels in
memory, records every request (method, path, query, headers, body) for assertions, and plays
scripted faults: 5xx for the next N matching requests, a create that succeeds but answers 502,
403 secondary rate limits with Retry-After, 429, slow answers. Shipped in the package so the
tests, the soak run, the benchmarks and the demo share one fake.

It behaves as GitHub does where deployloop's trust is at stake: each token belongs to a user
(``GET /user``), every issue has an author (``user.login``) and the listing filters by
``creator``; a user without push access (``push_access = False``) gets a create's labels
silently dropped; ``labels_forbidden`` answers a label create with 403; pull requests share
the issue numbers and appear in the issues list with a ``pull_request`` key; closing sets
``state_reason`` (``close_by_hand`` plays a person); ``hidden`` issues are left out of every
listing (an incomplete listing) while ``GET /issues/N`` still finds them. ``add_commit``
makes a linear history that ``GET /compare/BASE...HEAD`` answers from.

    with FakeGitHub() as github:
        tracker = GitHubTracker("acme/platform", github.token, github.url, min_interval=0)
        github.inject(Fault("POST", r"/issues$", status=502, process=True))
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

SECONDARY_LIMIT = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


@dataclass(frozen=True, slots=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # parsed JSON, or None
    raw: str  # the body as sent
    status: int = 0  # what the server answered


@dataclass
class Fault:
    """A scripted misbehaviour for the next ``times`` requests matching method and path.

    status None: answer normally (after ``delay``). ``process``: do the request, then answer
    ``status`` anyway — the write happened but the client never learns it.
    """

    method: str | None = None  # None: any method
    path: str = ""  # regex searched in the path; "": any
    status: int | None = 500
    times: int | None = 1  # None: until clear_faults()
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "injected fault"
    process: bool = False
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method in (None, method)) and re.search(self.path, path) is not None

    @classmethod
    def secondary_limit(cls, retry_after: int | None = 60, method: str | None = None) -> Fault:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return cls(method, status=403, headers=headers, message=SECONDARY_LIMIT)

    @classmethod
    def too_many(cls, retry_after: int | None = None, method: str | None = None) -> Fault:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return cls(method, status=429, headers=headers, message="Too Many Requests")

    @classmethod
    def lost_create(cls) -> Fault:
        return cls("POST", r"/issues$", status=502, process=True, message="Bad Gateway")

    @classmethod
    def down(cls) -> Fault:
        return cls(status=503, times=None, message="Service Unavailable")


@dataclass
class _Reply:
    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeGitHub:
    """In-memory GitHub for one repository; see the module docstring."""

    def __init__(
        self,
        repo: str = "acme/platform",
        token: str = "ghp_" + "f" * 36,
        login: str = "deployloop-bot",
    ) -> None:
        self.owner, self.name = repo.split("/", 1)
        self.token = token
        self.login = login
        self.users: dict[str, str] = {token: login}  # token → login
        self.push_access = True  # False: a create's labels are dropped, as GitHub does
        self.labels_forbidden = False  # True: creating a label answers 403
        self.hidden: set[int] = set()  # issue numbers every listing leaves out
        self.closed_by_hand: dict[int, tuple[str, int]] = {}  # number → (reason, comments then)
        self.calls: list[Recorded] = []
        self.issues: dict[int, dict[str, Any]] = {}
        self.labels: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}  # sha → commit statuses, oldest first
        self.history: list[tuple[str, str]] = []  # (sha, message) of the source repo, oldest first
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ids = 1000
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.app = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def repo(self) -> str:
        return f"{self.owner}/{self.name}"

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # scripting and inspection ---------------------------------------------------------------
    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def requests(self, method: str | None = None, path: str = "") -> list[Recorded]:
        """Recorded requests matching ``method`` (None: any) and the ``path`` regex."""
        with self._lock:
            return [c for c in self.calls if method in (None, c.method) and re.search(path, c.path)]

    def add_token(self, token: str, login: str) -> None:
        """Another token GitHub accepts, belonging to ``login`` (a rotation, a new bot)."""
        with self._lock:
            self.users[token] = login

    def close_by_hand(self, number: int, reason: str = "completed") -> None:
        """A person closes issue ``number`` with GitHub's ``state_reason``."""
        with self._lock:
            issue = self.issues[number]
            issue.update(state="closed", state_reason=reason, closed_at=_now())
            self.closed_by_hand[number] = (reason, len(issue["comments"]))

    def add_label(self, name: str) -> None:
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
        import hashlib

        with self._lock:
            made = hashlib.sha1(f"{len(self.history)}\0{message}".encode()).hexdigest()
            self.history.append((sha or made, message))
            return sha or made

    def comments(self, number: int) -> list[str]:
        with self._lock:
            return [c["body"] for c in self.issues[number]["comments"]]

    # serving -------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], raw: str) -> _Reply:
        parts = urlsplit(target)
        path, query = unquote(parts.path), parse_qs(parts.query)
        body = _json_or_none(raw)
        with self._lock:
            fault = self._take_fault(method, path)
        reply: _Reply | None = None
        if fault is None or fault.status is None or fault.process:
            reply = self._answer(method, path, query, headers, body)
        if fault is not None and fault.status is not None:
            reply = _Reply(fault.status, {"message": fault.message}, dict(fault.headers))
        assert reply is not None
        with self._lock:
            self.calls.append(Recorded(method, path, query, headers, body, raw, reply.status))
        if fault is not None and fault.delay:
            threading.Event().wait(fault.delay)  # the answer is late, the work is done
        return reply

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> _Reply:
        login = self._user_of(headers.get("Authorization", ""))
        if login is None:
            return _Reply(401, {"message": "Bad credentials"})
        if path == "/user" and method == "GET":
            return _Reply(200, {"login": login, "id": 3, "type": "User"})
        prefix = f"/repos/{self.owner}/{self.name}"
        if not path.startswith(prefix):
            return _Reply(404, {"message": "Not Found"})
        with self._lock:
            return self._route(method, path[len(prefix) :], query, body, login)

    def _user_of(self, authorization: str) -> str | None:
        if not self.token:
            return self.login
        scheme, _, token = authorization.partition(" ")
        return self.users.get(token) if scheme in ("token", "Bearer") else None

    def _route(
        self, method: str, rest: str, query: dict[str, list[str]], body: Any, login: str
    ) -> _Reply:
        number = re.fullmatch(r"/issues/(\d+)(/comments)?", rest)
        on_commits = self._commits_route(method, rest, query, body, login)
        if on_commits is not None:
            return on_commits
        if rest == "" and method == "GET":
            return _Reply(200, self._repo_json())
        if rest == "/issues":
            if method == "GET":
                return self._list_issues(query)
            return self._create_issue(body, login)
        if number and int(number.group(1)) not in self.issues:
            return _Reply(404, {"message": "Not Found"})
        if number and number.group(2):
            issue = self.issues[int(number.group(1))]
            if method == "GET":
                return self._page(
                    [self._comment_json(issue, c) for c in issue["comments"]], rest, query
                )
            return self._add_comment(issue, body, login)
        if number:
            issue = self.issues[int(number.group(1))]
            if method == "PATCH":
                self._edit(issue, body or {})
            return _Reply(200, self._issue_json(issue))
        if rest == "/labels":
            if method == "GET":
                return self._page(list(self.labels.values()), rest, query)
            return self._create_label(body or {})
        label = re.fullmatch(r"/labels/(.+)", rest)
        if label and label.group(1) in self.labels:
            return _Reply(200, self.labels[label.group(1)])
        return _Reply(404, {"message": "Not Found"})

    # issues ----------------------------------------------------------------------------------
    def _list_issues(self, query: dict[str, list[str]]) -> _Reply:
        state = query.get("state", ["open"])[0]
        wanted = {x for x in query.get("labels", [""])[0].split(",") if x}
        creator = query.get("creator", [None])[0]
        found = [
            self._issue_json(issue)
            for issue in sorted(self.issues.values(), key=lambda i: -int(i["number"]))
            if state in ("all", issue["state"])
            and wanted <= set(issue["labels"])
            and creator in (None, issue["author"])
            and issue["number"] not in self.hidden
        ]
        return self._page(found, "/issues", query)

    def _create_issue(self, body: Any, login: str) -> _Reply:
        if not isinstance(body, dict) or not body.get("title"):
            return _Reply(422, {"message": "Validation Failed"})
        if not self.push_access:
            body = {**body, "labels": []}  # GitHub drops them without a word
        for name in body.get("labels", []):
            self.labels.setdefault(name, self._label(name))  # as GitHub does
        return _Reply(201, self._issue_json(self._new_issue(body, login)))

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

    def _edit(self, issue: dict[str, Any], body: dict[str, Any]) -> None:
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

    def _add_comment(self, issue: dict[str, Any], body: Any, login: str) -> _Reply:
        if not isinstance(body, dict) or not body.get("body"):
            return _Reply(422, {"message": "Validation Failed"})
        self._ids += 1
        comment = {"id": self._ids, "body": body["body"], "created_at": _now(), "author": login}
        issue["comments"].append(comment)
        return _Reply(201, self._comment_json(issue, comment))

    def _create_label(self, body: dict[str, Any]) -> _Reply:
        name = str(body.get("name", ""))
        if self.labels_forbidden:
            return _Reply(403, {"message": "Resource not accessible by integration"})
        if not name or name in self.labels:
            errors = [{"resource": "Label", "code": "already_exists", "field": "name"}]
            return _Reply(422, {"message": "Validation Failed", "errors": errors})
        self.labels[name] = self._label(name, body.get("color", "ededed"), body.get("description"))
        return _Reply(201, self.labels[name])

    # commit statuses -------------------------------------------------------------------------
    def _statuses(
        self, method: str, sha: str, body: Any, login: str, query: dict[str, list[str]]
    ) -> _Reply:
        """GitHub's "Create a commit status" (POST) and "List commit statuses for a reference"
        (GET, newest first)."""
        found = self.statuses.setdefault(sha, [])
        if method == "GET":
            return self._page(list(reversed(found)), f"/statuses/{sha}", query)
        states = ("error", "failure", "pending", "success")
        if not isinstance(body, dict) or body.get("state") not in states:
            return _Reply(422, {"message": "Validation Failed"})
        self._ids += 1
        status = {
            "id": self._ids,
            "url": f"{self._base()}/statuses/{sha}",
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": body.get("context", "default"),
            "created_at": _now(),
            "updated_at": _now(),
            "creator": {"login": login, "id": 3, "type": "User"},
        }
        found.append(status)
        return _Reply(201, status)

    def _commits_route(
        self, method: str, rest: str, query: dict[str, list[str]], body: Any, login: str
    ) -> _Reply | None:
        """Commit statuses and compares; None for any other path."""
        sha = re.fullmatch(r"/statuses/([0-9a-fA-F]{7,40})", rest)
        if sha:
            return self._statuses(method, sha.group(1), body, login, query)
        compare = re.fullmatch(r"/compare/([0-9a-fA-F]{7,40})\.\.\.([0-9a-fA-F]{7,40})", rest)
        if compare and method == "GET":
            return self._compare(compare.group(1), compare.group(2))
        return None

    def _compare(self, base: str, head: str) -> _Reply:
        """GitHub's "Compare two commits" over the linear ``history`` (SHA prefixes work)."""
        at = {sha: n for n, (sha, _) in enumerate(self.history)}
        found = [
            next((at[s] for s in at if s.startswith(ref.lower())), None) for ref in (base, head)
        ]
        if found[0] is None or found[1] is None:
            return _Reply(404, {"message": "Not Found"})
        start, end = found[0], found[1]
        between = self.history[start + 1 : end + 1]
        commits = [
            {"sha": sha, "commit": {"message": message}, "html_url": f"{self.url}/commit/{sha}"}
            for sha, message in between
        ]
        return _Reply(200, {
            "url": f"{self._base()}/compare/{base}...{head}",
            "html_url": f"https://github.com/{self.repo}/compare/{base}...{head}",
            "status": "ahead" if end > start else "behind" if end < start else "identical",
            "ahead_by": max(0, end - start),
            "behind_by": max(0, start - end),
            "total_commits": len(commits),
            "commits": commits,
            "files": [],
        })  # fmt: skip

    # JSON shapes (the fields PyGithub reads) -------------------------------------------------
    def _base(self) -> str:
        return f"{self.url}/repos/{self.owner}/{self.name}"

    def _repo_json(self) -> dict[str, Any]:
        return {
            "id": 1,
            "name": self.name,
            "full_name": self.repo,
            "owner": {"login": self.owner, "id": 2, "type": "Organization"},
            "private": True,
            "url": self._base(),
            "html_url": f"{self.url}/{self.repo}",
        }

    def _issue_json(self, issue: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._base()}/issues/{issue['number']}"
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
            **({"pull_request": {"url": f"{self._base()}/pulls/{issue['number']}"}}
               if issue["pull"] else {}),
        }  # fmt: skip

    def _comment_json(self, issue: dict[str, Any], comment: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": comment["id"],
            "body": comment["body"],
            "created_at": comment["created_at"],
            "updated_at": comment["created_at"],
            "url": f"{self._base()}/issues/comments/{comment['id']}",
            "html_url": f"{self.url}/{self.repo}/issues/{issue['number']}",
            "issue_url": f"{self._base()}/issues/{issue['number']}",
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
            "url": f"{self._base()}/labels/{quote(name, safe='')}",
        }

    def _page(self, items: list[Any], rest: str, query: dict[str, list[str]]) -> _Reply:
        """One page of ``items`` with GitHub's Link header (next, last, prev, first)."""
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = max(int(query.get("page", ["1"])[0]), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []
        for rel, n in (("prev", page - 1), ("next", page + 1), ("first", 1), ("last", last)):
            if (rel in ("prev", "first") and page > 1) or (rel in ("next", "last") and page < last):
                links.append(f'<{self._page_url(rest, query, n)}>; rel="{rel}"')
        headers = {"Link": ", ".join(links)} if links else {}
        return _Reply(200, items[(page - 1) * per_page : page * per_page], headers)

    def _page_url(self, rest: str, query: dict[str, list[str]], page: int) -> str:
        params = {k: v[0] for k, v in query.items() if k != "page"}
        return f"{self._base()}{rest}?{urlencode({**params, 'page': page})}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stalls

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        app: FakeGitHub = self.server.app  # type: ignore[attr-defined]
        reply = app.handle(self.command, self.path, dict(self.headers.items()), raw)
        data = json.dumps(reply.payload).encode()
        try:
            self.send_response(reply.status)
            for key, value in {
                "Content-Type": "application/json; charset=utf-8",
                **reply.headers,
            }.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a slow-answer fault)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded calls are the log."""


def _json_or_none(raw: str) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iter_bodies(calls: list[Recorded]) -> Iterator[str]:
    """Every string a client sent except its Authorization header: where secrets must not be."""
    for call in calls:
        yield call.path
        yield json.dumps(call.query)
        yield call.raw
        yield from (f"{k}: {v}" for k, v in call.headers.items() if k.lower() != "authorization")
