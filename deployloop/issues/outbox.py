"""The outbox: issue writes the tracker could not take yet, kept on disk in order.

When GitHub is down or rate-limited past the tracker's bounded retries, the write and every
write after it in that iteration are stored here and replayed first on the next apply. A JSON
file written atomically (temporary file + ``os.replace``) in the state directory: after a crash
it holds either the old queue or the new one, never half of either.

Configs may share a state directory, so every entry carries the identity of the tracker it
was queued for (kind, API URL, repository; see ``deployloop.ledger.TrackerId``). An outbox
reads and replays only its own tracker's entries and keeps the others' untouched; the
read-modify-write of ``save`` holds an fcntl lock so two daemons never drop each other's writes.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployloop.atomic import write_atomic
from deployloop.issues.ledger import TrackerId
from deployloop.issues.records import IssueAction

FILE_NAME = "outbox.json"


@dataclass(frozen=True, slots=True)
class Entry:
    """One queued write: the action, when it was first queued, attempts so far, last error."""

    action: IssueAction
    queued_at: float = field(default_factory=time.time)
    attempts: int = 1
    error: str = ""
    replay: bool = False  # set once it was queued: its first attempt may have landed

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.to_dict(),
            "queued_at": self.queued_at,
            "attempts": self.attempts,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        return cls(
            IssueAction.from_dict(data["action"]),
            float(data.get("queued_at", 0.0)),
            int(data.get("attempts", 1)),
            str(data.get("error", "")),
            replay=True,
        )


class Outbox:
    """The writes queued for one tracker (``tracker`` None: entries queued without an
    identity, as older versions wrote them)."""

    def __init__(self, state_dir: str | Path, tracker: TrackerId | None = None) -> None:
        self.path = Path(state_dir) / FILE_NAME
        self.tracker = tracker
        self._key = tracker.to_dict() if tracker else None

    def pending(self) -> list[Entry]:
        """This tracker's queued writes, oldest first; an unreadable file is kept aside."""
        return [Entry.from_dict(item) for item in self._read() if self._mine(item)]

    def _mine(self, item: dict[str, Any]) -> bool:
        return item.get("tracker") == self._key

    def _read(self) -> list[dict[str, Any]]:
        """Every tracker's raw entries."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            self.path.replace(self.path.with_suffix(f".corrupt-{int(time.time())}.json"))
            return []
        return list(raw.get("pending", []))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def __len__(self) -> int:
        return len(self.pending())

    def save(self, entries: Sequence[Entry]) -> None:
        """Replace this tracker's queue with ``entries``, keeping every other tracker's
        (a queue left empty by all removes the file)."""
        with self._locked():
            others = [item for item in self._read() if not self._mine(item)]
            own = [{**entry.to_dict(), "tracker": self._key} for entry in entries]
            if not others and not own:
                self.path.unlink(missing_ok=True)
                return
            payload = {"version": 1, "pending": [*others, *own]}
            write_atomic(self.path, json.dumps(payload, indent=1), mode=0o600)
