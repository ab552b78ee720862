"""Human durations ("90s", "15m", "8h", "1h30m") and clock times ("07:00")."""

from __future__ import annotations

import datetime as dt
import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_duration(text: str | float | int) -> float:
    """Seconds (a finite float >= 0) in ``text``; a bare number is seconds.

    Raises ValueError naming the input for anything else: negative, ``inf``, ``nan``, a number
    too large for a float, or text that is not ``<number><unit>`` parts (units ms, s, m, h, d).
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        return _finite(text, text)
    spec = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", spec):
        return _finite(float(spec), text)
    parts = _PART.findall(spec)
    if not parts or "".join(n + u for n, u in parts) != spec:
        raise ValueError(f"not a duration: {_shown(text)} (use e.g. '90s', '15m', '8h', '1h30m')")
    return _finite(sum(float(n) * _UNIT_S[u] for n, u in parts), text)


def _finite(seconds: float, text: object) -> float:
    try:
        value = float(seconds)
    except OverflowError:  # an int beyond float's range
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"not a finite duration: {_shown(text)}")
    if value < 0:
        raise ValueError(f"duration must not be negative: {_shown(text)}")
    return value


def _shown(text: object) -> str:
    """The input as quoted in an error, cut short: a config value can be any length."""
    shown = repr(text)
    return shown if len(shown) <= 40 else f"{shown[:37]}..."


def parse_clock(text: str) -> dt.time:
    """A local wall-clock time ``HH:MM``."""
    match = _CLOCK.match(str(text).strip())
    if not match:
        raise ValueError(f"not a clock time: {_shown(text)} (use 'HH:MM', e.g. '07:00')")
    return dt.time(int(match.group(1)), int(match.group(2)))


def next_occurrence(clock: dt.time, now: dt.datetime) -> dt.datetime:
    """The first moment at ``clock`` after ``now`` (tomorrow when today's has passed)."""
    candidate = now.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
    if candidate <= now:
        candidate += dt.timedelta(days=1)
    return candidate


def format_duration(seconds: float) -> str:
    """Compact human form: '0.4 s', '14m 3s', '2h 5m'."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"
