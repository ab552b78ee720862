"""A local webhook receiver: what apprise's ``json://`` and Slack-format (Mattermost) posts reach.

A threaded ``http.server`` on 127.0.0.1 (port 0) that records every POST (path, headers, body
parsed as JSON) and answers 200, or 500 for the next ``fail`` posts. The tests point apprise at
it, and ``deployloop demo`` sends its notifications here and lists them at the end.

    with Receiver() as receiver:
        urls = [receiver.json_url, receiver.mattermost_url]
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Post:
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when it is not JSON
    status: int  # what the receiver answered


class Receiver:
    """Records posts; ``fail`` of them (the next ones) are answered 500."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.fail = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.app = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def json_url(self) -> str:
        """apprise's generic JSON webhook, posting to ``/notify``."""
        return f"json://{self.address}/notify"

    @property
    def mattermost_url(self) -> str:
        """apprise's Mattermost webhook: a Slack-format payload to ``/hooks/<token>``."""
        return f"mmost://{self.address}/slacktoken0123456789"

    def received(self, path: str = "") -> list[Post]:
        """The posts taken (answered 200) whose path starts with ``path``."""
        with self._lock:
            return [p for p in self.posts if p.status == 200 and p.path.startswith(path)]

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take(self, path: str, headers: dict[str, str], raw: str) -> int:
        with self._lock:
            status = 500 if self.fail > 0 else 200
            self.fail = max(0, self.fail - 1)
            self.posts.append(Post(path, headers, _json_or_text(raw), status))
        return status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        app: Receiver = self.server.app  # type: ignore[attr-defined]
        status = app.take(self.path, dict(self.headers.items()), raw)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded posts are the log."""


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw
