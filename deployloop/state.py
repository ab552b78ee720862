"""Durable state in SQLite (WAL): sessions, iterations, suite runs, clusters, live status, and
the story the report tells (``statesinks.StoryRecorder`` writes it).

Written as results arrive, so a crash loses at most the suite that was running, and read by
``status`` while ``run`` works (WAL lets readers in without a lock).
$DEPLOYLOOP_STATE_DIR moves it, which is how tests keep theirs apart.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from deployloop.errors import machine_error, not_a_directory
from deployloop.events import EventBase
from deployloop.models import CaseResult, SuiteRun
from deployloop.redact import ID_KEY_BYTES
from deployloop.statepack import (
    iter_cases,
    pack_cases,
    run_fields,
    run_from_parts,
    unpack_cases,
)
from deployloop.stateschema import DB_NAME, bring_up_to_date, broken_because, move_aside

STATE_ENV = "DEPLOYLOOP_STATE_DIR"
ID_KEY_NAME = "id.key"  # beside state.db: the key of test ids' secret tags (``id_key``)
E = TypeVar("E", bound=EventBase)


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


def id_key(directory: Path) -> bytes:
    """The state directory's key for tagging secrets in test ids (``Redactor.redact_id``):
    ``ID_KEY_BYTES`` random bytes in ``directory/ID_KEY_NAME`` (mode 0600), made on first use
    and kept, so a secret's tag is the same across iterations and restarts. A key file of the
    wrong size (cut short) is replaced: tags change, nothing leaks. Raises MachineError
    (one line naming the path) when the disk refuses it."""
    path = directory / ID_KEY_NAME
    make_directory(directory)
    try:
        key = path.read_bytes() if path.is_file() else b""
        if len(key) != ID_KEY_BYTES:
            _write_key(path, replace=bool(key))
            key = path.read_bytes()
    except OSError as exc:
        machine = machine_error(exc, path)
        if machine is None:
            raise
        raise machine from exc
    return key


def _write_key(path: Path, *, replace: bool) -> None:
    """A new key at ``path``, written whole to a 0600 file first; a new key is linked in, so
    of two runs making it at once both keep the first (a bad one is replaced)."""
    temp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(ID_KEY_BYTES))
        if replace:
            os.replace(temp, path)
        else:
            with suppress(FileExistsError):
                os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)


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
        """Open (or create) ``directory/state.db``, migrated to ``stateschema.SCHEMA_VERSION``.

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
            problem = broken_because(self.path) if self.path.exists() else None
            if problem is not None:
                self.recovered = move_aside(self.path, problem)
            # Suites of a phase run side by side (dispatch.py): their threads share this
            # connection, one transaction at a time (``_lock``).
            self._lock = threading.RLock()
            self.db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            bring_up_to_date(self.db, self.path)
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
        return [
            (r["iteration"], run_from_parts(json.loads(r["data"]), unpack_cases(r["cases"])))
            for r in self._run_rows(session_id, iteration, pass_name)
        ]

    def stream_runs(
        self, session_id: str, pass_name: str = "full"
    ) -> Iterator[tuple[int, SuiteRun, Iterator[CaseResult]]]:
        """The session's runs as :meth:`runs` gives them, one at a time, each without its cases
        (``cases`` is empty) and with an iterator over them: a reader that counts holds one
        run's packed text at a time, never a night's cases (issue 19)."""
        for r in self._run_rows(session_id, None, pass_name):
            yield r["iteration"], run_from_parts(json.loads(r["data"]), ()), iter_cases(r["cases"])

    def _run_rows(self, session_id: str, iteration: int | None, pass_name: str) -> sqlite3.Cursor:
        query = "SELECT iteration, data, cases FROM suite_runs WHERE session=? AND pass=?"
        args: tuple[Any, ...] = (session_id, pass_name)
        if iteration is not None:
            query += " AND iteration=?"
            args += (iteration,)
        return self.db.execute(query + " ORDER BY iteration, rowid", args)

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
