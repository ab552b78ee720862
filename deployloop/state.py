"""Durable state in SQLite (WAL): sessions, iterations, suite runs, clusters, live status, and
the story the report tells (``statesinks.StoryRecorder`` writes it).

Written as results arrive, so a crash loses at most the suite that was running, and read by
``status`` while ``run`` works (WAL lets readers in without a lock).
$DEPLOYLOOP_STATE_DIR moves it, which is how tests keep theirs apart.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from deployloop.events import EventBase
from deployloop.models import CaseResult, Outcome, RunEnd, SuiteRun

STATE_ENV = "DEPLOYLOOP_STATE_DIR"
DB_NAME = "state.db"
E = TypeVar("E", bound=EventBase)

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, config_key TEXT NOT NULL, name TEXT NOT NULL, logs_dir TEXT NOT NULL,
    started REAL NOT NULL, deadline REAL, max_iterations INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'running', exit_code INTEGER, ended REAL
);
CREATE TABLE IF NOT EXISTS iterations (
    session TEXT NOT NULL, n INTEGER NOT NULL, started REAL NOT NULL, ended REAL,
    version TEXT, green INTEGER, data TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (session, n)
);
CREATE TABLE IF NOT EXISTS suite_runs (
    session TEXT NOT NULL, iteration INTEGER NOT NULL, pass TEXT NOT NULL,
    phase TEXT NOT NULL, suite TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (session, iteration, pass, phase, suite)
);
CREATE TABLE IF NOT EXISTS clusters (
    session TEXT NOT NULL, fingerprint TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (session, fingerprint)
);
CREATE TABLE IF NOT EXISTS live (session TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS story (
    session TEXT NOT NULL, iteration INTEGER, kind TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS story_by_kind ON story (session, kind);
"""


def state_dir(logs_dir: str | Path) -> Path:
    return Path(os.environ.get(STATE_ENV) or Path(logs_dir) / ".state")


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    config_key: str
    name: str
    logs_dir: str
    started: float
    deadline: float | None
    max_iterations: int
    status: str
    exit_code: int | None
    ended: float | None

    @property
    def directory(self) -> Path:
        return Path(self.logs_dir) / self.id


