"""The real `deployloop run` on a real terminal (tmux): the progress bar moves as tests finish."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers import config_text, phase_block, python_pytest, suite_block, write_tests
from tests.test_live import Tmux

SUITE = """
import os, time, pytest

def _wait_for(name):
    while not os.path.exists(os.path.join({gates!r}, name)):
        time.sleep(0.05)

@pytest.mark.parametrize("n", range(30))
def test_step(n):
    if n == 10:
        _wait_for("first")
    if n == 20:
        _wait_for("second")
    assert n != 15, "one failure, to colour the bar"
"""


def test_progress_bar_moves_in_tmux(tmp_path: Path) -> None:
    """10/30 while test 10 waits, then 20/30, then the suite's end line; exit 1 (one failure)."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    gates = tmp_path / "gates"
    gates.mkdir()
    write_tests(tmp_path / "e2e", "test_steps.py", SUITE.format(gates=str(gates)))
    config = config_text(
        phase_block("infra", suite_block("steps", python_pytest(str(tmp_path / "e2e")))),
        extra="[retest]\nrerun_failed = false\n",
    )
    (tmp_path / "deployloop.toml").write_text(config)
    command = f"cd {tmp_path} && {sys.executable} -m deployloop run --once; echo EXIT=$?; sleep 60"
    pane = Tmux(tmp_path / "tmux.sock", command)
    try:
        first = pane.wait_screen("10/30", timeout=30)
        assert "10 passed" in first
        (gates / "first").touch()
        second = pane.wait_screen("20/30", timeout=15)
        assert "19 passed" in second and "1 failed" in second
        (gates / "second").touch()
        final = pane.wait_screen("EXIT=1", timeout=30)
        assert "suite infra/steps: 29 passed, 1 failed" in final
        assert "20/30" not in final
    finally:
        pane.kill()
