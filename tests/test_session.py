"""Opening a session and reducing its end to the exit code the SPEC promises."""

from __future__ import annotations

import html
import signal
from pathlib import Path

import pytest

from deployloop.loop import LoopResult, Status
from deployloop.session import SessionEnd, final_reduce


@pytest.mark.parametrize(
    ("status", "signum", "end"),
    [
        (Status.GREEN, None, SessionEnd("green", 0)),
        (Status.FAILING, None, SessionEnd("failing", 1)),
        (Status.UNREACHABLE, None, SessionEnd("unreachable", 3)),
        (Status.INTERRUPTED, signal.SIGINT, SessionEnd("interrupted", 130)),
        (Status.INTERRUPTED, signal.SIGTERM, SessionEnd("interrupted", 143)),
        (Status.INTERRUPTED, None, SessionEnd("interrupted", 130)),
    ],
)
def test_final_reduce_gives_the_spec_exit_codes(
    status: Status, signum: int | None, end: SessionEnd
) -> None:
    """0 green, 1 failing, 3 unreachable, 128 + signal "interrupted" (left to resume)."""
    assert final_reduce(LoopResult(status, 2, "why"), signum) == end


@pytest.mark.parametrize("new", [False, True])
def test_files_a_killed_run_left_are_scrubbed_on_the_next_start(tmp_path: Path, new: bool) -> None:
    """Resume or --new: the unfinished session's .log, .progress.jsonl and .xml hold no raw
    secret once the session is opened; a clean file is left as it was."""
    from deployloop.config import load
    from deployloop.redact import Redactor
    from deployloop.session import RunOptions, open_session
    from deployloop.state import Store
    from tests.helpers import config_text, phase_block, suite_block

    (tmp_path / "deployloop.toml").write_text(
        config_text(phase_block("p", suite_block("s", "true")), session='logs_dir = "logs"')
    )
    config = load(tmp_path / "deployloop.toml")
    store = Store(tmp_path / "state")
    row, _ = open_session(store, config, RunOptions())
    token = "ghp_" + "Zq9" * 12
    left = {
        "s.log": f"print {token}\n",
        "s.progress.jsonl": f'{{"event": "start", "id": "t[{token}]"}}\n',
        "s.xml": f'<testcase name="{"".join(f"&#x{ord(c):x};" for c in token)}"/>\n',
        "clean.log": "nothing\n",
    }
    for name, text in left.items():
        (row.directory / "1").mkdir(parents=True, exist_ok=True)
        (row.directory / "1" / name).write_text(text)
    before = (row.directory / "1" / "clean.log").stat().st_ino
    again, resumed = open_session(store, config, RunOptions(new=new), Redactor())
    store.close()
    assert resumed is not new and (again.id == row.id) is not new
    for name in left:
        text = (row.directory / "1" / name).read_text()
        assert token not in html.unescape(text), name
    assert (row.directory / "1" / "clean.log").stat().st_ino == before