class Store:
    """One SQLite database; every write is its own short transaction."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.directory / DB_NAME, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    @classmethod
    def existing(cls, directory: str | Path) -> Store | None:
        """The store if a run ever wrote one: reading commands must not create state."""
        return cls(directory) if (Path(directory) / DB_NAME).is_file() else None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # sessions -----------------------------------------------------------------------------
    def create_session(self, row: SessionRow) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?)",
                (row.id, row.config_key, row.name, row.logs_dir, row.started, row.deadline,
                 row.max_iterations, row.status, row.exit_code, row.ended),
            )  # fmt: skip

    def unfinished(self, config_key: str) -> SessionRow | None:
        found = self.db.execute(
            "SELECT * FROM sessions WHERE config_key=? AND status='running' "
            "ORDER BY started DESC LIMIT 1",
            (config_key,),
        ).fetchone()
        return SessionRow(**found) if found else None

    def session(self, session_id: str | None = None) -> SessionRow | None:
        """The named session, or the latest one."""
        if session_id:
            found = self.db.execute("SELECT * FROM sessions WHERE id=?", (session_id,)).fetchone()
        else:
            found = self.db.execute(
                "SELECT * FROM sessions ORDER BY started DESC LIMIT 1"
            ).fetchone()
        return SessionRow(**found) if found else None

    def end_session(self, session_id: str, status: str, exit_code: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE sessions SET status=?, exit_code=?, ended=? WHERE id=?",
                (status, exit_code, time.time(), session_id),
            )

    # iterations ---------------------------------------------------------------------------
    def begin_iteration(self, session_id: str, n: int, version: str | None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO iterations (session, n, started, version) VALUES (?,?,?,?)",
                (session_id, n, time.time(), version),
            )

    def end_iteration(
        self, session_id: str, n: int, version: str | None, green: bool, data: Mapping[str, Any]
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE iterations SET ended=?, version=?, green=?, data=? WHERE session=? AND n=?",
                (time.time(), version, int(green), json.dumps(data), session_id, n),
            )

    def iterations(self, session_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM iterations WHERE session=? ORDER BY n", (session_id,)
        ).fetchall()
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    # suite runs ---------------------------------------------------------------------------
    def save_run(self, session_id: str, iteration: int, pass_name: str, run: SuiteRun) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO suite_runs VALUES (?,?,?,?,?,?)",
                (session_id, iteration, pass_name, run.phase, run.suite, run_to_json(run)),
            )

    def runs(
        self, session_id: str, iteration: int | None = None, pass_name: str = "full"
    ) -> list[tuple[int, SuiteRun]]:
        query = "SELECT iteration, data FROM suite_runs WHERE session=? AND pass=?"
        args: tuple[Any, ...] = (session_id, pass_name)
        if iteration is not None:
            query += " AND iteration=?"
            args += (iteration,)
        rows = self.db.execute(query + " ORDER BY iteration, rowid", args).fetchall()
        return [(r["iteration"], run_from_json(json.loads(r["data"]))) for r in rows]

    def last_wall_s(self, session_id: str, suite: str) -> float | None:
        """How long the suite's last full run took: the live view's ETA."""
        found = self.db.execute(
            "SELECT json_extract(data, '$.wall_s') AS wall FROM suite_runs "
            "WHERE session=? AND suite=? AND pass='full' ORDER BY iteration DESC LIMIT 1",
            (session_id, suite),
        ).fetchone()
        return None if found is None else float(found["wall"])

    def discard_runs(self, session_id: str, iteration: int) -> None:
        """Forget an iteration's runs: it is being restarted on a new version."""
        with self.transaction() as db:
            db.execute(
                "DELETE FROM suite_runs WHERE session=? AND iteration=?", (session_id, iteration)
            )

    # clusters -----------------------------------------------------------------------------
    def save_clusters(self, session_id: str, records: Mapping[str, Mapping[str, Any]]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM clusters WHERE session=?", (session_id,))
            db.executemany(
                "INSERT INTO clusters VALUES (?,?,?)",
                [(session_id, fp, json.dumps(data)) for fp, data in records.items()],
            )

    def clusters(self, session_id: str) -> dict[str, dict[str, Any]]:
        rows = self.db.execute(
            "SELECT fingerprint, data FROM clusters WHERE session=?", (session_id,)
        ).fetchall()
        return {r["fingerprint"]: json.loads(r["data"]) for r in rows}

    # live status --------------------------------------------------------------------------
    def update_live(self, session_id: str, changes: Mapping[str, Any]) -> None:
        current = self.live(session_id)
        current.update(changes)
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO live VALUES (?,?)", (session_id, json.dumps(current))
            )

    def live(self, session_id: str) -> dict[str, Any]:
        found = self.db.execute("SELECT data FROM live WHERE session=?", (session_id,)).fetchone()
        return dict(json.loads(found["data"])) if found else {}

    # the story ----------------------------------------------------------------------------
    def add_story(self, session_id: str, iteration: int | None, event: EventBase) -> None:
        """Keep ``event`` (its ``to_json``) as part of ``iteration``'s story."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO story VALUES (?,?,?,?)",
                (session_id, iteration, event.kind, json.dumps(event.to_json())),
            )

    def story(self, session_id: str, kind: type[E]) -> list[tuple[int | None, E]]:
        """The session's events of ``kind`` in the order they happened, with their iteration.

        A record that no longer reads as its kind is left out: the report must still build.
        """
        rows = self.db.execute(
            "SELECT iteration, data FROM story WHERE session=? AND kind=? ORDER BY rowid",
            (session_id, kind.kind),
        ).fetchall()
        found = []
        for row in rows:
            try:
                found.append((row["iteration"], kind.from_json(json.loads(row["data"]))))
            except ValueError:  # bad JSON, or an EventShapeError
                continue
        return found

    def restart_story(
        self, session_id: str, iteration: int, kinds: Iterable[type[EventBase]]
    ) -> None:
        """Forget what ``iteration`` told of ``kinds``: it starts again."""
        names = [kind.kind for kind in kinds]
        with self.transaction() as db:
            db.execute(
                f"DELETE FROM story WHERE session=? AND iteration=? "
                f"AND kind IN ({','.join('?' * len(names))})",
                (session_id, iteration, *names),
            )


def run_to_json(run: SuiteRun) -> str:
    """Flat and fast: ``dataclasses.asdict`` deep-copies every case, a cost per suite run."""
    fields = {name: getattr(run, name) for name in SuiteRun.__dataclass_fields__}
    fields["cases"] = [
        {name: getattr(case, name) for name in CaseResult.__dataclass_fields__}
        for case in run.cases
    ]
    return json.dumps(fields)


def run_from_json(data: Mapping[str, Any]) -> SuiteRun:
    """A stored run; rows written before ``ended`` existed get it from their wording."""
    cases = tuple(
        CaseResult(**{**case, "outcome": Outcome(case["outcome"])}) for case in data["cases"]
    )
    ended = data.get("ended")
    run_end = _legacy_end(data.get("harness_error")) if ended is None else RunEnd(ended)
    return SuiteRun(**{**data, "cases": cases, "ended": run_end})


# How runner.how_it_ended worded each end before runs stored it; anything else was the runner's.
_LEGACY_WORDING = (
    ("interrupted", RunEnd.INTERRUPTED),
    ("stopped at the session deadline", RunEnd.DEADLINE),
    ("timed out after", RunEnd.TIMEOUT),
    ("cannot start", RunEnd.FAILED_TO_START),
    ("runner killed by", RunEnd.KILLED_BY_SIGNAL),
)


def _legacy_end(harness_error: str | None) -> RunEnd:
    if harness_error is None:
        return RunEnd.COMPLETED
    found = (end for start, end in _LEGACY_WORDING if harness_error.startswith(start))
    return next(found, RunEnd.RUNNER_ERROR)
