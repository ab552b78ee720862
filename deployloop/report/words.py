"""Wording both renderers share, so the markdown and the HTML report say the same things."""

from __future__ import annotations

import time
from collections.abc import Sequence

from deployloop.durations import format_duration
from deployloop.logical import describe_counts
from deployloop.report.records import (
    Budget,
    Gate,
    IssueInfo,
    IssueStep,
    IterationInfo,
    PhaseStats,
    ReportData,
)
from deployloop.session import status_words

MATRIX_COLUMNS = 20  # the per-iteration gate table keeps the latest this many iterations
MARKS = {"green": "✅", "failing": "❌", "running": "⏳", "interrupted": "⏸", "empty": "⚪"}
TITLES = {
    "green": "GREEN",
    "failing": "FAILING",
    "running": "RUNNING",
    "interrupted": "INTERRUPTED (RESUMABLE)",
    "empty": "NO RESULTS",
}


def verdict_line(data: ReportData) -> str:
    """The one line that answers "is staging green?"."""
    h = data.headline
    return f"{MARKS.get(h.state, '')} {TITLES.get(h.state, h.state.upper())} — {h.text}"


def version(value: str | None) -> str:
    return value or "unknown"


def stamp(ts: float | None, with_date: bool = False) -> str:
    if ts is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S", time.localtime(ts))


def took(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else format_duration(seconds)


def seen(iteration: int | None, ver: str | None) -> str:
    if iteration is None:
        return "–"
    return f"iteration {iteration} ({version(ver)})"


def tests(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"


def rate(stats: PhaseStats | None) -> str:
    """``50.0% (1/2)``; ``not run`` when the phase produced no judged test."""
    if stats is None:
        return "not run"
    if stats.pass_rate is None:
        return "harness error" if stats.harness_errors else "no tests"
    return f"{stats.pass_rate:.1%} ({stats.passed}/{stats.judged})"


def rate_and_counts(stats: PhaseStats | None) -> str:
    """``50.0% (1/2): 1 passed, 1 failed, 1 xfailed``: :func:`rate` and the nonzero categories."""
    if stats is None or stats.pass_rate is None:
        return rate(stats)
    return f"{rate(stats)}: {describe_counts(stats.categories)}"


def result(it: IterationInfo) -> str:
    if it.green is None:
        return "⏳ running" if it.ended is None else "⏹ cut short"
    if it.green:
        return "✅ green"
    failing = [p.phase for p in it.phases if p.gate_passed is False]
    return "❌ " + (", ".join(failing) or "failing")


def gate_cell(gate: Gate | None) -> str:
    if gate is None:
        return "–"
    mark = "✅" if gate.passed else "❌"
    return f"{mark} {gate.measured or gate.text}"


def gate_rows(data: ReportData) -> list[tuple[tuple[str, str], list[Gate | None]]]:
    """(phase, gate) → its verdict in each of the matrix's iterations, in first-seen order."""
    columns = matrix_iterations(data)
    keys: dict[tuple[str, str], None] = {}
    for it in columns:
        keys.update({(g.phase, g.gate): None for g in it.gates})
    rows = []
    for key in keys:
        cells = [next((g for g in it.gates if (g.phase, g.gate) == key), None) for it in columns]
        rows.append((key, cells))
    return rows


def matrix_iterations(data: ReportData) -> Sequence[IterationInfo]:
    return data.iterations[-MATRIX_COLUMNS:]


def last_gates(data: ReportData) -> tuple[IterationInfo | None, tuple[Gate, ...]]:
    """The latest iteration that judged any gate, and its verdicts."""
    for it in reversed(data.iterations):
        if it.gates:
            return it, it.gates
    return None, ()


def step(s: IssueStep | None) -> str:
    if s is None:
        return "–"
    would = "would be " if s.dry_run else ""
    return f"{would}{seen(s.iteration, s.version)}"


def issue_name(issue: IssueInfo) -> str:
    return f"#{issue.number}" if issue.number is not None else "(no number)"


def issue_state(issue: IssueInfo) -> str:
    closed = issue.closed
    if closed is not None:
        return f"closed — verified fixed in {version(closed.version)}"
    if any(s.action == "reopen" for s in issue.steps):
        return "reopened"
    return "open"


def budget_lines(b: Budget, now: float) -> list[tuple[str, str]]:
    end = b.ended if b.ended is not None else now
    lines = [
        ("started", stamp(b.started, with_date=True)),
        ("deadline", stamp(b.deadline, with_date=True) if b.deadline else "none (no time budget)"),
        ("ended", stamp(b.ended, with_date=True) if b.ended else f"still {b.status}"),
        ("time used", took(end - b.started)),
        ("iterations", f"{b.iterations_used} of at most {b.max_iterations}"),
    ]
    if b.deadline is not None:
        lines.insert(4, ("time budget", took(b.deadline - b.started)))
    shown = status_words(b.status)
    status = shown if b.exit_code is None else f"{shown} (exit {b.exit_code})"
    lines.append(("outcome", f"{status} — {b.reason}" if b.reason else status))
    return lines
