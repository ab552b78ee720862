"""The pump: a child's pipe copied into a scrubbing writer, flushed when idle, ended on close."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from deployloop.progress import ScrubbedRecords
from deployloop.pump import DRAIN_S, Pump
from deployloop.redact import Redactor
from deployloop.scrub import ScrubbingWriter
from tests.helpers import wait_for

TOKEN = "ghp_" + "Ab12" * 9


def test_idle_stream_is_flushed_scrubbed_while_the_writer_stays(tmp_path: Path) -> None:
    """A progress line reaches the file, masked, while the writer keeps its pipe open."""
    read_fd, write_fd = os.pipe()
    path = tmp_path / "p.jsonl"
    pump = Pump("t")
    pump.add(read_fd, ScrubbedRecords(path, Redactor()))
    with pump:
        os.write(write_fd, f'{{"id": "test_x[{TOKEN}]"}}\n'.encode())
        wait_for(lambda: path.exists() and "REDACTED" in path.read_text(), timeout=10)
        assert TOKEN not in path.read_text()
        os.close(write_fd)


def test_close_ends_even_when_a_stray_holds_the_pipe(tmp_path: Path) -> None:
    """A process outside the child's group keeping the pipe open cannot hold close() up."""
    read_fd, write_fd = os.pipe()
    stray = subprocess.Popen(
        [sys.executable, "-c", "import time; print('stray up', flush=True); time.sleep(60)"],
        stdout=write_fd,
        start_new_session=True,
    )
    os.close(write_fd)
    try:
        pump = Pump("t")
        pump.add(read_fd, ScrubbingWriter(tmp_path / "s.log", None))
        with pump:
            wait_for(lambda: "stray up" in (tmp_path / "s.log").read_text(), timeout=10)
            started = time.monotonic()
        assert time.monotonic() - started < DRAIN_S + 1
    finally:
        stray.kill()
        stray.wait()
