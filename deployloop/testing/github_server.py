"""A local stand-in for the GitHub REST API: the subset PyGithub uses to file issues (and to
set commit statuses).

A threaded ``http.server`` on 127.0.0.1 (port 0) in front of an in-memory repository
(``github_repo``: issues, comments, labels, statuses and GitHub's rules on them). This module
routes requests, pages listings with GitHub's Link header, checks tokens, records every request
(method, path, query, headers, body) for assertions, and plays scripted faults
(``github_faults``). Shipped in the package so the tests, the soak run, the benchmarks and the
demo share one fake.

Each token belongs to a user (``GET /user``); ``add_token`` adds one. An unknown token is 401.

    with FakeGitHub() as github:
        tracker = GitHubTracker("acme/platform", github.token, github.url, min_interval=0)
        github.inject(Fault("POST", r"/issues$", status=502, process=True))
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from deployloop.testing.github_faults import SECONDARY_LIMIT, Fault, Recorded, iter_bodies
from deployloop.testing.github_repo import FakeRepository, Reply

# One import for every user of the fake: these names were always imported from this module.
__all__ = ["SECONDARY_LIMIT", "FakeGitHub", "Fault", "Recorded", "iter_bodies"]


class FakeGitHub(FakeRepository):
    """In-memory GitHub for one repository, served over HTTP; see the module docstring."""

    def __init__(
        self,
        repo: str = "acme/platform",
        token: str = "ghp_" + "f" * 36,
        login: str = "deployloop-bot",
    ) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.app = self  # type: ignore[attr-defined]
        host, port = self._server.server_address[:2]
        super().__init__(repo, login, f"http://{host!s}:{port}")
        self.token = token
        self.users: dict[str, str] = {token: login}  # token → login
        self.calls: list[Recorded] = []
        self.faults: list[Fault] = []
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # lifecycle -----------------------------------------------------------------------------
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

    # serving -------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], raw: str) -> Reply:
        """Answer one request (``target``: path and query), playing the first matching fault,
        and record it."""
        parts = urlsplit(target)
        path, query = unquote(parts.path), parse_qs(parts.query)
        body = _json_or_none(raw)
        with self._lock:
            fault = self._take_fault(method, path)
        reply: Reply | None = None
        if fault is None or fault.status is None or fault.process:
            reply = self._answer(method, path, query, headers, body)
        if fault is not None and fault.status is not None:
            reply = Reply(fault.status, {"message": fault.message}, dict(fault.headers))
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
    ) -> Reply:
        login = self._user_of(headers.get("Authorization", ""))
        if login is None:
            return Reply(401, {"message": "Bad credentials"})
        if path == "/user" and method == "GET":
            return Reply(200, {"login": login, "id": 3, "type": "User"})
        prefix = f"/repos/{self.owner}/{self.name}"
        if not path.startswith(prefix):
            return Reply(404, {"message": "Not Found"})
        with self._lock:
            return self._route(method, path[len(prefix) :], query, body, login)

    def _user_of(self, authorization: str) -> str | None:
        if not self.token:
            return self.login
        scheme, _, token = authorization.partition(" ")
        return self.users.get(token) if scheme in ("token", "Bearer") else None

    def _route(
        self, method: str, rest: str, query: dict[str, list[str]], body: Any, login: str
    ) -> Reply:
        number = re.fullmatch(r"/issues/(\d+)(/comments)?", rest)
        on_commits = self._commits_route(method, rest, query, body, login)
        if on_commits is not None:
            return on_commits
        if rest == "" and method == "GET":
            return Reply(200, self.repo_json())
        if rest == "/issues":
            if method == "GET":
                return self._page(self.listed_issues(query), rest, query)
            return self.create_issue(body, login)
        if number and int(number.group(1)) not in self.issues:
            return Reply(404, {"message": "Not Found"})
        if number and number.group(2):
            issue = self.issues[int(number.group(1))]
            if method == "GET":
                return self._page(
                    [self.comment_json(issue, c) for c in issue["comments"]], rest, query
                )
            return self.add_comment(issue, body, login)
        if number:
            issue = self.issues[int(number.group(1))]
            if method == "PATCH":
                self.edit(issue, body or {})
            return Reply(200, self.issue_json(issue))
        if rest == "/labels":
            if method == "GET":
                return self._page(list(self.labels.values()), rest, query)
            return self.create_label(body or {})
        label = re.fullmatch(r"/labels/(.+)", rest)
        if label and label.group(1) in self.labels:
            return Reply(200, self.labels[label.group(1)])
        return Reply(404, {"message": "Not Found"})

    def _statuses(
        self, method: str, sha: str, body: Any, login: str, query: dict[str, list[str]]
    ) -> Reply:
        """GitHub's "List commit statuses for a reference" (GET, newest first) and "Create a
        commit status" (POST)."""
        found = self.statuses.setdefault(sha, [])
        if method == "GET":
            return self._page(list(reversed(found)), f"/statuses/{sha}", query)
        return self.add_status(sha, body, login)

    def _commits_route(
        self, method: str, rest: str, query: dict[str, list[str]], body: Any, login: str
    ) -> Reply | None:
        """Commit statuses and compares; None for any other path."""
        sha = re.fullmatch(r"/statuses/([0-9a-fA-F]{7,40})", rest)
        if sha:
            return self._statuses(method, sha.group(1), body, login, query)
        compare = re.fullmatch(r"/compare/([0-9a-fA-F]{7,40})\.\.\.([0-9a-fA-F]{7,40})", rest)
        if compare and method == "GET":
            return self.compare(compare.group(1), compare.group(2))
        return None

    def _page(self, items: list[Any], rest: str, query: dict[str, list[str]]) -> Reply:
        """One page of ``items`` with GitHub's Link header (next, last, prev, first)."""
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = max(int(query.get("page", ["1"])[0]), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []
        for rel, n in (("prev", page - 1), ("next", page + 1), ("first", 1), ("last", last)):
            if (rel in ("prev", "first") and page > 1) or (rel in ("next", "last") and page < last):
                links.append(f'<{self._page_url(rest, query, n)}>; rel="{rel}"')
        headers = {"Link": ", ".join(links)} if links else {}
        return Reply(200, items[(page - 1) * per_page : page * per_page], headers)

    def _page_url(self, rest: str, query: dict[str, list[str]], page: int) -> str:
        params = {k: v[0] for k, v in query.items() if k != "page"}
        return f"{self.base()}{rest}?{urlencode({**params, 'page': page})}"


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
