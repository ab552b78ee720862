"""Bugs the soak found, pinned with its reproductions (each returns 0 once fixed)."""

from __future__ import annotations

from tests.soak import regression_comment_after_kill, regression_sigterm_in_backoff


def test_sigterm_during_github_backoff_exits_143_promptly() -> None:
    """SIGTERM while the GitHub tracker backs off from 503s ends the run with 143 within 10 s."""
    assert regression_sigterm_in_backoff.main() == 0


def test_no_repeated_comment_after_kill_mid_filing() -> None:
    """A run killed after a comment reached GitHub does not post it again when resumed."""
    assert regression_comment_after_kill.main() == 0
