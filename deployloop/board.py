"""The live region's suite rows, laid out for the terminal's width (80 columns must read well).

Each row is a spinner, the suite's label, a bar, its counts and its clock; a wide terminal keeps
the running test on the same line, a narrow one moves the clock and the test to a second line.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console as RichConsole
from rich.console import ConsoleOptions, RenderableType, RenderResult
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from deployloop.durations import format_duration
from deployloop.progress import SuiteProgress

# Layout of a suite's row, in terminal cells: wide terminals keep the running test on the same line.
WIDE, ID_ROOM, BAR_MIN, BAR_MAX, LABEL_MIN, TIME_WIDTH = 120, 40, 10, 30, 12, 16


def short_id(nodeid: str) -> str:
    """``tests/e2e/test_x.py::test_a[1]`` → ``test_x.py::test_a[1]``: what names the test."""
    path, sep, rest = nodeid.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest


def clock(seconds: float) -> str:
    """Whole seconds only: a live display ticking tenths is noise."""
    return f"{int(seconds)}s" if seconds < 60 else format_duration(seconds)


@dataclass
class Row:
    """One running suite's row, before it is laid out to a width."""

    spinner: Spinner
    texts: list[Text]  # label, done/total, passed, failed, elapsed and ETA
    fraction: float | None
    failing: bool
    current: str


def suite_row(spinner: Spinner, p: SuiteProgress, now: float) -> Row:
    """One running suite's row: counts, elapsed time and ETA, its bar's fraction, its test."""
    total, eta = p.total, p.eta(now)
    width = len(str(total or 100))  # counts keep their width as they grow: no jitter
    left = "" if eta is None else (f" · ~{clock(eta)} left" if eta >= 1 else " · finishing")
    texts = [
        Text(p.label, style="bold"),
        Text(f"{p.done:>{width}}/{total}" if total else f"{p.done:>{width}}", style="bold"),
        Text(f"{p.passed:>{width}} passed", style="green"),
        Text(f"{p.failed:>{width}} failed", style="bold red" if p.failed else "dim"),
        Text(clock(p.elapsed(now)) + left, style="dim"),
    ]
    return Row(spinner, texts, fraction(p, now), p.failed > 0, short_id(p.current))


def fraction(p: SuiteProgress, now: float) -> float | None:
    """How far along the suite is, or None when nothing says (the bar pulses)."""
    if p.total:
        return min(1.0, p.done / p.total)
    if p.previous_s:  # no count yet: last run's wall time stands in for the distance
        return min(0.99, p.elapsed(now) / p.previous_s)
    return None


class Board:
    """The suites' rows, laid out for the width the terminal has: 80 columns must read well too."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def __rich_console__(self, console: RichConsole, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        one_line = width >= WIDE
        # Narrow: the clock moves down to the second line, beside the running test.
        widths = [
            max(row.texts[i].cell_len for row in self.rows) for i in range(5 if one_line else 4)
        ]
        if one_line:
            widths[4] = max(
                widths[4], TIME_WIDTH
            )  # a growing clock does not push the test id about
        id_room = ID_ROOM if one_line else 0
        shortfall = BAR_MIN + id_room - (width - 2 - sum(w + 1 for w in widths))
        if shortfall > 0:  # too narrow: the suite name gives way before the bar does
            widths[0] = max(LABEL_MIN, widths[0] - shortfall)
        room = width - 2 - sum(w + 1 for w in widths)
        bar = max(BAR_MIN, min(BAR_MAX, room - id_room))
        for row in self.rows:
            yield self._grid(row, widths, bar, room - bar - 2 if one_line else 0)
            if not one_line:
                yield self._second_line(row)

    @staticmethod
    def _grid(row: Row, widths: list[int], bar: int, id_width: int) -> Table:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=1)
        grid.add_column(width=widths[0], no_wrap=True, overflow="ellipsis")
        grid.add_column(width=bar)
        for column, w in enumerate(widths[1:], start=1):
            grid.add_column(width=w, no_wrap=True, justify="left" if column == 4 else "right")
        progress = ProgressBar(
            total=None if row.fraction is None else 1.0,
            completed=row.fraction or 0.0,
            width=bar,
            pulse=row.fraction is None,
            complete_style="red" if row.failing else "green",
        )
        cells: list[RenderableType] = [row.spinner, row.texts[0], progress]
        cells += row.texts[1 : len(widths)]
        if id_width > 0:  # wide enough: the running test closes the line instead of taking another
            grid.add_column(width=id_width, no_wrap=True, overflow="ellipsis")
            cells.append(Text(row.current, style="dim"))
        grid.add_row(*cells)
        return grid

    @staticmethod
    def _second_line(row: Row) -> Text:
        line = Text("  ", no_wrap=True, overflow="ellipsis").append_text(row.texts[4])
        if row.current:
            line.append(f"   {row.current}", style="dim")
        return line
