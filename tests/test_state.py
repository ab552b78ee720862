"""The SQLite state: what a resumed run and `status` read back is what was written."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from deployloop.models import CaseResult, Outcome, RunEnd, SuiteRun
from deployloop.state import SessionRow, Store, run_from_json, run_to_json

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
    data = json.loads(run_to_json(dataclasses.replace(RUN, harness_error=wording)))
    del data["ended"]
    assert run_from_json(data).ended is ended
