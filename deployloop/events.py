"""Events: the core reports what happens through one Reporter; sinks render, log and persist.

Kinds (data keys):
  session_start (session, config, resumed, deadline, max_iterations, logs_dir)
  iteration_start (iteration, version)   phase_start (phase)
  suite_start (phase, suite, pass, tests, progress, previous_s)
  suite_end (phase, suite, pass, counts, wall_s, harness_error, exit_code)
  phase_end (phase, passed, verdicts, gates, clusters, flaky)   skipped_phases (phases, reason)
  failed_first (passed, total, version)   issue (action, number, title, fingerprint, dry_run)
  deferred (titles)   outbox (queued, error)   dry_run (detail)   trigger (command, ok, detail)
  waiting (tested, reason, seconds)   deploying (detail)   version_seen (version, after_s)
  redeploy_timeout (tested, timeout_s, then)
  settled (version, seconds)   mixed (from_version, to_version)   health (ok, detail)
  iteration_end (iteration, green, version, duration_s, failing)
  session_end (status, exit_code, iterations, reason)   heartbeat (elapsed_s)
  report (paths, error)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployloop.models import Event

Sink = Callable[[Event], None]
# Per-test progress is for the live view only: at 1000 tests a suite it would swamp the logs.
EPHEMERAL = frozenset({"heartbeat"})


class Reporter:
    """Fans each event out to every sink, in order."""

    def __init__(self, *sinks: Sink) -> None:
        self.sinks = list(sinks)

    def add(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def emit(self, kind: str, **data: Any) -> None:
        event = Event(kind, data)
        for sink in self.sinks:
            sink(event)


def scrub(value: Any, redact: Callable[[str], str]) -> Any:
    """Apply ``redact`` to every string inside ``value``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: scrub(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, redact) for v in value]
    return value


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
        if event.kind in EPHEMERAL:
            return
        record = {
            "ts": round(event.ts, 3),
            "event": event.kind,
            **scrub(dict(event.data), self.redact),
        }
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
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


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The events of a session (the rotated part first); a torn last line is skipped."""
    events: list[dict[str, Any]] = []
    for part in (path.with_suffix(".jsonl.1"), path):
        if not part.exists():
            continue
        for line in part.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events
