"""What the GitHub stand-in plays and what it remembers: scripted faults and recorded requests.

A ``Fault`` is a misbehaviour for the next N requests matching a method and a path regex, after
GitHub's own answers: 5xx, a create that succeeds but answers 502, 403 secondary rate limits with
Retry-After, 429, slow answers. A ``Recorded`` is one request as the server saw it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# The message of the 403 GitHub answers when a secondary rate limit is hit.
SECONDARY_LIMIT = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the server answered, for assertions; ``body`` is its parsed JSON or None."""

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


def iter_bodies(calls: list[Recorded]) -> Iterator[str]:
    """Every string a client sent except its Authorization header: where secrets must not be."""
    for call in calls:
        yield call.path
        yield json.dumps(call.query)
        yield call.raw
        yield from (f"{k}: {v}" for k, v in call.headers.items() if k.lower() != "authorization")
