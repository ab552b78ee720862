"""The night's version story for the report: which versions ran and when they appeared and
settled; each cause's line across versions; phases not started for lack of time.

Built from the state alone: iterations (version, start), the stored VersionSeen, Settled and
NoTime events, and the triage records' version history (``issues.history``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deployloop.events import NoTime, Settled, VersionSeen
from deployloop.report.records import CauseLine, IterationInfo, VersionStep
from deployloop.state import Store


def timeline(
    store: Store, session_id: str, iterations: Sequence[IterationInfo]
) -> tuple[VersionStep, ...]:
    """Each version in the order the iterations first ran on it."""
    seen = {e.version: e.ts for _, e in store.story(session_id, VersionSeen)}
    settled = {e.version: e.ts for _, e in store.story(session_id, Settled)}
    ran: dict[str, list[IterationInfo]] = {}
    for it in iterations:
        if it.version:
            ran.setdefault(it.version, []).append(it)
    return tuple(
        VersionStep(
            version,
            min(seen.get(version, its[0].started), its[0].started),
            settled.get(version),
            tuple(dict.fromkeys(it.n for it in its)),
        )
        for version, its in ran.items()
    )


def not_started(store: Store, session_id: str) -> tuple[str, ...]:
    """The phases left out because they could not fit before the deadline, in words."""
    return tuple(e.describe() for _, e in store.story(session_id, NoTime))


def cause_lines(
    records: Mapping[str, Mapping[str, Any]], iterations: Sequence[IterationInfo]
) -> tuple[CauseLine, ...]:
    """Each filed or failing cause's line across the versions tested (records' history)."""
    last = next((it.version for it in reversed(iterations) if it.version), None)
    return tuple(
        CauseLine(
            str(d.get("fingerprint") or fp),
            str(d.get("phase") or ""),
            str(d.get("message") or ""),
            _line(d, last),
        )
        for fp, d in records.items()
        if d.get("status") != "flaky"
    )


def _line(d: Mapping[str, Any], last_tested: str | None) -> str:
    failing = [str(v) for v in d.get("failing_on") or ()]
    parts = [f"failing on {', '.join(failing)}"] if failing else []
    if d.get("last_good"):
        parts.insert(0, f"passed on {d['last_good']}")
    if d.get("regressed_in"):
        parts.append(f"regressed in {d['regressed_in']}")
    if d.get("status") == "fixed":
        parts.append(f"fixed in {d.get('fixed_in') or 'an unknown version'}")
    elif last_tested is None or last_tested == d.get("last_seen_version"):
        parts.append("not verified: no deploy came")
    return "; ".join(parts) or "no version known"
