"""The session's journal read as a story: each event placed in the iteration it happened in."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deployloop.models import Event
from deployloop.report.records import Gate, IssueStep, RedeployProblem, RedeployWait
from deployloop.sessionlog import describe

# Verdict.describe(): "✅ gate: measured (threshold T)" with an optional " — reason".
_VERDICT = re.compile(
    r"^(?P<mark>✅|❌)\s*(?P<body>.*?) \(threshold (?P<threshold>[^()]*)\)"
    r"(?: — (?P<reason>.*))?$",
    re.S,
)
# Gate names: "pass_rate", "p95_s", "max_failures", "<suite>: harness|tests|duration", "probe X".
_GATE = re.compile(
    r"^(?P<gate>probe \S+|\S+: (?:harness|tests|duration)|[^:]+): (?P<measured>.*)$", re.S
)


@dataclass(frozen=True, slots=True)
class IssueEvent:
    number: int | None
    title: str
    fingerprint: str
    step: IssueStep


@dataclass
class Story:
    """What the journal says, grouped by the iteration each event happened in."""

    gates: dict[int, list[Gate]] = field(default_factory=dict)
    flaky: dict[int, dict[str, str]] = field(default_factory=dict)  # test → phase
    clusters: dict[int, list[tuple[str, Mapping[str, Any]]]] = field(default_factory=dict)
    failed_first: dict[int, tuple[int, int]] = field(default_factory=dict)
    skipped: dict[int, list[str]] = field(default_factory=dict)
    issues: list[IssueEvent] = field(default_factory=list)
    waits: list[RedeployWait] = field(default_factory=list)
    redeploy_problems: list[RedeployProblem] = field(default_factory=list)
    phase_order: list[str] = field(default_factory=list)
    end_reason: str = ""
    iteration: int | None = None  # while reading: the iteration the events belong to
    version: str | None = None

    def restart(self, n: int) -> None:
        """A restarted (mixed-version) iteration starts afresh."""
        for part in (self.gates, self.flaky, self.clusters, self.skipped, self.failed_first):
            part.pop(n, None)


def read_story(events: Iterable[Mapping[str, Any]]) -> Story:
    story = Story()
    for event in events:
        handle = _HANDLERS.get(str(event.get("event")))
        if handle is not None:
            handle(story, event)
    return story


def _iteration_start(story: Story, e: Mapping[str, Any]) -> None:
    story.iteration, story.version = as_int(e.get("iteration")), e.get("version")
    if story.iteration is not None:
        story.restart(story.iteration)


def _phase_start(story: Story, e: Mapping[str, Any]) -> None:
    if str(e.get("phase")) not in story.phase_order:
        story.phase_order.append(str(e.get("phase")))


def _phase_end(story: Story, e: Mapping[str, Any]) -> None:
    n, phase = story.iteration, str(e.get("phase", "?"))
    if n is None:
        return
    structured = [g for g in e.get("gates") or () if isinstance(g, Mapping)]
    if structured:
        texts = [str(v) for v in e.get("verdicts") or ()]
        texts += [""] * (len(structured) - len(texts))
        gates = [_gate(phase, g, text) for g, text in zip(structured, texts, strict=False)]
    else:  # a journal written before gates were recorded whole
        gates = [parse_gate(phase, str(v)) for v in e.get("verdicts") or ()]
    story.gates.setdefault(n, []).extend(gates)
    for test in e.get("flaky") or ():
        story.flaky.setdefault(n, {})[str(test)] = phase
    clusters = [(phase, c) for c in e.get("clusters") or () if isinstance(c, Mapping)]
    story.clusters.setdefault(n, []).extend(clusters)


def _failed_first(story: Story, e: Mapping[str, Any]) -> None:
    if story.iteration is not None:
        passed, total = as_int(e.get("passed")) or 0, as_int(e.get("total")) or 0
        story.failed_first[story.iteration] = (passed, total)


def _skipped(story: Story, e: Mapping[str, Any]) -> None:
    if story.iteration is not None:
        story.skipped.setdefault(story.iteration, []).extend(map(str, e.get("phases") or ()))


def _issue(story: Story, e: Mapping[str, Any]) -> None:
    when = as_float(e.get("ts"))
    step = IssueStep(action(e.get("action")), story.iteration, story.version, when,
                     bool(e.get("dry_run")))  # fmt: skip
    story.issues.append(
        IssueEvent(as_int(e.get("number")), str(e.get("title") or ""),
                   str(e.get("fingerprint") or ""), step)
    )  # fmt: skip


def _version_seen(story: Story, e: Mapping[str, Any]) -> None:
    wait = RedeployWait(story.iteration, str(e.get("version")), as_float(e.get("after_s")),
                        as_float(e.get("ts")))  # fmt: skip
    story.waits.append(wait)


def _redeploy_problem(story: Story, e: Mapping[str, Any]) -> None:
    """A failed trigger or a timed-out wait: worded as in session.md, so both say the same."""
    kind = str(e.get("event"))
    if kind == "trigger" and e.get("ok"):
        return
    data = {k: v for k, v in e.items() if k not in ("event", "ts")}
    try:
        line = describe(Event(kind, data))
    except (KeyError, TypeError, ValueError):  # a journal from an older deployloop
        line = f"{kind}: {e.get('detail') or 'failed'}"
    story.redeploy_problems.append(
        RedeployProblem(story.iteration, line or kind, as_float(e.get("ts")))
    )


def _session_end(story: Story, e: Mapping[str, Any]) -> None:
    story.end_reason = str(e.get("reason") or "")


_HANDLERS: dict[str, Callable[[Story, Mapping[str, Any]], None]] = {
    "iteration_start": _iteration_start,
    "phase_start": _phase_start,
    "phase_end": _phase_end,
    "failed_first": _failed_first,
    "skipped_phases": _skipped,
    "issue": _issue,
    "version_seen": _version_seen,
    "trigger": _redeploy_problem,
    "redeploy_timeout": _redeploy_problem,
    "session_end": _session_end,
}


def _gate(phase: str, g: Mapping[str, Any], text: str) -> Gate:
    return Gate(
        phase,
        str(g.get("gate", "?")),
        bool(g.get("passed")),
        str(g.get("measured", "")),
        str(g.get("threshold", "")),
        str(g.get("reason", "")),
        text,
    )


def parse_gate(phase: str, text: str) -> Gate:
    """Split a ``Verdict.describe()`` line; an unexpected shape is kept whole as the gate."""
    match = _VERDICT.match(text.strip())
    if match is None:
        return Gate(phase, text, not text.startswith("❌"), "", "", "", text)
    body = _GATE.match(match["body"])
    gate, measured = (body["gate"], body["measured"]) if body else (match["body"], "")
    passed = match["mark"] == "✅"
    return Gate(phase, gate, passed, measured, match["threshold"], match["reason"] or "", text)


# The tracker reports in the past tense ("created"); the report speaks of create/comment/close.
_PRESENT = {"created": "create", "commented": "comment", "updated": "comment", "closed": "close",
            "reopened": "reopen"}  # fmt: skip


def action(raw: Any) -> str:
    word = str(raw or "?")
    return _PRESENT.get(word, word)


def as_int(value: Any) -> int | None:
    """Journal and state values are trusted for shape only: a bad one reads as missing."""
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
