"""The morning report: what the night did, verdict first, as markdown and as one HTML file.

``build`` reads the state and ``events.jsonl`` into plain records; ``to_markdown`` and
``to_html`` format them; ``write_reports`` leaves ``report.md`` and ``report.html`` next to
``session.md``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from deployloop.report.data import build
from deployloop.report.html import to_html
from deployloop.report.markdown import to_markdown
from deployloop.report.records import ReportData
from deployloop.state import Store

__all__ = ["ReportData", "build", "to_html", "to_markdown", "write_atomic", "write_reports"]


def write_reports(store: Store, session_id: str, redact: Callable[[str], str] = str) -> list[Path]:
    """Write ``report.md`` and ``report.html`` into the session's directory; their paths.

    ``redact`` masks secrets: suite results and cluster messages in the state are kept raw.
    """
    data = build(store, session_id)
    directory = Path(data.directory)
    return [
        write_atomic(directory / "report.md", redact(to_markdown(data))),
        write_atomic(directory / "report.html", redact(to_html(data))),
    ]


def write_atomic(path: Path, text: str) -> Path:
    """Replace ``path`` in one step: a reader sees the old report or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes it private; a report is for the team to read
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path
