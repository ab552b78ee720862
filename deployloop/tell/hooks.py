"""``[hooks]``: a command run for an event, the way a team hands a new issue to whoever fixes it
or promotes a green version.

``on_issue`` runs after every tracker write (created, commented, closed, reopened: the action is
in ``DEPLOYLOOP_ACTION``), ``on_red`` / ``on_green`` after every red / green iteration,
``on_session_end`` once. The command runs through ``process.run`` (its own process group, the
hook's timeout, TERM then KILL), from the config file's directory, with the event on stdin as
the JSON ``events.jsonl`` holds for it and its scalar fields as ``DEPLOYLOOP_<FIELD>`` variables
(plus ``DEPLOYLOOP_EVENT``, ``_SESSION``, ``_ITERATION``, ``_VERSION``, ``_REPORT``, and
``_ISSUE_URL`` for an issue), all scrubbed of secrets. Output goes to ``<session>/hooks.log``,
scrubbed by the redactor as it is written, like a suite log.
A hook that fails is reported (``HookRan``), never fatal. A dry run runs none: it says which
it would (``DryRun``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployloop import process
from deployloop.config_schema import HooksConfig
from deployloop.events import (
    DryRun,
    Event,
    HookRan,
    IssueDone,
    IterationEnd,
    Reporter,
    SessionEnd,
    journal_record,
)
from deployloop.models import RunEnd
from deployloop.redact import Redactor
from deployloop.tell.night import Night

MAX_VALUE = 4096  # one environment value, in characters
HOOK_PID = "hooks.pid"  # in the session directory while a hook runs (``session.stop_left_behind``)


def hook_for(event: Event) -> str | None:
    """Which ``[hooks]`` key ``event`` runs, if any."""
    match event:
        case IssueDone(dry_run=False):
            return "on_issue"
        case IterationEnd(green=True):
            return "on_green"
        case IterationEnd():
            return "on_red"
        case SessionEnd():
            return "on_session_end"
        case _:
            return None


def environment(
    record: Mapping[str, Any], night: Night, extra: Mapping[str, str]
) -> dict[str, str]:
    """``DEPLOYLOOP_*`` for a hook: the event's scalar fields, then the night's context."""
    values = {f"DEPLOYLOOP_{key.upper()}": _text(value) for key, value in record.items()}
    values.update(
        DEPLOYLOOP_EVENT=str(record["event"]),
        DEPLOYLOOP_SESSION=night.session,
        DEPLOYLOOP_ITERATION=str(night.iteration),
        DEPLOYLOOP_VERSION=night.version or "",
        DEPLOYLOOP_REPORT=str(night.reports[1]),
        **extra,
    )
    return {k: v for k, v in values.items() if "\0" not in v}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)[:MAX_VALUE]
    return str(value)[:MAX_VALUE]


class Hooks:
    """The hooks teller; with ``dry_run`` it runs nothing and reports what it would run."""

    def __init__(
        self,
        config: HooksConfig,
        cwd: Path,
        reporter: Reporter,
        redactor: Redactor,
        stop: threading.Event,
        dry_run: bool = False,
    ) -> None:
        self.config = config
        self.dry_run = dry_run
        self.cwd = cwd
        self.reporter = reporter
        self.redactor = redactor
        self.redact = redactor.redact
        self.stop = stop

    def on(self, event: Event, night: Night) -> None:
        hook = hook_for(event)
        command = getattr(self.config, hook) if hook else None
        if hook is None or command is None:
            return
        if self.dry_run:
            self.reporter.emit(DryRun(detail=f"would run {hook}: {self.redact(command)}"))
            return
        record = journal_record(event, self.redact)
        extra = {}
        if isinstance(event, IssueDone):
            extra["DEPLOYLOOP_ISSUE_URL"] = night.link(event.number)
        env = {**os.environ, **environment(record, night, extra)}
        stdin = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        self._run(hook, command, env, stdin, night)

    def _run(
        self, hook: str, command: str, env: dict[str, str], stdin: bytes, night: Night
    ) -> None:
        done = process.run(
            process.split_command(command),
            log_path=night.directory / "hooks.log",
            timeout=self.config.timeout,
            stop=self.stop,
            cwd=self.cwd,
            env=env,
            stdin_bytes=stdin,
            pid_file=night.directory / HOOK_PID,  # reaped at the next start after a kill -9
            redactor=self.redactor,  # the hook echoes what it was given: scrub as written
        )
        ok = done.returncode == 0
        detail = f"{done.start_error}" if done.start_error else f"exit {done.returncode}"
        if done.ended is not RunEnd.COMPLETED:
            detail += f" ({done.ended.value})"
        detail += f", {done.wall_s:.1f} s"
        if not ok:
            detail += f"; output in {night.directory / 'hooks.log'}"
        self.reporter.emit(HookRan(hook=hook, ok=ok, detail=self.redact(detail)))

    def close(self, night: Night) -> None:
        """Nothing is left running: every hook ran to its end or its timeout."""
