"""The SQLite state: what a resumed run and `status` read back is what was written."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from pathlib import Path

import pytest

from deployloop.errors import SchemaTooNew
from deployloop.models import CaseResult, Outcome, RunEnd, SuiteRun
from deployloop.state import ID_KEY_NAME, SessionRow, Store, id_key
from deployloop.statepack import run_fields
from deployloop.stateschema import SCHEMA_VERSION, run_from_json

RUN = SuiteRun(
    "infra",
    "p1",
    (
        CaseResult("t.py::a", "a", "t", Outcome.PASSED, 0.1),
        CaseResult("t.py::b", "b", "t", Outcome.FAILED, 0.2, "boom", "ValueError", "tb", "t.py", 3),
    ),
    1.5,
    1,
    version="rev-1",
)


def row(session_id: str, started: float, key: str = "k") -> SessionRow:
    return SessionRow(session_id, key, "night", "/logs", started, None, 5, "running", None, None)


def test_suite_runs_round_trip(tmp_path: Path) -> None:
    """A saved suite run reads back equal, per iteration and pass."""
    store = Store(tmp_path)
    store.save_run("s", 1, "full", RUN)
    store.save_run("s", 1, "rerun", RUN)
    assert store.runs("s", 1) == [(1, RUN)]
    assert store.runs("s", 2) == []
    assert store.last_wall_s("s", "p1") == 1.5


def test_unfinished_session_is_found_per_config(tmp_path: Path) -> None:
    """Only a still-running session of the same config is resumed; an ended one is not."""
    store = Store(tmp_path)
    store.create_session(row("a", 1.0))
    store.create_session(row("b", 2.0, key="other"))
    found = store.unfinished("k")
    assert found is not None and found.id == "a"
    store.end_session("a", "green", 0)
    assert store.unfinished("k") is None
    latest = store.session()
    assert latest is not None and latest.id == "b"


def test_live_status_merges_changes(tmp_path: Path) -> None:
    """Live status updates merge into what is there."""
    store = Store(tmp_path)
    store.update_live("s", {"phase": "infra", "iteration": 1})
    store.update_live("s", {"suite": "p1"})
    assert store.live("s") == {"phase": "infra", "iteration": 1, "suite": "p1"}


def test_existing_creates_nothing(tmp_path: Path) -> None:
    """Store.existing answers None where no run wrote state, and creates no file."""
    assert Store.existing(tmp_path / "none") is None
    assert not (tmp_path / "none").exists()
    Store(tmp_path / "made").close()
    assert Store.existing(tmp_path / "made") is not None


def test_run_end_round_trips(tmp_path: Path) -> None:
    """A run's typed end is stored by value and reads back as the same enum member."""
    store = Store(tmp_path)
    cut = dataclasses.replace(RUN, ended=RunEnd.DEADLINE, harness_error="stopped at ...")
    store.save_run("s", 1, "full", cut)
    assert store.runs("s", 1) == [(1, cut)]


@pytest.mark.parametrize(
    ("wording", "ended"),
    [
        (None, RunEnd.COMPLETED),
        ("interrupted; partial results kept", RunEnd.INTERRUPTED),
        ("stopped at the session deadline; partial results kept", RunEnd.DEADLINE),
        ("timed out after 15m; process group stopped", RunEnd.TIMEOUT),
        ("cannot start: No such file or directory", RunEnd.FAILED_TO_START),
        ("runner killed by SIGKILL", RunEnd.KILLED_BY_SIGNAL),
        ("no tests collected (pytest exit 5)", RunEnd.RUNNER_ERROR),
    ],
)
def test_rows_stored_before_ended_existed_still_load(
    tmp_path: Path, wording: str | None, ended: RunEnd
) -> None:
    """A row without ``ended`` (an older deployloop wrote it) gets the end its words say."""
    data = json.loads(run_fields(dataclasses.replace(RUN, harness_error=wording)))
    data["cases"] = []
    del data["ended"]
    assert run_from_json(data).ended is ended


