"""The morning report: what the night did, verdict first, as markdown and as one HTML file.

``build`` reads the state store into plain records; ``to_markdown`` and
``to_html`` format them; ``write_reports`` leaves ``report.md`` and ``report.html`` next to
``session.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from deployloop.atomic import write_atomic
from deployloop.report.data import build
from deployloop.report.html import to_html
from deployloop.report.markdown import to_markdown
from deployloop.report.records import ReportData
from deployloop.state import Store

__all__ = ["ReportData", "build", "to_html", "to_markdown", "write_reports"]


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
