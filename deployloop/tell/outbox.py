"""The notification outbox: messages a receiver did not take, kept for the next try.

A JSON file in the state directory, ``notify-outbox.json``, rewritten atomically under an fcntl
lock (as the issue outbox is). Configs may share a state directory, so each entry carries its
config's key (``session.config_key``) and an outbox touches only its own. A receiver is named
by a hash of its URL, never the URL: apprise URLs carry tokens. The messages themselves were
scrubbed before they were queued. At most ``MAX_ENTRIES`` per config are kept (oldest dropped).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployloop.atomic import write_atomic

FILE_NAME = "notify-outbox.json"
MAX_ENTRIES = 200
BACKOFF_S = 60.0  # wait after a notice's first failed try, doubled after each next one
MAX_BACKOFF_S = 3600.0


@dataclass(frozen=True, slots=True)
class Notice:
    """One message for one receiver (``receiver``: ``NoticeOutbox.receiver(url)``), from
    ``session``; ``tried_at``: when it last failed (epoch seconds)."""

    receiver: str
    notice: str
    title: str
    body: str
    queued_at: float = field(default_factory=time.time)
    attempts: int = 0
    error: str = ""
    session: str = ""
    tried_at: float = 0.0

    def failed(self, error: str, now: float) -> Notice:
        return dataclasses.replace(self, attempts=self.attempts + 1, error=error, tried_at=now)

    def due(self, now: float) -> bool:
        """Whether a retry at ``now`` has waited out its backoff (``BACKOFF_S`` doubled per
        failed try, at most ``MAX_BACKOFF_S``): a dead receiver is not hammered."""
        if not self.attempts:
            return True
        wait = min(BACKOFF_S * 2.0 ** min(self.attempts - 1, 16), MAX_BACKOFF_S)
        return now >= self.tried_at + wait


class NoticeOutbox:
    """The queued notices of one config (``scope``) in ``state_dir``."""

    def __init__(self, state_dir: str | Path, scope: str) -> None:
        self.path = Path(state_dir) / FILE_NAME
        self.scope = scope

    @staticmethod
    def receiver(url: str) -> str:
        """A receiver's name in the file: 16 hex digits of its URL's SHA-256."""
        return hashlib.sha256(url.encode()).hexdigest()[:16]

    def pending(self) -> list[Notice]:
        """This config's notices, oldest first."""
        return [_notice(item) for item in self._read() if item.get("scope") == self.scope]

    def add(self, notice: Notice) -> None:
        self.save([*self.pending(), notice])

    def save(self, notices: Sequence[Notice]) -> None:
        """Replace this config's queue with ``notices``, keeping every other config's."""
        with self._locked():
            others = [item for item in self._read() if item.get("scope") != self.scope]
            own = [{**dataclasses.asdict(n), "scope": self.scope} for n in notices]
            kept = [*others, *own[-MAX_ENTRIES:]]
            if not kept:
                self.path.unlink(missing_ok=True)
                return
            write_atomic(self.path, json.dumps({"version": 1, "pending": kept}), mode=0o600)

    def _read(self) -> list[dict[str, Any]]:
        """Every config's entries; an unreadable file is set aside, not fatal."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return [item for item in raw["pending"] if isinstance(item, dict)]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError):
            self.path.replace(self.path.with_suffix(f".corrupt-{int(time.time())}.json"))
            return []

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


def _notice(item: dict[str, Any]) -> Notice:
    known = {f.name for f in dataclasses.fields(Notice)}
    return Notice(**{k: v for k, v in item.items() if k in known})
