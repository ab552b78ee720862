"""The morning report as markdown: the verdict on the first line, then the night's story."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from deployloop import __version__
from deployloop.oneline import one_line
from deployloop.report import words
from deployloop.report.records import ReportData

BARS = "▁▂▃▄▅▆▇█"
MESSAGE_CHARS = 160


def to_markdown(data: ReportData) -> str:
    sections = [
        [f"# {text(words.verdict_line(data))}", "", _about(data)],
        _still_failing(data),
        _timeline(data),
        _chart(data),
        _gates(data),
        _clusters(data),
        _issues(data),
        _flaky(data),
        _slowest(data),
        _versions(data),
        _waits(data),
        _redeploy_problems(data),
        _notifications(data),
        _budget(data),
    ]
    return "\n\n".join("\n".join(s) for s in sections if s) + "\n"


def _about(data: ReportData) -> str:
    return f"Session {code(data.session)} · logs {code(data.directory)} · deployloop {__version__}"


def _still_failing(data: ReportData) -> list[str]:
    h = data.headline
    if not h.failing and not h.open_clusters:
        return []
    out = ["## What still fails", ""]
    for f in h.failing:
        out.append(
            f"- **{text(f.phase)}** failing since {words.seen(f.since_iteration, f.since_version)}"
        )
        out += [f"  - {text(g.text)}" for g in f.gates]
    for c in h.open_clusters:
        issue = f" — issue #{c.issue_number}" if c.issue_number else ""
        out.append(
            f"- cluster {code(c.fingerprint)} ({words.tests(c.size)}, {text(c.phase)}) since "
            f"{words.seen(c.first_seen_iteration, c.first_seen_version)}{issue}: "
            f"{code(short(c.message))}"
        )
    return out


def _timeline(data: ReportData) -> list[str]:
    if not data.iterations:
        return ["## Timeline", "", "No iteration has started."]
    head = ["#", "version", "started", "duration", "result", *data.phases, "failed-first"]
    rows = []
    for it in data.iterations:
        quick = f"{it.failed_first[0]}/{it.failed_first[1]} pass" if it.failed_first else "–"
        rows.append(
            [
                str(it.n),
                code(words.version(it.version)),
                words.stamp(it.started),
                words.took(it.duration_s),
                words.result(it),
                *(words.rate_and_counts(it.phase(p)) for p in data.phases),
                quick,
            ]
        )
    return ["## Timeline", "", *table(head, rows)]


def _chart(data: ReportData) -> list[str]:
    if not data.iterations:
        return []
    out = ["## Pass rate per phase (full runs, one mark per iteration)", "", "```"]
    width = max(len(p) for p in data.phases) if data.phases else 0
    for phase in data.phases:
        rates = [it.phase(phase) for it in data.iterations]
        values = [s.pass_rate if s else None for s in rates]
        spark = "".join(_bar(v) for v in values)
        last = next((v for v in reversed(values) if v is not None), None)
        tail = "–" if last is None else f"{percent(last)} now"
        out.append(f"{phase.ljust(width)}  {spark}  {tail}")
    out.append("```")
    return out


def percent(rate: float) -> str:
    """A pass rate (0..1) in whole percent, never rounded up to 100 % or down to 0 %:
    99.9 % is not "100 %", a phase with one failure must not read as green."""
    shown = f"{rate:.0%}"
    if shown == "100%" and rate < 1.0:
        return f"{math.floor(rate * 1000) / 10:.1f}%"  # 0.9999 → "99.9%"
    if shown == "0%" and rate > 0.0:
        return "<1%"
    return shown


def _bar(value: float | None) -> str:
    """A bar whose full height is kept for 100 % and its lowest for 0 %."""
    if value is None:
        return "·"
    top = len(BARS) - 1
    height = min(top, int(value * top + 0.5))
    if value < 1.0:
        height = min(height, top - 1)
    return BARS[max(height, 1) if value > 0.0 else 0]


def _gates(data: ReportData) -> list[str]:
    last, gates = words.last_gates(data)
    if last is None:
        return []
    out = [f"## Gates — iteration {last.n} ({text(words.version(last.version))})", ""]
    out += table(
        ["phase", "gate", "measured", "threshold", "result"],
        [
            [
                text(g.phase),
                text(g.gate),
                text(g.measured),
                text(g.threshold),
                ("✅ pass" if g.passed else "❌ FAIL")
                + (f" — {text(g.reason)}" if g.reason else ""),
            ]
            for g in gates
        ],
    )
    columns = words.matrix_iterations(data)
    if len(columns) > 1:
        out += ["", "### Gates per iteration", ""]
        head = ["phase", "gate", *(f"{it.n} · {words.version(it.version)}" for it in columns)]
        rows = [
            [text(phase), text(gate), *(text(words.gate_cell(c)) for c in cells)]
            for (phase, gate), cells in words.gate_rows(data)
        ]
        out += table(head, rows)
    return out


def _clusters(data: ReportData) -> list[str]:
    if not data.clusters:
        return []
    rows = [
        [
            code(c.fingerprint),
            text(c.shown_status),
            text(c.phase),
            str(c.size),
            words.seen(c.first_seen_iteration, c.first_seen_version),
            words.seen(c.last_seen_iteration, c.last_seen_version),
            f"#{c.issue_number}" if c.issue_number else "–",
            code(short(c.message)),
        ]
        for c in data.clusters
    ]
    head = ["cluster", "status", "phase", "tests", "first seen", "last seen", "issue", "message"]
    return ["## Failure clusters", "", *table(head, rows)]


def _issues(data: ReportData) -> list[str]:
    if not data.issues:
        return ["## Issues", "", "No issue was filed, updated or closed."]
    rows = [
        [
            words.issue_name(i),
            text(i.title),
            words.step(i.opened),
            str(i.updates),
            words.issue_state(i),
            code(i.fingerprint),
        ]
        for i in data.issues
    ]
    head = ["issue", "title", "opened", "updates", "state", "cluster"]
    return ["## Issues", "", *table(head, rows)]


def _flaky(data: ReportData) -> list[str]:
    if not data.flaky:
        return []
    rows = [[code(f.test), text(f.phase), ", ".join(map(str, f.iterations))] for f in data.flaky]
    return [
        "## Flaky tests (failed, then passed on rerun)",
        "",
        *table(["test", "phase", "iterations"], rows),
    ]


def _slowest(data: ReportData) -> list[str]:
    if not data.slowest:
        return []
    rows = [
        [code(s.test), text(s.phase), text(s.suite), words.took(s.duration_s), s.outcome]
        for s in data.slowest
    ]
    head = ["test", "phase", "suite", "duration", "outcome"]
    return [f"## Slowest tests (last iteration, top {len(rows)})", "", *table(head, rows)]


def _versions(data: ReportData) -> list[str]:
    """The version story: the timeline, each cause across versions, phases not started."""
    if not (data.versions or data.not_started):
        return []
    rows = [
        [code(v.version), words.stamp(v.appeared), words.stamp(v.settled),
         ", ".join(str(n) for n in v.iterations)]
        for v in data.versions
    ]  # fmt: skip
    out = ["## Versions", "", *table(["version", "appeared", "settled", "iterations"], rows)]
    if data.causes:
        out += ["", "Causes across versions:", ""]
        out += [f"- {code(c.fingerprint)} ({text(c.phase)}): {text(c.line)}" for c in data.causes]
    out += [f"- {text(line)}" for line in data.not_started]
    return out


def _waits(data: ReportData) -> list[str]:
    if not data.waits:
        return []
    rows = [
        [str(w.after_iteration or "–"), code(w.version), words.took(w.after_s), words.stamp(w.ts)]
        for w in data.waits
    ]
    return [
        "## Redeploy waits",
        "",
        *table(["after iteration", "new version", "waited", "seen at"], rows),
    ]


def _redeploy_problems(data: ReportData) -> list[str]:
    if not data.redeploy_problems:
        return []
    out = ["## Redeploy problems", ""]
    for p in data.redeploy_problems:
        out.append(f"- after iteration {p.after_iteration or '–'}: {text(p.text)}")
    return out


def _notifications(data: ReportData) -> list[str]:
    if not data.notifications:
        return []
    rows = [
        [words.stamp(n.ts), n.notice, code(n.via), "sent" if n.ok else "failed", text(n.title)]
        for n in data.notifications
    ]
    return ["## Notifications", "", *table(["at", "notice", "to", "", "title"], rows)]


def _budget(data: ReportData) -> list[str]:
    lines = words.budget_lines(data.budget, data.generated)
    return ["## Budget", "", *(f"- {name}: {text(value)}" for name, value in lines)]


# markdown escaping -------------------------------------------------------------------------
def table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def text(value: str) -> str:
    """Untrusted text in a table cell or list item: one line, no markup, pipes escaped."""
    flat = " ".join(str(value).split())
    return re.sub(r"([\\<>|\[\]])", r"\\\1", flat)


def code(value: str) -> str:
    """A code span that holds any text: fenced by more backticks than it contains."""
    flat = " ".join(str(value).split()).replace("|", "\\|")
    runs = [len(r) for r in re.findall(r"`+", flat)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def short(message: str) -> str:
    return one_line(message, MESSAGE_CHARS)
