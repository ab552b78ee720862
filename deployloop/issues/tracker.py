"""What every tracker offers: find deployloop's issues by their hidden marker, create, comment,
close, reopen. The GitHub and local trackers share this shape and the marker format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from deployloop.errors import TrackerError

MARKER = re.compile(r"<!-- deployloop:fingerprint=(v1-[0-9a-f]{12}) -->")


def marker(fp: str) -> str:
    """The hidden line that ties an issue to its cluster: found again through the issues list."""
    return f"<!-- deployloop:fingerprint={fp} -->"


class TrackerRejected(TrackerError):
    """The tracker refused this one write for good (e.g. GitHub's 422): retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One issue as a tracker lists it; ``closed_at`` is ISO 8601 text, None while open."""

    number: int
    title: str
    state: Literal["open", "closed"]
    fingerprint: str | None  # from the marker in the body; None for issues deployloop did not file
    labels: tuple[str, ...] = ()
    url: str = ""
    closed_at: str | None = None


def marker_of(body: str | None) -> str | None:
    """The fingerprint in an issue body's hidden marker, if it carries one."""
    found = MARKER.search(body or "")
    return found.group(1) if found else None


def by_fingerprint(issues: list[Issue]) -> dict[str, Issue]:
    """fingerprint → issue; when a cause was filed twice (reopen window passed), the open one
    wins, then the newest."""
    chosen: dict[str, Issue] = {}
    for issue in sorted(issues, key=lambda i: (i.state == "open", i.number)):
        if issue.fingerprint:
            chosen[issue.fingerprint] = issue
    return chosen


class Tracker(Protocol):
    """An issue tracker as deployloop uses it. Writes raise TrackerError after bounded retries."""

    name: str

    def existing(self) -> dict[str, Issue]:
        """deployloop's issues (open and closed) by fingerprint; cached until refresh()."""
        ...

    def refresh(self) -> None:
        """Forget the cached listing: the next existing() reads the tracker again."""
        ...

    def create(self, title: str, body: str, labels: tuple[str, ...]) -> Issue: ...

    # verify=True: the same write may have landed before (an outbox replay): look first.
    def comment(self, number: int, body: str, *, verify: bool = False) -> None: ...

    def close(self, number: int, comment: str, *, verify: bool = False) -> None: ...

    def reopen(self, number: int, comment: str, *, verify: bool = False) -> None: ...

    def dispose(self) -> None:
        """Release connections; the tracker is not used afterwards."""
        ...
