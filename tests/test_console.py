"""The console prints untrusted text as written: brackets are never rich markup, colons no emoji."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from rich.table import Table

from deployloop.console import Console
from deployloop.events import Mixed, SuiteStart
from deployloop.live import LiveView
from tests.helpers import cli

# What pytest parametrize and real suites put in ids and messages; each broke or vanished as markup.
UNTRUSTED = ("test_get[/api/users/1]", "test_ping[ping]", "test_x[bold]", "[/]", "a]b[c", ":x:")

JUNIT = """<?xml version="1.0"?>
<testsuite name="pytest">
  <testcase classname="tests.test_api" name="test_get[/api/users/1]" time="0.1">
    <failure message="AssertionError: [/api/users/1] answered [500]">E  boom</failure>
  </testcase>
  <testcase classname="tests.test_api" name="test_ping[ping]" time="0.1"/>
  <testcase classname="tests.test_api" name="test_ping[pong]" time="0.1"/>
  <testcase classname="tests.test_api" name="test_ping[bold]" time="0.1">
    <failure message="AssertionError: [/api/users/1] answered [500]">E  boom</failure>
  </testcase>
</testsuite>
"""


@pytest.mark.parametrize("interactive", [True, False])
def test_lines_and_tables_print_brackets_as_written(interactive: bool) -> None:
    """Console.line and Console.show (status, preflight, results tables) keep every bracket."""
    stream = StringIO()
    console = Console(stream, interactive=interactive)
    table = Table("value")
    for text in UNTRUSTED:
        console.line(f"suite ended: {text}", "bold")
        table.add_row(text)
    console.show(table)
    output = stream.getvalue()
    for text in UNTRUSTED:
        assert f"suite ended: {text}" in output
        assert output.count(text) >= 2


def test_results_prints_ids_with_brackets(tmp_path: Path) -> None:
    """`results` on ids with [, ] and [/…] exits 0 and shows each parametrized id in full."""
    (tmp_path / "r.xml").write_text(JUNIT, encoding="utf-8")
    done = cli("results", "r.xml", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    for name in ("test_get[/api/users/1]", "test_ping[bold]", "[/api/users/1] answered [500]"):
        assert name in done.stdout
    assert "test_ping[ping]" not in done.stdout  # passed tests are not listed: the table holds 2


def test_live_view_shows_ids_with_brackets(tmp_path: Path) -> None:
    """The live view's event lines and its running-test cell keep ``[ping]`` and ``[/x]``."""
    stream = StringIO()
    progress = tmp_path / "s.progress.jsonl"
    view = LiveView(Console(stream, interactive=True), poll_s=0.02)
    suite = SuiteStart(
        phase="p", suite="s", tests=None, progress=str(progress), previous_s=None, pass_name="full"
    )
    try:
        view(suite)
        progress.write_text('{"event": "start", "id": "t.py::test_get[/api/users/1]"}\n')
        view.suites()[0].poll()
        view(Mixed(from_version="v[1]", to_version="[/v2]"))
        screen = StringIO()
        Console(screen, interactive=False).show(view.renderable())
    finally:
        view.close()
    assert "test_get[/api/users/1]" in screen.getvalue()
    assert "(v[1] → [/v2])" in stream.getvalue()
