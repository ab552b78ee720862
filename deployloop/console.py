"""All output goes through here: a live rich view on a terminal, plain timestamped lines off one.

Colour follows the usual conventions: only on a terminal, never with NO_COLOR or TERM=dumb.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import IO, Any

from rich.console import Console as RichConsole
from rich.console import RenderableType


def is_interactive(stream: IO[str]) -> bool:
    """A human is watching: a terminal that can take cursor codes."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM", "") != "dumb"


class Console:
    """Renders text, tables and JSON for one output stream."""

    def __init__(self, stream: IO[str] | None = None, interactive: bool | None = None) -> None:
        """``interactive`` None: decided by the stream (a terminal); tests may force it."""
        self.stream = stream or sys.stdout
        self.interactive = is_interactive(self.stream) if interactive is None else interactive
        self.rich = RichConsole(
            file=self.stream,
            force_terminal=self.interactive,
            no_color=not self.interactive or "NO_COLOR" in os.environ,
            highlight=False,
            # Test ids, messages, versions and file text are untrusted: "[ping]" or
            # "[/api/users/1]" must print as written, never be read as markup or ":emoji:".
            markup=False,
            emoji=False,
            soft_wrap=not self.interactive,
            width=None if self.interactive else 120,
        )

    def line(self, text: str, style: str | None = None) -> None:
        """One log-like line: styled on a terminal, timestamped plain text off one."""
        if self.interactive:
            self.rich.print(text, style=style)
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self.stream.write(f"{stamp} {text}\n")
            self.stream.flush()

    def show(self, renderable: RenderableType) -> None:
        """A table or panel; off a terminal it is drawn without colour or cursor codes."""
        self.rich.print(renderable)

    def json(self, payload: Any) -> None:
        self.stream.write(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
        self.stream.flush()


def error(message: str, *, prefix: bool = True) -> None:
    """An expected failure, on stderr, without a traceback; ``prefix=False`` for lines that
    name their own place (a config's ``FILE:LINE: message``), one or many alike."""
    bare = not prefix or "\n" in message
    sys.stderr.write(f"{message}\n" if bare else f"deployloop: {message}\n")
    sys.stderr.flush()
