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
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from deployloop import __version__
from deployloop.errors import SchemaTooNew, machine_error, not_a_directory
from deployloop.events import EventBase
from deployloop.models import CaseResult, Outcome, SuiteRun
from deployloop.statepack import pack_cases, run_fields, run_from_parts, unpack_cases

STATE_ENV = "DEPLOYLOOP_STATE_DIR"
DB_NAME = "state.db"
# PRAGMA user_version of the schema below. 1: the first (which set no version, so reads 0);
# 2: suite runs' cases packed (statepack). Older databases are migrated forward on open.
SCHEMA_VERSION = 2
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


def make_directory(path: Path) -> None:
    """``mkdir -p path``; raises MachineError (exit 2, one line naming the path and errno) when
    it cannot be a directory here (a file in the way, under /proc) or the disk refuses it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        machine = not_a_directory(exc, path)
        if machine is None:
            raise
        raise machine from exc


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
        """Open (or create) ``directory/state.db``, migrated to SCHEMA_VERSION.

        A corrupt file (unreadable, failing ``PRAGMA quick_check``, 0 bytes) is moved aside and
        a fresh one started; ``recovered`` then says so in one line naming both paths.
        Raises SchemaTooNew for a database of a newer deployloop, MachineError for a full or
        read-only disk.
        """
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self.recovered: str | None = None
        make_directory(self.directory)
        try:
            problem = _problem(self.path) if self.path.exists() else None
            if problem is not None:
                self.recovered = _move_aside(self.path, problem)
            # Suites of a phase run side by side (dispatch.py): their threads share this
            # connection, one transaction at a time (``_lock``).
            self._lock = threading.RLock()
            self.db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            _bring_up_to_date(self.db, self.path)
        except (OSError, sqlite3.OperationalError) as exc:
            machine = machine_error(exc, self.path)
            if machine is None:
                raise
            raise machine from exc

    @classmethod
    def existing(cls, directory: str | Path) -> Store | None:
        """The store if a run ever wrote one: reading commands must not create state."""
        return cls(directory) if (Path(directory) / DB_NAME).is_file() else None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write; a full or read-only disk is raised as MachineError naming the file."""
        try:
            with self._lock:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    yield self.db
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            machine = machine_error(exc, self.directory / DB_NAME)
            if machine is None:
                raise
            raise machine from exc

    def size_mb(self) -> float:
        """The database's size on disk with its WAL, in MB (10^6 bytes)."""
        files = (self.path, self.path.with_name(DB_NAME + "-wal"))
        return sum(p.stat().st_size for p in files if p.exists()) / 1e6

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
            "SELECT * FROM sessions WHERE config_key=? AND status IN ('running', 'interrupted') "
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

    def previous_session(self, session_id: str) -> SessionRow | None:
        """The latest session of the same config that started before ``session_id``."""
        found = self.db.execute(
            "SELECT s.* FROM sessions s, sessions me WHERE me.id=? AND s.id!=me.id "
            "AND s.config_key=me.config_key AND s.started<=me.started "
            "ORDER BY s.started DESC LIMIT 1",
            (session_id,),
        ).fetchone()
        return SessionRow(**found) if found else None

    def set_limits(self, session_id: str, deadline: float | None, max_iterations: int) -> None:
        """A resumed session's new deadline (wall time) and iteration cap, from its options."""
        with self.transaction() as db:
            db.execute(
                "UPDATE sessions SET deadline=?, max_iterations=? WHERE id=?",
                (deadline, max_iterations, session_id),
            )

    def resume_session(self, session_id: str) -> None:
        """An unfinished (interrupted or killed) session runs again: not ended any more."""
        with self.transaction() as db:
            db.execute(
                "UPDATE sessions SET status='running', exit_code=NULL, ended=NULL WHERE id=?",
                (session_id,),
            )

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
                "INSERT OR REPLACE INTO suite_runs VALUES (?,?,?,?,?,?,?)",
                (session_id, iteration, pass_name, run.phase, run.suite, run_fields(run),
                 pack_cases(run.cases)),
            )  # fmt: skip

    def runs(
        self, session_id: str, iteration: int | None = None, pass_name: str = "full"
    ) -> list[tuple[int, SuiteRun]]:
        query = "SELECT iteration, data, cases FROM suite_runs WHERE session=? AND pass=?"
        args: tuple[Any, ...] = (session_id, pass_name)
        if iteration is not None:
            query += " AND iteration=?"
            args += (iteration,)
        rows = self.db.execute(query + " ORDER BY iteration, rowid", args).fetchall()
        return [
            (r["iteration"], run_from_parts(json.loads(r["data"]), unpack_cases(r["cases"])))
            for r in rows
        ]

    def last_wall_s(self, session_id: str, suite: str) -> float | None:
        """How long the suite's last full run took: the live view's ETA."""
        found = self.db.execute(
            "SELECT json_extract(data, '$.wall_s') AS wall FROM suite_runs "
            "WHERE session=? AND suite=? AND pass='full' ORDER BY iteration DESC LIMIT 1",
            (session_id, suite),
        ).fetchone()
        return None if found is None else float(found["wall"])

    def durations(self, session_id: str, suite: str) -> dict[str, float]:
        """Seconds per test id in the suite's last full run under this session's config (in
        any of its sessions): what its shards are split by. Tests with no time are left out."""
        with self._lock:
            found = self.db.execute(
                "SELECT r.cases FROM suite_runs r JOIN sessions s ON s.id = r.session "
                "WHERE s.config_key=(SELECT config_key FROM sessions WHERE id=?) AND r.suite=? "
                "AND r.pass='full' AND r.cases IS NOT NULL "
                "ORDER BY s.started DESC, r.iteration DESC LIMIT 1",
                (session_id, suite),
            ).fetchone()
        if found is None:
            return {}
        cases = unpack_cases(found["cases"])
        return {c.id: c.duration_s for c in cases if c.duration_s is not None}

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


def _bring_up_to_date(db: sqlite3.Connection, path: Path) -> None:
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


def _problem(path: Path) -> str | None:
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


def _move_aside(path: Path, problem: str) -> str:
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
