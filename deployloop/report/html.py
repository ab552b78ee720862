"""The morning report as one self-contained HTML file: inline CSS and SVG, no script, no fetch.

Test names, messages and versions come from untrusted output: every one goes through ``esc``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from deployloop import __version__
from deployloop.report import svg, words
from deployloop.report.records import Gate, PhaseStats, ReportData
from deployloop.report.style import STYLE

# Emoji fonts are missing on many servers and some phones; these marks render everywhere.
PLAIN_MARKS = str.maketrans({"✅": "✓", "❌": "✗", "⏳": "…", "⏹": "■", "⚪": "–"})


def esc(value: object) -> str:
    return escape(str(value).translate(PLAIN_MARKS), quote=True)


def to_html(data: ReportData) -> str:
    body = "\n".join(
        part
        for part in (
            _verdict(data),
            _still_failing(data),
            _chart(data),
            _timeline(data),
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
        )
        if part
    )
    title = f"{words.verdict_line(data)} · deployloop {data.session}"
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n<footer>deployloop {__version__} morning report · generated "
        f"{esc(words.stamp(data.generated, with_date=True))} · logs {esc(data.directory)}"
        "</footer>\n</main>\n</body>\n</html>\n"
    )


def _verdict(data: ReportData) -> str:
    h = data.headline
    mark = words.MARKS.get(h.state, "")
    title = words.TITLES.get(h.state, h.state.upper())
    open_issues = sum(1 for i in data.issues if i.closed is None and i.number is not None)
    b = data.budget
    cards = [
        (f"{b.iterations_used} / {b.max_iterations}", "iterations"),
        (words.version(h.version), "last version tested"),
        (words.took((b.ended or data.generated) - b.started), "time used"),
        (str(sum(1 for c in data.clusters if c.status == "open")), "open clusters"),
        (str(open_issues), "open issues"),
    ]
    card_html = "".join(
        f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for v, k in cards
    )
    return (
        f'<header class="verdict {esc(h.state)}"><h1>{esc(mark)} {esc(title)}</h1>'
        f"<p>{esc(h.text)}</p>"
        f'<p class="meta">session {esc(data.session)} · started '
        f"{esc(words.stamp(b.started, with_date=True))}</p></header>\n"
        f'<section class="cards">{card_html}</section>'
    )


def _still_failing(data: ReportData) -> str:
    h = data.headline
    if not h.failing and not h.open_clusters:
        return ""
    items = []
    for f in h.failing:
        gates = "".join(f"<li>{_gate_text(g)}</li>" for g in f.gates)
        items.append(
            f"<li><b>{esc(f.phase)}</b> failing since "
            f"{esc(words.seen(f.since_iteration, f.since_version))}<ul>{gates}</ul></li>"
        )
    for c in h.open_clusters:
        issue = f" — issue #{c.issue_number}" if c.issue_number else ""
        items.append(
            f"<li>cluster <code>{esc(c.fingerprint)}</code> ({words.tests(c.size)}, "
            f"{esc(c.phase)}) since {esc(words.seen(c.first_seen_iteration, c.first_seen_version))}"
            f"{esc(issue)}: <code>{esc(c.message)}</code></li>"
        )
    return f'<section><h2>What still fails</h2><ul class="fails">{"".join(items)}</ul></section>'


def _gate_text(g: Gate) -> str:
    return f'<span class="{"ok" if g.passed else "bad"}">{esc(g.text)}</span>'


def _chart(data: ReportData) -> str:
    drawing = svg.chart(data)
    if not drawing:
        return ""
    legend = "".join(
        f'<li><i style="background:{svg.colour(i)}"></i>{esc(p)}</li>'
        for i, p in enumerate(data.phases)
    )
    return (
        "<section><h2>Pass rate per phase</h2>"
        '<p class="meta">passed ÷ (passed + failed + errors) of each iteration\'s full runs; '
        "x axis: the deployed version</p>"
        f'<ul class="legend">{legend}</ul><figure>{drawing}</figure></section>'
    )


def _timeline(data: ReportData) -> str:
    if not data.iterations:
        return "<section><h2>Timeline</h2><p>No iteration has started.</p></section>"
    rows = []
    for it in data.iterations:
        quick = f"{it.failed_first[0]}/{it.failed_first[1]} pass" if it.failed_first else "–"
        state = "ok" if it.green else ("bad" if it.green is False else "")
        cells = [
            esc(it.n),
            f"<code>{esc(words.version(it.version))}</code>",
            esc(words.stamp(it.started)),
            esc(words.took(it.duration_s)),
            f'<span class="{state}">{esc(words.result(it))}</span>',
            *(_rate_cell(it.phase(p)) for p in data.phases),
            esc(quick),
        ]
        rows.append(cells)
    head = ["#", "version", "started", "duration", "result", *data.phases, "failed-first"]
    return f"<section><h2>Timeline</h2>{_table(head, rows)}</section>"


def _rate_cell(stats: PhaseStats | None) -> str:
    cls = (
        "" if stats is None or stats.gate_passed is None else ("ok" if stats.gate_passed else "bad")
    )
    return f'<span class="{cls}">{esc(words.rate_and_counts(stats))}</span>'


def _gates(data: ReportData) -> str:
    last, gates = words.last_gates(data)
    if last is None:
        return ""
    rows = [
        [
            esc(g.phase),
            esc(g.gate),
            esc(g.measured),
            esc(g.threshold),
            _pass_fail(g),
        ]
        for g in gates
    ]
    out = (
        f"<section><h2>Gates — iteration {esc(last.n)} ({esc(words.version(last.version))})</h2>"
        + _table(["phase", "gate", "measured", "threshold", "result"], rows)
    )
    columns = words.matrix_iterations(data)
    if len(columns) > 1:
        head = ["phase", "gate", *(f"{it.n} · {words.version(it.version)}" for it in columns)]
        matrix = [
            [esc(phase), esc(gate), *(_matrix_cell(c) for c in cells)]
            for (phase, gate), cells in words.gate_rows(data)
        ]
        out += "<h3>Gates per iteration</h3>" + _table(head, matrix)
    return out + "</section>"


def _pass_fail(g: Gate) -> str:
    word = "✅ pass" if g.passed else "❌ FAIL"
    reason = f" — {esc(g.reason)}" if g.reason else ""
    return f'<span class="{"ok" if g.passed else "bad"}">{esc(word)}</span>{reason}'


def _matrix_cell(gate: Gate | None) -> str:
    if gate is None:
        return "–"
    return f'<span class="{"ok" if gate.passed else "bad"}">{esc(words.gate_cell(gate))}</span>'


def _clusters(data: ReportData) -> str:
    if not data.clusters:
        return ""
    rows = [
        [
            f"<code>{esc(c.fingerprint)}</code>",
            f'<span class="{"bad" if c.status == "open" else "ok"}">{esc(c.shown_status)}</span>',
            esc(c.phase),
            esc(c.size),
            esc(words.seen(c.first_seen_iteration, c.first_seen_version)),
            esc(words.seen(c.last_seen_iteration, c.last_seen_version)),
            esc(f"#{c.issue_number}") if c.issue_number else "–",
            _wrap(f"<code>{esc(c.message)}</code>" + _tests(c.tests)),
        ]
        for c in data.clusters
    ]
    head = ["cluster", "status", "phase", "tests", "first seen", "last seen", "issue", "message"]
    return f"<section><h2>Failure clusters</h2>{_table(head, rows)}</section>"


def _tests(tests: Sequence[str], limit: int = 5) -> str:
    shown = "".join(f"<br><code>{esc(t)}</code>" for t in tests[:limit])
    more = f"<br>… and {len(tests) - limit} more" if len(tests) > limit else ""
    return f'<span class="meta">{shown}{more}</span>'


def _issues(data: ReportData) -> str:
    if not data.issues:
        return "<section><h2>Issues</h2><p>No issue was filed, updated or closed.</p></section>"
    rows = [
        [
            esc(words.issue_name(i)),
            _wrap(esc(i.title)),
            esc(words.step(i.opened)),
            esc(i.updates),
            f'<span class="{"ok" if i.closed else "bad"}">{esc(words.issue_state(i))}</span>',
            f"<code>{esc(i.fingerprint)}</code>",
        ]
        for i in data.issues
    ]
    head = ["issue", "title", "opened", "updates", "state", "cluster"]
    return f"<section><h2>Issues</h2>{_table(head, rows)}</section>"


def _flaky(data: ReportData) -> str:
    if not data.flaky:
        return ""
    rows = [
        [_wrap(f"<code>{esc(f.test)}</code>"), esc(f.phase), esc(", ".join(map(str, f.iterations)))]
        for f in data.flaky
    ]
    return (
        '<section><h2>Flaky tests</h2><p class="meta">failed, then passed on rerun</p>'
        + _table(["test", "phase", "iterations"], rows)
        + "</section>"
    )


def _slowest(data: ReportData) -> str:
    if not data.slowest:
        return ""
    rows = [
        [
            _wrap(f"<code>{esc(s.test)}</code>"),
            esc(s.phase),
            esc(s.suite),
            esc(words.took(s.duration_s)),
            esc(s.outcome),
        ]
        for s in data.slowest
    ]
    head = ["test", "phase", "suite", "duration", "outcome"]
    return f"<section><h2>Slowest tests</h2>{_table(head, rows)}</section>"


def _versions(data: ReportData) -> str:
    """The version story (markdown's ``_versions``): timeline, causes, phases not started."""
    if not (data.versions or data.not_started):
        return ""
    rows = [
        [f"<code>{esc(v.version)}</code>", esc(words.stamp(v.appeared)),
         esc(words.stamp(v.settled)), esc(", ".join(str(n) for n in v.iterations))]
        for v in data.versions
    ]  # fmt: skip
    head = ["version", "appeared", "settled", "iterations"]
    items = [f"<li><code>{esc(c.fingerprint)}</code> ({esc(c.phase)}): {esc(c.line)}</li>"
             for c in data.causes]  # fmt: skip
    items += [f"<li>{esc(line)}</li>" for line in data.not_started]
    listed = f"<ul>{''.join(items)}</ul>" if items else ""
    return f"<section><h2>Versions</h2>{_table(head, rows)}{listed}</section>"


def _waits(data: ReportData) -> str:
    if not data.waits:
        return ""
    rows = [
        [
            esc(w.after_iteration or "–"),
            f"<code>{esc(w.version)}</code>",
            esc(words.took(w.after_s)),
            esc(words.stamp(w.ts)),
        ]
        for w in data.waits
    ]
    head = ["after iteration", "new version", "waited", "seen at"]
    return f"<section><h2>Redeploy waits</h2>{_table(head, rows)}</section>"


def _notifications(data: ReportData) -> str:
    if not data.notifications:
        return ""
    rows = [
        [
            esc(words.stamp(n.ts)),
            esc(n.notice),
            f"<code>{esc(n.via)}</code>",
            "sent" if n.ok else "failed",
            esc(n.title),
        ]
        for n in data.notifications
    ]
    head = ["at", "notice", "to", "", "title"]
    return f"<section><h2>Notifications</h2>{_table(head, rows)}</section>"


def _redeploy_problems(data: ReportData) -> str:
    if not data.redeploy_problems:
        return ""
    items = "".join(
        f"<li>after iteration {esc(p.after_iteration or '–')}: {esc(p.text)}</li>"
        for p in data.redeploy_problems
    )
    return f"<section><h2>Redeploy problems</h2><ul>{items}</ul></section>"


def _budget(data: ReportData) -> str:
    items = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>"
        for k, v in words.budget_lines(data.budget, data.generated)
    )
    return f'<section><h2>Budget</h2><dl class="budget">{items}</dl></section>'


def _wrap(cell: str) -> str:
    return f'<td class="wrap">{cell}</td>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Cells are markup already escaped by the caller; a cell that is a ``<td>`` stays as is."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    table = f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'
