"""The pass-rate chart: an inline SVG line chart, one line per phase, one point per iteration.

No script and no external fetch: it must render from a file opened on a phone at 7 a.m.
Every string that reaches the markup goes through ``html.escape``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from deployloop.report import words
from deployloop.report.records import ReportData

COLOURS = ("#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#db2777", "#0891b2", "#65a30d")
WIDTH, PLOT_HEIGHT = 760, 260
LEFT, RIGHT, TOP = 64, 20, 14
INSET = 24  # keeps the first and last points off the axis and the edge
MAX_LABELS = 12  # more iterations than this: label every k-th so the labels stay readable
LABEL_CHARS = 12  # versions differ at the end (Cloud Run revisions): keep the tail


@dataclass(frozen=True, slots=True)
class Point:
    phase: str
    iteration: int
    version: str | None
    x: float
    y: float
    label: str


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def chart(data: ReportData) -> str:
    """The whole ``<svg>`` element; empty when no iteration has run."""
    if not data.iterations:
        return ""
    height = TOP + PLOT_HEIGHT + (120 if _tilted(data) else 34)
    series = [(index, _points(data, phase)) for index, phase in enumerate(data.phases)]
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="pass rate per phase per iteration" xmlns="http://www.w3.org/2000/svg">',
        *_axes(),
        *_x_labels(data),
        *(_line(index, points) for index, points in series if points),
    ]
    # Points after every line, the first phase's (largest) first: none is hidden behind a line.
    for index, points in series:
        parts += _dots(index, points)
    parts.append("</svg>")
    return "\n".join(parts)


def _tilted(data: ReportData) -> bool:
    longest = max(len(words.version(it.version)) for it in data.iterations)
    return len(data.iterations) * min(longest, LABEL_CHARS) > 48


def _x(i: int, count: int) -> float:
    plot = WIDTH - LEFT - RIGHT - 2 * INSET
    start = LEFT + INSET
    return start + plot / 2 if count == 1 else start + plot * i / (count - 1)


def _y(rate: float) -> float:
    return TOP + PLOT_HEIGHT * (1.0 - rate)


def _axes() -> list[str]:
    out = []
    for pct in (0, 25, 50, 75, 100):
        y = _y(pct / 100)
        out.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{pct}%</text>'
        )
    bottom = _y(0.0)
    out.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom:.1f}"/>')
    return out


def _x_labels(data: ReportData) -> list[str]:
    count = len(data.iterations)
    stride = max(1, math.ceil(count / MAX_LABELS))
    tilt = _tilted(data)
    out = []
    for i, it in enumerate(data.iterations):
        if (count - 1 - i) % stride:
            continue  # counted from the end: the latest version always has its label
        x, y = _x(i, count), _y(0.0) + 18
        name = words.version(it.version)
        shown = name if len(name) <= LABEL_CHARS else "…" + name[1 - LABEL_CHARS :]
        anchor = "end" if tilt else "middle"
        turn = f' transform="rotate(-50 {x:.1f} {y:.1f})"' if tilt else ""
        out.append(
            f'<text class="xlabel" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{turn}>'
            f"<title>iteration {it.n}: {escape(name)}</title>{escape(shown)}</text>"
        )
    return out


def _points(data: ReportData, phase: str) -> list[Point]:
    count = len(data.iterations)
    out = []
    for i, it in enumerate(data.iterations):
        stats = it.phase(phase)
        if stats is None or stats.pass_rate is None:
            continue  # not run (fail_fast) or a harness error: no rate to plot
        label = f"{phase} · iteration {it.n} · {words.version(it.version)} · {words.rate(stats)}"
        out.append(Point(phase, it.n, it.version, _x(i, count), _y(stats.pass_rate), label))
    return out


def _line(index: int, points: Sequence[Point]) -> str:
    coords = " ".join(f"{p.x:.1f},{p.y:.1f}" for p in points)
    return f'<polyline class="series" fill="none" stroke="{colour(index)}" points="{coords}"/>'


def _dots(index: int, points: Sequence[Point]) -> list[str]:
    stroke = colour(index)
    # Later phases get smaller dots, so equal rates show as rings instead of hiding each other.
    radius = max(2.5, 7.0 - 1.6 * index)
    return [
        f'<circle class="point" cx="{p.x:.1f}" cy="{p.y:.1f}" r="{radius:.1f}" fill="{stroke}" '
        f'data-phase="{escape(p.phase)}" data-iteration="{p.iteration}">'
        f"<title>{escape(p.label)}</title></circle>"
        for p in points
    ]
