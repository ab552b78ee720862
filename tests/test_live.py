"""The live view and the heartbeat: progress files tailed into bars on a terminal, lines off one."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console as RichConsole

from deployloop.board import short_id
from deployloop.console import Console
from deployloop.events import SessionEnd, SuiteEnd, SuiteStart, Waiting
from deployloop.live import Heartbeat, LiveView, make_sinks
from deployloop.progress import SuiteProgress
from deployloop.view import EventView
from tests.helpers import REPO, wait_for

WAITING = Waiting(tested="v1", reason="polling every 30 s")
GREEN = SessionEnd(status="green", exit_code=0, iterations=1, reason="")


def start(progress: Path, suite: str = "p1-critical") -> SuiteStart:
    """The suite_start of ``suite`` (30 tests expected, 20 s last time)."""
    return SuiteStart(
        phase="infra", suite=suite, tests=30, progress=str(progress), previous_s=20.0,
        pass_name="full",
    )  # fmt: skip


def end(counts: dict[str, int] | None = None, wall_s: float = 1.0) -> SuiteEnd:
    """The suite_end of infra/p1-critical."""
    return SuiteEnd(
        phase="infra", suite="p1-critical", counts=counts or {}, wall_s=wall_s,
        harness_error=None, exit_code=0, pass_name="full",
    )  # fmt: skip


def terminal() -> tuple[Console, StringIO]:
    """A Console that believes it is on a terminal, recording to a string."""
    stream = StringIO()
    console = Console(stream)
    console.interactive = True
    console.rich = RichConsole(file=stream, force_terminal=True, width=160, highlight=False)
    return console, stream


def append(path: Path, *records: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)


def results(first: int, last: int, failing: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
    """Progress records for tests ``first..last-1``, a start then a result each."""
    records: list[dict[str, Any]] = []
    for n in range(first, last):
        nodeid = f"tests/e2e/test_p1.py::test_case[{n}]"
        outcome = "failed" if n in failing else "passed"
        records += [
            {"event": "start", "id": nodeid},
            {"event": "test", "id": nodeid, "outcome": outcome},
        ]
    return records


def screen(view: LiveView, width: int = 160) -> str:
    """The live region as plain text, as a terminal ``width`` wide shows it."""
    out = RichConsole(file=StringIO(), width=width, record=True)
    out.print(view.renderable())
    return out.export_text()


@pytest.fixture
def progress(tmp_path: Path) -> Path:
    return tmp_path / "p1-critical.progress.jsonl"


@pytest.fixture
def live(progress: Path) -> Iterator[tuple[LiveView, StringIO]]:
    console, stream = terminal()
    view = LiveView(console, poll_s=0.02)
    try:
        yield view, stream
    finally:
        view.close()


def test_progress_counts_lines_and_waits_for_a_torn_one(progress: Path) -> None:
    """Whole lines are counted by outcome; a half-written line is kept until its newline comes."""
    p = SuiteProgress("infra", "p1", path=progress)
    append(progress, {"event": "collected", "count": 4}, *results(0, 3, failing=frozenset({1})))
    with open(progress, "a", encoding="utf-8") as handle:
        handle.write('{"event": "test", "outcome": "err')
    assert p.poll() is True
    assert (p.collected, p.passed, p.failed, p.done) == (4, 2, 1, 3)
    with open(progress, "a", encoding="utf-8") as handle:
        handle.write('or"}\nnot json\n')
    assert p.poll() is True and p.failed == 2 and p.poll() is False


def test_progress_skips_what_an_earlier_attempt_wrote(progress: Path) -> None:
    """A resumed iteration appends to the old file: only lines written after suite_start count."""
    append(progress, {"event": "collected", "count": 30}, *results(0, 10))
    p = SuiteProgress.from_event(start(progress))
    append(progress, {"event": "collected", "count": 30}, *results(0, 2))
    p.poll()
    assert (p.done, p.collected) == (2, 30)


def test_eta_from_previous_run_then_from_pace() -> None:
    """Before three tests are done the ETA is last run's wall time; after, the pace so far."""
    p = SuiteProgress("infra", "p1", previous_s=100.0, started=0.0, collected=40)
    assert p.eta(now=30.0) == pytest.approx(70.0)
    p.passed = 10
    assert p.eta(now=30.0) == pytest.approx(90.0)  # 3 s a test, 30 to go
    assert SuiteProgress("infra", "p1", previous_s=10.0, started=0.0).eta(now=30.0) is None


def test_short_id_keeps_the_test_name() -> None:
    """The bar shows the file name and test, not the directories before it."""
    assert short_id("tests/e2e/test_x.py::TestA::test_b[1]") == "test_x.py::TestA::test_b[1]"


