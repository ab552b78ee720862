"""``events.jsonl``: every event of a session, one JSON object a line (see ``events.base``)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployloop.events.caps import capped
from deployloop.events.kinds import Event, event_from_json


def scrub(value: Any, redact: Callable[[str], str]) -> Any:
    """Apply ``redact`` to every string inside ``value``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: scrub(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, redact) for v in value]
    return value


def journal_record(event: Event, redact: Callable[[str], str] = str) -> dict[str, Any]:
    """The JSON object ``events.jsonl`` holds for ``event``: its fields, ``ts`` to the
    millisecond, every string passed through ``redact``."""
    record = {**event.to_json(), "ts": round(event.ts, 3)}  # a millisecond is precise enough
    return dict(scrub(record, redact))


class Journal:
    """``events.jsonl``: append-only, flushed per event, rotated once past ``max_bytes``."""

    def __init__(
        self, path: Path, redact: Callable[[str], str] = str, max_bytes: int = 50_000_000
    ) -> None:
        self.path = path
        self.redact = redact
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: Event) -> None:
        line = json.dumps(journal_record(capped(event), self.redact), ensure_ascii=False) + "\n"
        self._rotate_if_full()
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()

    def _rotate_if_full(self) -> None:
        try:
            if self.path.stat().st_size >= self.max_bytes:
                os.replace(self.path, self.path.with_suffix(".jsonl.1"))
        except FileNotFoundError:
            pass


def read_journal(path: Path) -> list[Event]:
    """The events of a session (the rotated part first).

    A line that is not an event (a torn last line, an unknown kind, a wrong shape) is skipped.
    """
    events: list[Event] = []
    for part in (path.with_suffix(".jsonl.1"), path):
        if not part.exists():
            continue
        for line in part.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                if isinstance(record, dict):
                    events.append(event_from_json(record))
            except ValueError:  # a JSONDecodeError or an EventShapeError
                continue
    return events
