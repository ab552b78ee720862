"""The outbox: issue writes the tracker could not take yet, kept on disk in order.

When GitHub is down or rate-limited past the tracker's bounded retries, the write and every
write after it in that iteration are stored here and replayed first on the next apply. A JSON
file written atomically (temporary file + ``os.replace``) in the state directory: after a crash
it holds either the old queue or the new one, never half of either.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployloop.atomic import write_atomic
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
    """The queue in ``<state_dir>/outbox.json``; ``save`` raises OSError when the disk refuses."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / FILE_NAME

    def pending(self) -> list[Entry]:
        """The queued writes, oldest first; an unreadable file is kept aside, not lost."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            self.path.replace(self.path.with_suffix(f".corrupt-{int(time.time())}.json"))
            return []
        return [Entry.from_dict(item) for item in raw.get("pending", [])]

    def __len__(self) -> int:
        return len(self.pending())

    def save(self, entries: Sequence[Entry]) -> None:
        """Replace the queue with ``entries`` (an empty queue removes the file)."""
        if not entries:
            self.path.unlink(missing_ok=True)
            return
        payload = {"version": 1, "pending": [entry.to_dict() for entry in entries]}
        write_atomic(self.path, json.dumps(payload, indent=1), mode=0o600)
