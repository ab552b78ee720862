"""The console sink: what a person watching (or tailing) a run sees, one line per event."""

from __future__ import annotations

from deployloop.console import Console
from deployloop.events import (
    Event,
    FailedFirstSuite,
    IterationEnd,
    PhaseEnd,
    SessionEnd,
    SuiteEnd,
)
from deployloop.sessionlog import describe


def style(event: Event) -> str | None:
    """The rich style of an event's line; None for the console's plain default."""
    match event:
        case PhaseEnd(passed=passed):
            return "green" if passed else "bold red"
        case IterationEnd(green=green):
            return "bold green" if green else "bold red"
        case SuiteEnd(harness_error=error):
            return "red" if error else None
        case FailedFirstSuite(corrects=corrects, harness_error=error):
            return "bold yellow" if corrects is not None or error else None
        case SessionEnd():
            return "bold"
        case _:
            return None


class EventView:
    """Renders events through the console: styled on a terminal, timestamped plain lines off one."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: Event) -> None:
        self.console.line(describe(event), style(event))
        if isinstance(event, PhaseEnd):
            for verdict in event.verdicts:
                if verdict.startswith("❌"):
                    self.console.line(f"  {verdict}", "red")
