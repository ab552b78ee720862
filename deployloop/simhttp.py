"""The simulator's plain HTTP on the WebSocket server: request bodies and answers.

websockets serves the handshake path only; these let the same port answer plain HTTP requests
with bodies (``POST /api/orders``, the control calls) and any status.
"""

from __future__ import annotations

import http
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

_MAX_HEAD = 64 * 1024
_CONTENT_LENGTH = re.compile(
    rb"^content-length:[ \t]*(\d+)[ \t]*\r\n", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True, slots=True)
class Reply:
    """One plain HTTP answer: a str payload goes out as text, anything else as JSON."""

    status: int
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)


class BodyAwareConnection(ServerConnection):
    """Lets plain HTTP requests carry a body (POST /api/orders, control calls).

    websockets parses only handshake requests and refuses any with a body, so the body is cut
    off here before parsing and kept in ``http_body`` for ``process_request``.
    """

    http_body: bytes = b""
    _buffer: bytes = b""
    _passthrough: bool = False

    def data_received(self, data: bytes) -> None:
        if self._passthrough:
            super().data_received(data)
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEAD:
                self._release(self._buffer)  # let websockets refuse the oversized head
            return
        head, rest = self._buffer[: end + 4], self._buffer[end + 4 :]
        match = _CONTENT_LENGTH.search(head)
        length = int(match.group(1)) if match else 0
        if len(rest) < length:
            return
        self.http_body = rest[:length]
        self._release(_CONTENT_LENGTH.sub(b"", head) + rest[length:])

    def _release(self, data: bytes) -> None:
        self._passthrough = True
        self._buffer = b""
        super().data_received(data)


def response(reply: Reply) -> Response:
    """``reply`` as a websockets HTTP response (the connection closes after it)."""
    plain = isinstance(reply.payload, str)
    body = reply.payload.encode() if plain else json.dumps(reply.payload).encode()
    headers = Headers(
        {
            "Content-Type": "text/plain; charset=utf-8" if plain else "application/json",
            "Content-Length": str(len(body)),
            "Connection": "close",
            **reply.headers,
        }
    )
    return Response(reply.status, http.HTTPStatus(reply.status).phrase, headers, body)


def json_object(raw: bytes) -> dict[str, Any] | None:
    """``raw`` as a JSON object, or None when it is not JSON or not an object."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