# The first schema, as deployloop wrote it before PRAGMA user_version: cases in the JSON text.
V1_SCHEMA = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, config_key TEXT NOT NULL, name TEXT NOT NULL, logs_dir TEXT NOT NULL,
    started REAL NOT NULL, deadline REAL, max_iterations INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'running', exit_code INTEGER, ended REAL
);
CREATE TABLE suite_runs (
    session TEXT NOT NULL, iteration INTEGER NOT NULL, pass TEXT NOT NULL,
    phase TEXT NOT NULL, suite TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (session, iteration, pass, phase, suite)
);
"""


def write_v1(directory: Path) -> None:
    """A state.db as version 1 left it: one session, one suite run with its cases in full."""
    directory.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(directory / "state.db")
    db.executescript(V1_SCHEMA)
    db.execute(
        "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?)",
        ("old", "k", "night", "/logs", 1.0, None, 5, "running", None, None),
    )
    data = json.loads(run_fields(RUN))
    data["cases"] = [{**dataclasses.asdict(c), "outcome": c.outcome.value} for c in RUN.cases]
    db.execute(
        "INSERT INTO suite_runs VALUES (?,?,?,?,?,?)",
        ("old", 1, "full", "infra", "p1", json.dumps(data)),
    )
    db.commit()
    db.close()


def test_a_version_1_database_is_migrated_and_resumable(tmp_path: Path) -> None:
    """An old state.db without user_version opens as version 1 and migrates to the current one,
    keeping its session and runs (an upgrade mid-session resumes it)."""
    write_v1(tmp_path)
    store = Store(tmp_path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    found = store.unfinished("k")
    assert found is not None and found.id == "old"
    assert store.runs("old", 1) == [(1, RUN)]
    assert store.last_wall_s("old", "p1") == 1.5


def test_a_newer_schema_is_refused_with_one_line(tmp_path: Path) -> None:
    """A state.db from a newer deployloop: SchemaTooNew (exit 2) naming the file and versions."""
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(SchemaTooNew) as refused:
        Store(tmp_path)
    assert refused.value.exit_code == 2
    assert str(tmp_path / "state.db") in str(refused.value)
    assert f"version {SCHEMA_VERSION + 1}" in str(refused.value)


@pytest.mark.parametrize("damage", ["half", "random", "empty"])
def test_a_corrupt_database_is_moved_aside(tmp_path: Path, damage: str) -> None:
    """Half-truncated, random bytes or 0 bytes: moved aside with a timestamp, a fresh store
    opened, and ``recovered`` names both paths."""
    store = Store(tmp_path)
    for n in range(200):
        store.create_session(row(f"s{n}", float(n)))
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    path = tmp_path / "state.db"
    good = path.read_bytes()
    broken = {"half": good[: len(good) // 2], "random": os.urandom(len(good)), "empty": b""}
    path.write_bytes(broken[damage])
    fresh = Store(tmp_path)
    (aside,) = tmp_path.glob("state.db.corrupt-*[0-9]")
    assert aside.read_bytes() == broken[damage]
    assert fresh.recovered is not None
    assert str(path) in fresh.recovered and str(aside) in fresh.recovered
    assert fresh.session() is None


def test_packed_runs_keep_order_and_every_field(tmp_path: Path) -> None:
    """Plain passes packed column-wise and the rest in full read back equal, in order."""
    flaky = CaseResult("t.py::f", "f", "t", Outcome.PASSED, 0.3, details="tb", flaky=True)
    cases = (*RUN.cases, flaky, CaseResult("t.py::z", "z", "t", Outcome.PASSED, None))
    run = dataclasses.replace(RUN, cases=cases)
    store = Store(tmp_path)
    store.save_run("s", 1, "full", run)
    assert store.runs("s", 1) == [(1, run)]


def test_unpack_reads_full_entries_one_by_one_and_refuses_a_foreign_blob() -> None:
    """Failures with JSON-hostile text (quotes, brackets, commas, newlines) read back equal
    and in order between plain passes; a blob of another layout is a ValueError."""
    import zlib

    from deployloop.statepack import pack_cases, unpack_cases

    hostile = 'a "b" ], {c}, [d]\n\\e'
    cases = tuple(
        CaseResult(f"t.py::{n}", str(n), "t", Outcome.PASSED, 0.1)
        if n % 3
        else CaseResult(f"t.py::{n}", str(n), "t", Outcome.FAILED, None, hostile, "E", hostile)
        for n in range(10)
    )
    assert unpack_cases(pack_cases(cases)) == cases
    assert unpack_cases(pack_cases(())) == ()
    with pytest.raises(ValueError, match="not a packed run"):
        unpack_cases(zlib.compress(b'{"full":[],"plain":{}}'))


def test_id_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    """id_key: 32 random bytes in a 0600 file beside state.db, the same on every call; a
    short (damaged) key file is replaced by a whole one."""
    key = id_key(tmp_path / "state")
    path = tmp_path / "state" / ID_KEY_NAME
    assert len(key) == 32 and path.read_bytes() == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert id_key(tmp_path / "state") == key
    path.write_bytes(b"cut")
    fresh = id_key(tmp_path / "state")
    assert len(fresh) == 32 and fresh != key and path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "state").iterdir()] == [ID_KEY_NAME]
