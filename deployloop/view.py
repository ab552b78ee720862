"""The console sink: what a person watching (or tailing) a run sees, one line per event."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deployloop.console import Console
from deployloop.models import Event
from deployloop.sessionlog import describe

STYLES: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "phase_end": lambda d: "green" if d["passed"] else "bold red",
    "iteration_end": lambda d: "bold green" if d["green"] else "bold red",
    "suite_end": lambda d: "red" if d.get("harness_error") else None,
    "session_end": lambda d: "bold",
}


class EventView:
    """Renders events through the console: styled on a terminal, timestamped plain lines off one."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if line is None:
            return
        style = STYLES.get(event.kind)
        self.console.line(line, style(event.data) if style else None)
        if event.kind == "phase_end":
            for verdict in event.data.get("verdicts", []):
                if verdict.startswith("❌"):
                    self.console.line(f"  {verdict}", "red")
