"""Cross-session records scoped to one tracker: its identity and the ledger of what it filed.

A state directory may be shared by several configs (one per repository, say). Every record
that outlives a session — outbox entries, the ledger — carries the identity of the tracker it
belongs to, ``TrackerId(kind, api_url, repo)``, and is only ever read back for that tracker.
The token is deliberately not part of the identity: it rotates, the repository does not.

The ledger remembers, per tracker, the logins deployloop filed issues under and the issue
numbers it filed per fingerprint. It is what lets deployloop recognise its own issues when
GitHub drops their labels, when a listing omits one, or after the token moved to a new account.
One JSON file per tracker (``ledger-<digest>.json`` in the state directory), written atomically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployloop.atomic import write_atomic


@dataclass(frozen=True, slots=True)
class TrackerId:
    """Where issue writes go: ``kind`` "github" or "local", the API URL (the local tracker's
    directory for "local"), and the repository ("" for local)."""

    kind: str
    api_url: str
    repo: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "api_url": self.api_url.rstrip("/"), "repo": self.repo}

    @property
    def digest(self) -> str:
        """16 hex digits naming this tracker's files; stable across runs."""
        key = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


class Ledger:
    """Logins and issue numbers one tracker filed; in memory only when ``path`` is None.

    Raises OSError when the file cannot be written (the state directory is the run's own).
    A file that cannot be read is started afresh: the ledger is a second line of defence.
    """

    def __init__(self, path: Path | None = None, tracker: TrackerId | None = None) -> None:
        self.path = path
        self.tracker = tracker
        self._logins: list[str] = []
        self._issues: dict[str, list[int]] = {}
        if path is not None:
            self._load(path)

    @classmethod
    def for_tracker(cls, state_dir: str | Path, tracker: TrackerId) -> Ledger:
        """The ledger of ``tracker`` kept in ``state_dir``."""
        return cls(Path(state_dir) / f"ledger-{tracker.digest}.json", tracker)

    def logins(self) -> tuple[str, ...]:
        """Every login deployloop filed an issue under, oldest first."""
        return tuple(self._logins)

    def issues(self) -> dict[str, int]:
        """fingerprint → the newest issue number deployloop filed for it."""
        return {fp: numbers[-1] for fp, numbers in self._issues.items() if numbers}

    def remember(self, fingerprint: str, number: int, login: str) -> None:
        """Record a filed issue and the login GitHub says filed it."""
        self.remember_many([(fingerprint, number, login)])

    def remember_many(self, filed: Iterable[tuple[str, int, str]]) -> None:
        """Record (fingerprint, number, login) triples; written once, and only if new."""
        changed = False
        for fingerprint, number, login in filed:
            numbers = self._issues.setdefault(fingerprint, [])
            if number not in numbers:
                numbers.append(number)
                numbers.sort()
                changed = True
            if login and login not in self._logins:
                self._logins.append(login)
                changed = True
        if changed:
            self._save()

    def forget(self, fingerprint: str, number: int) -> None:
        """The issue is gone (deleted or transferred): stop looking for it."""
        numbers = self._issues.get(fingerprint, [])
        if number in numbers:
            numbers.remove(number)
            self._save()

    def _load(self, path: Path) -> None:
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        try:
            self._logins = [str(x) for x in data["logins"]]
            self._issues = {str(fp): [int(n) for n in ns] for fp, ns in data["issues"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            self._logins, self._issues = [], {}

    def _save(self) -> None:
        if self.path is None:
            return
        tracker = self.tracker.to_dict() if self.tracker else None
        payload = {"version": 1, "tracker": tracker, "logins": self._logins, "issues": self._issues}
        write_atomic(self.path, json.dumps(payload, indent=1), mode=0o600)
