"""What every tracker offers: find deployloop's issues by their hidden marker, create, comment,
close, reopen. The GitHub and local trackers share this shape and the marker format.

The marker is read from one fixed place only, the last non-blank line of an issue body, which
deployloop alone writes (``tracker.apply`` breaks every other marker-shaped text it posts): a
test that prints a marker can neither forge an identity nor re-tag an issue."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from deployloop.config import IssuesConfig

from deployloop.errors import TrackerError
from deployloop.issues.ledger import TrackerId

# v1 prints stay readable: issues filed before fingerprint v2 are found and re-keyed.
MARKER = re.compile(r"<!-- deployloop:fingerprint=(v[12]-[0-9a-f]{12}) -->")


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
    author: str = ""  # the login that opened it, as the tracker says ("" when it cannot tell)
    state_reason: str | None = None  # GitHub's: "completed", "not_planned", "reopened" or None

    @property
    def muted(self) -> bool:
        """Closed by someone as not planned: deployloop leaves it closed and stays quiet."""
        return self.state == "closed" and self.state_reason == "not_planned"


def marker_of(body: str | None) -> str | None:
    """The fingerprint in the marker on the last non-blank line of ``body``, if it is one;
    markers anywhere else are ignored (they may be quoted test output)."""
    lines = (body or "").rstrip().splitlines()
    found = MARKER.fullmatch(lines[-1].strip()) if lines else None
    return found.group(1) if found else None


def remark(body: str | None, old: str, new: str) -> str | None:
    """``body`` with its marker (the last non-blank line) changed from ``old`` to ``new``,
    everything else byte for byte; None when that line is not ``old``'s marker (already
    ``new``, or a person edited it): a re-key never writes anywhere else."""
    text = body or ""
    kept = text.rstrip()
    if marker_of(kept) != old:
        return None
    head, newline, _ = kept.rpartition("\n")
    return f"{head}{newline}{marker(new)}{text[len(kept) :]}"


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

    def rekey(self, number: int, old: str, new: str) -> None:
        """Re-mark issue ``number`` from fingerprint ``old`` to ``new`` (see ``remark``), with
        no comment; idempotent. Afterwards existing() lists the issue under ``new``."""
        ...

    def dispose(self) -> None:
        """Release connections; the tracker is not used afterwards."""
        ...

    def warnings(self) -> list[str]:
        """One line per problem worth a person's attention since the last call (e.g. labels
        GitHub dropped or refused); each kind of problem is reported once per tracker."""
        ...


def tracker_id(issues: IssuesConfig, logs_dir: str | Path) -> TrackerId:
    """The identity of the tracker ``issues`` configures (never its token: that rotates)."""
    if issues.tracker == "github":
        return TrackerId("github", issues.api_url or "https://api.github.com", issues.repo or "")
    directory = Path(issues.dir or Path(logs_dir) / "issues")
    return TrackerId("local", str(directory.resolve()), "")