def test_live_bar_counts_go_up(live: tuple[LiveView, StringIO], progress: Path) -> None:
    """As the plugin appends results the bar's done/total and passed/failed counts rise."""
    view, stream = live
    view(start(progress))
    assert "infra/p1-critical" in screen(view) and "0/30" in screen(view)
    append(progress, {"event": "collected", "count": 30}, *results(0, 5, failing=frozenset({3})))
    wait_for(lambda: "5/30" in screen(view), timeout=5)
    assert "4 passed" in screen(view) and "1 failed" in screen(view)
    assert "test_p1.py::test_case[4]" in screen(view)
    append(progress, *results(5, 20))
    wait_for(lambda: "20/30" in screen(view), timeout=5)
    assert "19 passed" in screen(view)
    wait_for(lambda: "20/30" in stream.getvalue(), timeout=5)  # the refresh thread drew it too


def test_live_prints_event_lines_and_ends_clean(
    live: tuple[LiveView, StringIO], progress: Path
) -> None:
    """Event lines print as before; at session_end the bar is gone and the cursor shown again."""
    view, stream = live
    view(start(progress))
    assert view.suites() and "suite infra/p1-critical started" in stream.getvalue()
    counts = {"passed": 30, "failed": 0}
    view(end(counts, wall_s=12.0))
    assert view.suites() == [] and "infra/p1-critical" not in screen(view)
    view(WAITING)
    assert "waiting for redeploy (tested v1)" in screen(view)
    view(GREEN)
    output = stream.getvalue()
    assert (
        "suite infra/p1-critical: 30 passed in 12 s" in output and "session ended: green" in output
    )
    assert (
        output.rstrip().endswith("\x1b[?25h") or "\x1b[?25h" in output.rsplit("session ended", 1)[1]
    )
    assert screen(view).strip() == ""


def test_one_bar_per_running_suite(live: tuple[LiveView, StringIO], tmp_path: Path) -> None:
    """Two running suites get two bars; the same suite started again still gets one."""
    view, _ = live
    for suite in ("p1-critical", "smoke", "smoke"):
        path = tmp_path / f"{suite}.progress.jsonl"
        view(start(path, suite))
    text = screen(view)
    assert text.count("infra/smoke") == 1 and text.count("infra/p1-critical") == 1
    assert len(view.suites()) == 2


def test_narrow_terminal_keeps_the_counts(live: tuple[LiveView, StringIO], progress: Path) -> None:
    """At 80 columns clock and running test move to a second line; every count stays whole."""
    view, _ = live
    view(start(progress, "websocket-agent-events"))
    append(progress, {"event": "collected", "count": 30}, *results(0, 12, failing=frozenset({4})))
    wait_for(lambda: "12/30" in screen(view, 80), timeout=5)
    lines = screen(view, 80).splitlines()
    assert "11 passed" in lines[0] and "1 failed" in lines[0] and "…" not in lines[0]
    assert lines[1].endswith("   test_p1.py::test_case[11]")  # the clock, then the running test
    assert all(len(line.rstrip()) <= 80 for line in lines)


def test_heartbeat_speaks_while_a_suite_runs(progress: Path) -> None:
    """Off a terminal, a 'still running' line with counts comes every interval, then stops."""
    stream = StringIO()
    beat = Heartbeat(Console(stream), interval_s=0.1)
    try:
        beat(start(progress))
        append(
            progress, {"event": "collected", "count": 30}, *results(0, 3, failing=frozenset({0}))
        )
        line = "still running infra/p1-critical: 3/30 tests done, 1 failed"
        wait_for(lambda: line in stream.getvalue(), timeout=5)
        beat(end())
        beat(WAITING)
        wait_for(lambda: "still waiting for redeploy (tested v1): " in stream.getvalue(), timeout=5)
        assert "\x1b[" not in stream.getvalue()  # plain lines for nohup and cron
    finally:
        beat(GREEN)
    assert beat._thread is not None and not beat._thread.is_alive()


def test_heartbeat_is_quiet_when_nothing_runs(progress: Path) -> None:
    """Between a suite's end and the next start nothing is owed, however long the gap."""
    beat = Heartbeat(Console(StringIO()), interval_s=180)
    beat(start(progress))
    assert beat.due(1e9)  # a suite running for ever is owed a line
    beat(end())
    assert beat.due(1e9) == []
    beat.close()


def test_make_sinks_follows_the_terminal() -> None:
    """A live view on a terminal; event lines and a heartbeat off one."""
    assert [type(s) for s in make_sinks(terminal()[0])] == [LiveView]
    assert [type(s) for s in make_sinks(Console(StringIO()))] == [EventView, Heartbeat]


