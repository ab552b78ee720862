"""The state database's schema, its forward migrations (``PRAGMA user_version``), and the
recovery of a file that is no usable database (moved aside, a fresh one started).

``state.Store`` opens through these; nothing else writes the schema.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deployloop import __version__
from deployloop.errors import SchemaTooNew
from deployloop.models import CaseResult, Outcome, SuiteRun
from deployloop.statepack import pack_cases, run_fields, run_from_parts

DB_NAME = "state.db"
# PRAGMA user_version of the schema below. 1: the first (which set no version, so reads 0);
# 2: suite runs' cases packed (statepack). Older databases are migrated forward on open.
SCHEMA_VERSION = 2
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
    phase TEXT NOT NULL, suite TEXT NOT NULL, data TEXT NOT NULL, cases BLOB,
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


def run_from_json(data: Mapping[str, Any]) -> SuiteRun:
    """A suite run as schema version 1 stored it: one JSON text with its cases in full."""
    fields = {name: value for name, value in data.items() if name != "cases"}
    cases = tuple(
        CaseResult(**{**case, "outcome": Outcome(case["outcome"])}) for case in data["cases"]
    )
    return run_from_parts(fields, cases)


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Version 2 packs each suite run's cases into the ``cases`` blob (``statepack``)."""
    db.execute("ALTER TABLE suite_runs ADD COLUMN cases BLOB")
    rows = db.execute("SELECT rowid, data FROM suite_runs").fetchall()
    for rowid, data in rows:
        run = run_from_json(json.loads(data))
        db.execute(
            "UPDATE suite_runs SET data=?, cases=? WHERE rowid=?",
            (run_fields(run), pack_cases(run.cases), rowid),
        )


# Step n brings a database at version n to n + 1, in one transaction with the version bump.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_1_to_2}


def bring_up_to_date(db: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new database, or migrate an older one forward, step by step."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    fresh = not db.execute("SELECT 1 FROM sqlite_master WHERE name='sessions'").fetchone()
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{path}: state schema version {version} is newer than this deployloop "
            f"({__version__}) knows ({SCHEMA_VERSION}); upgrade deployloop, or move the file "
            "aside to start fresh"
        )
    if fresh:
        db.executescript(SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return
    for step in range(max(version, 1), SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[step](db)
            db.execute(f"PRAGMA user_version={step + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    db.executescript(SCHEMA)  # tables and indexes a version added without a step of its own


def broken_because(path: Path) -> str | None:
    """Why ``path`` is no usable SQLite database (``PRAGMA quick_check``), or None."""
    if path.stat().st_size == 0:
        return "0 bytes"
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            found = db.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:
        raise  # locked, unreadable, I/O: the machine's problem, not the file's
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
        return str(exc)
    return None if found == "ok" else f"quick_check: {found}"


def move_aside(path: Path, problem: str) -> str:
    """Rename a broken database (and its WAL files) with a timestamp; the line that says so."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{DB_NAME}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{DB_NAME}.corrupt-{stamp}-{n}")
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(DB_NAME + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    return f"{path} is corrupt ({problem}); moved it aside to {aside} and started fresh"
