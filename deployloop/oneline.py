"""Text shown on one line within a width (a report's message, a commit status, a harness
error's quote): its whitespace runs become one space, and a cut ends in an ellipsis."""

from __future__ import annotations


def one_line(text: str, limit: int) -> str:
    """``text`` on one line of at most ``limit`` characters (``limit`` ≥ 1): every run of
    whitespace, line breaks too, becomes one space; past ``limit`` it is cut to ``limit - 1``
    characters and "…"."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
