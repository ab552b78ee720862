"""``deployloop status``: the current or last session, read without taking the run lock."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from deployloop import __version__
from deployloop import config as config_module
from deployloop.console import Console, error
from deployloop.durations import format_duration
from deployloop.errors import UsageError
from deployloop.session import status_words
from deployloop.state import SessionRow, Store, state_dir


def run(config_path: Path | None, as_json: bool) -> int:
    logs_dir = _logs_dir(config_path)
    console = Console()
    store = Store.existing(state_dir(logs_dir))
    payload: dict[str, Any] = {"deployloop": __version__, "session": None}
    if store is not None:
        if store.recovered:
            error(store.recovered)  # stderr: --json output stays one object
        try:
            payload = snapshot(store)
        finally:
            store.close()
    if as_json:
        console.json(payload)
    elif payload["session"] is None:
        console.line("no session yet")
    else:
        console.show(_table(payload))
    return 0


def _logs_dir(config_path: Path | None) -> str:
    """The config's logs_dir when a config is around; ``logs`` otherwise. Lenient: status
    needs no secret to be set."""
    try:
        path = config_module.find_config(config_path)
        return config_module.load(path, lenient=True).session.logs_dir
    except UsageError:
        if config_path is not None:
            raise
        return "logs"


def snapshot(store: Store) -> dict[str, Any]:
    row = store.session()
    if row is None:
        return {"deployloop": __version__, "session": None}
    live = store.live(row.id)
    iterations = store.iterations(row.id)
    status = shown_status(row.status, live.get("pid"))
    budget_left = _budget_left(row, status, live.get("last_event_ts"))
    open_issues = sorted(
        {c["issue_number"] for c in store.clusters(row.id).values()
         if c.get("issue_number") and c.get("status") == "open"}
    )  # fmt: skip
    return {
        "deployloop": __version__,
        "session": row.id,
        "status": status,
        "exit_code": row.exit_code,
        "started": row.started,
        "iteration": live.get("iteration", len(iterations)),
        "iterations_done": sum(1 for it in iterations if it["ended"] is not None),
        "state": live.get("state"),
        "phase": live.get("phase"),
        "suite": live.get("suite"),
        "version": live.get("version"),
        "gates": live.get("gates", {}),
        "open_issues": open_issues,
        "budget_left_s": budget_left,
        "max_iterations": row.max_iterations,
        "last_event": live.get("last_event"),
        "last_event_ts": live.get("last_event_ts"),
        "logs": str(row.directory),
    }


def shown_status(status: str, pid: object) -> str:
    """The stored status in people's words ("interrupted (resumable)"), except that a
    "running" session whose run's pid is gone is "stopped (pid N no longer running)": killed
    or crashed, left to be resumed."""
    if status != "running" or not isinstance(pid, int) or _alive(pid):
        return status_words(status)
    return f"stopped (pid {pid} no longer running)"


def _budget_left(row: SessionRow, shown: str, last_event_ts: object) -> float | None:
    """Seconds of budget left; counted to now only while a run works the session, else to
    the moment it stopped (its end, or its last event when it was killed)."""
    if row.deadline is None:
        return None
    if shown == "running":
        until = time.time()
    elif row.ended is not None:
        until = row.ended
    else:
        until = last_event_ts if isinstance(last_event_ts, float | int) else time.time()
    return max(0.0, row.deadline - until)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def _table(p: dict[str, Any]) -> Table:
    table = Table("", "", show_header=False, box=None)
    table.add_row("session", f"{p['session']} ({p['status']})")
    table.add_row("iteration", f"{p['iteration']} of at most {p['max_iterations']}")
    table.add_row(
        "now", " / ".join(str(x) for x in (p["state"], p["phase"], p["suite"]) if x) or "-"
    )
    table.add_row("version", str(p["version"] or "unknown"))
    for phase, gate in p["gates"].items():
        table.add_row(f"gates {phase}", "passed" if gate["passed"] else "FAILED")
    table.add_row("open issues", ", ".join(f"#{n}" for n in p["open_issues"]) or "none")
    left = p["budget_left_s"]
    table.add_row("budget left", "unbounded" if left is None else format_duration(left))
    if p["last_event_ts"]:
        ago = format_duration(time.time() - p["last_event_ts"])
        table.add_row("last event", f"{p['last_event']} ({ago} ago)")
    table.add_row("logs", p["logs"])
    return table
