"""Opening a session and reducing its end to the exit code the SPEC promises."""

from __future__ import annotations

import signal

import pytest

from deployloop.loop import LoopResult, Status
from deployloop.session import SessionEnd, final_reduce


@pytest.mark.parametrize(
    ("status", "signum", "end"),
    [
        (Status.GREEN, None, SessionEnd("green", 0)),
        (Status.FAILING, None, SessionEnd("failing", 1)),
        (Status.UNREACHABLE, None, SessionEnd("unreachable", 3)),
        (Status.INTERRUPTED, signal.SIGINT, SessionEnd("running", 130)),
        (Status.INTERRUPTED, signal.SIGTERM, SessionEnd("running", 143)),
        (Status.INTERRUPTED, None, SessionEnd("running", 130)),
    ],
)
def test_final_reduce_gives_the_spec_exit_codes(
    status: Status, signum: int | None, end: SessionEnd
) -> None:
    """0 green, 1 failing, 3 unreachable, 128 + signal interrupted (and left open as running)."""
    assert final_reduce(LoopResult(status, 2, "why"), signum) == end