# --- a real terminal -------------------------------------------------------------------------

DRIVER = """
    import os, sys, threading
    sys.path.insert(0, {repo!r})
    from deployloop.console import Console
    from deployloop.live import LiveView
    from deployloop.events import SessionEnd, SessionStart, SuiteEnd, SuiteStart

    start = SuiteStart.from_json({suite!r})
    go = {go!r}
    view = LiveView(Console())
    with open(go + ".pid", "w") as handle:
        handle.write(str(os.getpid()))
    view(SessionStart(session="s1", config="cfg.toml", resumed=False, deadline=None,
                      max_iterations=1, logs_dir="."))
    view(start)
    pause = threading.Event()
    while not os.path.exists(go):
        pause.wait(0.05)
    view(SuiteEnd(phase=start.phase, suite=start.suite, counts={{"passed": 19, "failed": 1}},
                  wall_s=4.0, harness_error=None, exit_code=1, pass_name=start.pass_name))
    view(SessionEnd(status="failing", exit_code=1, iterations=1, reason=""))
    print("DRIVER DONE")
"""


class Tmux:
    """A private tmux server (its own socket, in the test's directory): one command, 160x40."""

    def __init__(self, socket: Path, command: str) -> None:
        self.base = ["tmux", "-S", str(socket), "-f", "/dev/null"]
        self.name = f"dl-live-{uuid.uuid4().hex[:8]}"
        # The server inherits this: a size in COLUMNS/LINES would beat the pane's real one.
        drop = ("NO_COLOR", "TMUX", "COLUMNS", "LINES")
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.tmux("new-session", "-d", "-x", "160", "-y", "40", "-s", self.name, command)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=10, env=self.env
        )
        return done.stdout

    def screen(self, colours: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if colours else []), "-t", self.name)

    def wait_screen(self, text: str, timeout: float = 5) -> str:
        """The screen once ``text`` shows on it."""

        def shown() -> str | None:
            screen = self.screen()
            return screen if text in screen else None

        found: str = wait_for(shown, timeout=timeout)
        return found

    def cursor_visible(self) -> bool:
        return self.tmux("display-message", "-p", "-t", self.name, "#{cursor_flag}").strip() == "1"

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=10, env=self.env)


@pytest.fixture
def driver(tmp_path: Path, progress: Path) -> Iterator[tuple[Tmux, Path]]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    go = tmp_path / "go"
    suite = start(progress).to_json()
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER.format(repo=str(REPO), suite=suite, go=str(go))))
    # The sleep keeps the pane as the driver left it, cursor state included, until kill-server.
    pane = Tmux(
        tmp_path / "tmux.sock", f"{sys.executable} {script} 2>{tmp_path / 'driver.err'}; sleep 60"
    )
    try:
        yield pane, go
    finally:
        pane.kill()


def test_live_view_in_a_real_terminal(driver: tuple[Tmux, Path], progress: Path) -> None:
    """In tmux the bar's counts move as results arrive; at the end the bar is gone, cursor back."""
    pane, go = driver
    pane.wait_screen("suite infra/p1-critical started", timeout=8)
    append(progress, {"event": "collected", "count": 30}, *results(0, 5, failing=frozenset({2})))
    assert "4 passed" in pane.wait_screen("5/30") and not pane.cursor_visible()
    append(progress, *results(5, 20))
    first = pane.wait_screen("20/30")
    bars = [line for line in first.splitlines() if "/30" in line]
    assert len(bars) == 1 and "19 passed" in bars[0]  # one bar, redrawn in place
    colours = pane.screen(colours=True)
    assert re.search(r"\x1b\[[0-9;]*32m\s*19 passed", colours)
    assert re.search(r"\x1b\[[0-9;]*31m\s*1 failed", colours)
    go.touch()
    final = pane.wait_screen("DRIVER DONE")
    assert "suite infra/p1-critical: 19 passed, 1 failed in 4.0 s" in final
    assert "20/30" not in final and pane.cursor_visible()


def test_interrupted_live_view_gives_the_terminal_back(
    driver: tuple[Tmux, Path], progress: Path
) -> None:
    """A Ctrl-C that escapes mid-suite still erases the bar and shows the cursor again."""
    pane, go = driver
    pane.wait_screen("suite infra/p1-critical started", timeout=8)
    append(progress, {"event": "collected", "count": 30}, *results(0, 5))
    pane.wait_screen("5/30")
    assert not pane.cursor_visible()
    pid = wait_for(lambda: Path(f"{go}.pid").read_text() if Path(f"{go}.pid").exists() else None)
    os.kill(int(pid), signal.SIGINT)
    wait_for(pane.cursor_visible, timeout=5)
    assert "5/30" not in pane.screen()
