"""The human night log: ``session.md``, and the one-line wording the console shares with it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deployloop.durations import format_duration
from deployloop.events import EPHEMERAL
from deployloop.models import Event


def describe(event: Event) -> str | None:
    """One grep-able line for an event, or None for events that only structure the log."""
    render = _LINES.get(event.kind)
    return render(event.data) if render else None


def _counts(d: Mapping[str, Any]) -> str:
    c = d.get("counts") or {}
    parts = [f"{c.get(k, 0)} {k}" for k in ("passed", "failed", "error", "skipped") if c.get(k)]
    return ", ".join(parts) or "no tests"


def _suite_end(d: Mapping[str, Any]) -> str:
    label = "" if d.get("pass", "full") == "full" else f" [{d['pass']}]"
    text = f"suite {d['phase']}/{d['suite']}{label}: {_counts(d)} in {format_duration(d['wall_s'])}"
    if d.get("harness_error"):
        text += f" — HARNESS ERROR: {d['harness_error']}"
    return text


def _phase_end(d: Mapping[str, Any]) -> str:
    return f"phase {d['phase']}: {'PASSED' if d['passed'] else 'FAILED'}"


def _issue(d: Mapping[str, Any]) -> str:
    prefix = "would " if d.get("dry_run") else ""
    number = f" #{d['number']}" if d.get("number") else ""
    return f"issue {prefix}{d['action']}{number}: {d['title']}"


def _iteration_end(d: Mapping[str, Any]) -> str:
    verdict = "all gates green" if d["green"] else f"failing: {', '.join(d.get('failing', []))}"
    took = format_duration(d.get("duration_s", 0))
    version = d.get("version") or "unknown version"
    return f"iteration {d['iteration']} ended on {version}: {verdict} ({took})"


def _session_end(d: Mapping[str, Any]) -> str:
    return (
        f"session ended: {d['status']} after {d['iterations']} iteration(s), exit {d['exit_code']}"
        + (f" — {d['reason']}" if d.get("reason") else "")
    )


_LINES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "session_start": lambda d: (
        f"session {d['session']} {'resumed' if d.get('resumed') else 'started'} ({d['config']})"
    ),
    "iteration_start": lambda d: (
        f"iteration {d['iteration']} started on version {d.get('version') or 'unknown'}"
    ),
    "phase_start": lambda d: f"phase {d['phase']} started",
    "suite_start": lambda d: (
        f"suite {d['phase']}/{d['suite']} started"
        + ("" if d.get("pass", "full") == "full" else f" [{d['pass']}]")
    ),
    "suite_end": _suite_end,
    "phase_end": _phase_end,
    "skipped_phases": lambda d: f"phases not run: {', '.join(d['phases'])} ({d['reason']})",
    "failed_first": lambda d: (
        f"failed-first: {d['passed']}/{d['total']} now pass on {d.get('version') or 'unknown'}"
    ),
    "issue": _issue,
    "deferred": lambda d: f"issue creation deferred (cap reached): {'; '.join(d['titles'])}",
    "outbox": lambda d: (
        f"tracker unavailable ({d.get('error') or 'error'}): "
        f"{d['queued']} write(s) kept in the outbox"
    ),
    "dry_run": lambda d: f"dry run: {d['detail']}",
    "report": lambda d: (
        f"report written: {', '.join(d['paths'])}"
        if not d.get("error")
        else f"report NOT written: {d['error']}"
    ),
    "trigger": lambda d: f"redeploy trigger {'ran' if d['ok'] else 'FAILED'}: {d['detail']}",
    "redeploy_timeout": lambda d: (
        f"redeploy wait timed out: no new version within {format_duration(d['timeout_s'])} "
        f"(tested {d.get('tested') or 'unknown'}); "
        + (
            "retesting the same version"
            if d["then"] == "retest"
            else "stopping (on_timeout = stop)"
        )
    ),
    "waiting": lambda d: (
        f"waiting for redeploy (tested {d.get('tested') or 'unknown'}): {d['reason']}"
    ),
    "deploying": lambda d: f"staging is deploying: {d['detail']}",
    "version_seen": lambda d: f"{d['version']} seen after {format_duration(d['after_s'])}",
    "settled": lambda d: f"settled on {d['version']} ({format_duration(d['seconds'])} healthy)",
    "mixed": lambda d: (
        f"version changed mid-iteration ({d['from_version']} → {d['to_version']}): restarting it"
    ),
    "health": lambda d: f"health {'ok' if d['ok'] else 'FAILED'}: {d['detail']}",
    "iteration_end": _iteration_end,
    "session_end": _session_end,
}


class SessionLog:
    """Appends markdown entries to ``session.md`` as events arrive."""

    def __init__(self, path: Path, redact: Callable[[str], str] = str) -> None:
        self.path = path
        self.redact = redact
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: Event) -> None:
        if event.kind in EPHEMERAL:
            return
        text = self._entry(event)
        if text:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(self.redact(text))

    def _entry(self, event: Event) -> str | None:
        stamp = time.strftime("%H:%M:%S", time.localtime(event.ts))
        d = event.data
        if event.kind == "session_start":
            day = time.strftime("%Y-%m-%d %H:%M", time.localtime(event.ts))
            return f"# deployloop session {d['session']}\n\n- {day} {describe(event)}\n"
        if event.kind == "iteration_start":
            return f"\n## Iteration {d['iteration']} — {d.get('version') or 'unknown version'}\n\n"
        if event.kind == "phase_end":
            return self._phase_block(stamp, event)
        line = describe(event)
        if line is None:
            return None
        if event.kind == "session_end":
            return f"\n## Summary\n\n- {stamp} {line}\n"
        return f"- {stamp} {line}\n"

    def _phase_block(self, stamp: str, event: Event) -> str:
        d = event.data
        lines = [
            f"\n### {stamp} Phase {d['phase']}: {'✅ passed' if d['passed'] else '❌ failed'}\n"
        ]
        lines += [f"- {v}" for v in d.get("verdicts", [])]
        if d.get("flaky"):
            lines.append(f"- flaky (passed on rerun): {', '.join(d['flaky'])}")
        for cluster in d.get("clusters", []):
            lines.append(
                f"- failing cluster `{cluster['fingerprint']}` ({cluster['count']} tests): "
                f"{cluster['message']}"
            )
            lines += [f"  - {test}" for test in cluster["tests"][:20]]
            if cluster["count"] > 20:
                lines.append(f"  - … and {cluster['count'] - 20} more")
        return "\n".join(lines) + "\n\n"
