"""The kinds of value a config key holds, each refusing what would misbehave at run time.

A number that is not finite, a duration below its stated minimum or above 30 days, a regex
that does not compile, a URL that does not parse, a header h11 would refuse, a command that
cannot be split into words: each is a ``ValueError`` here, so ``load`` reports it as
``FILE:LINE: message`` before anything runs.

Duration minimums (the README's config section states the same):

- ``Duration``: at least 0 s (``settle``, ``write_interval``, ``unreachable_timeout``, ...);
- ``Wait``: at least 0.1 s, for anything deployloop repeats or bounds a process by (``poll``,
  ``interval``, every ``timeout``, ``retry_backoff``): ``poll = "0s"`` would spawn the version
  command thousands of times a second;
- ``Budget``: at least 1 s.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from deployloop.durations import parse_clock, parse_duration

MAX_DURATION_S = 30 * 86400.0  # a month: longer than any night, finite for every sum
MIN_WAIT_S = 0.1
MIN_BUDGET_S = 1.0
MAX_COUNT = 10_000_000  # tests, failures: beyond any real suite, far below overflow
SHOWN = 80  # characters of a bad value an error shows (``config_text.as_written`` relies on it)


def _seconds_within(minimum: float) -> Callable[[float], float]:
    def check(seconds: float) -> float:
        if seconds < minimum:
            raise ValueError(f"must be at least {minimum:g} s (got {seconds:g} s)")
        if seconds > MAX_DURATION_S:
            raise ValueError(f"must be at most 30 days (got {seconds:g} s)")
        return seconds

    return check


Duration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_seconds_within(0))]
Wait = Annotated[
    float, BeforeValidator(parse_duration), AfterValidator(_seconds_within(MIN_WAIT_S))
]
Budget = Annotated[
    float, BeforeValidator(parse_duration), AfterValidator(_seconds_within(MIN_BUDGET_S))
]
Seconds = Annotated[float, Field(ge=0, le=MAX_DURATION_S)]  # a plain number of seconds


def _not_bool(value: Any) -> Any:
    """TOML's ``true`` is no number: pydantic's lax int would take it as 1 (``shards = true``)."""
    if isinstance(value, bool):
        raise ValueError("a whole number is needed here, not true or false")
    return value


# A whole number as a config key gives it: not a bool (a ``${NAME}`` string still converts).
Integer = Annotated[int, BeforeValidator(_not_bool)]
Count = Annotated[Integer, Field(ge=0, le=MAX_COUNT)]


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not _is_url(value, schemes):
            raise ValueError(
                f"not a URL ({'/'.join(schemes)}): {value[:SHOWN]!r} (e.g. {schemes[-1]}://host/path)"
            )
        return value

    return check


def _is_url(value: str, schemes: tuple[str, ...]) -> bool:
    if any(c.isspace() or ord(c) < 32 for c in value):
        return False
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number in 0..65535
    except ValueError:
        return False
    return parts.scheme in schemes and bool(parts.hostname)


HttpUrl = Annotated[str, AfterValidator(_url(("http", "https")))]
WsUrl = Annotated[str, AfterValidator(_url(("ws", "wss")))]
ProxyUrl = Annotated[str, AfterValidator(_url(("http", "https", "socks5", "socks5h")))]


def _path_or_url(value: str) -> str:
    """A path on base_url (``/health``, ``version``) or a full URL."""
    if "://" in value:
        return _url(("http", "https", "ws", "wss"))(value)
    if not value or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError(f"not a URL path: {value[:SHOWN]!r} (e.g. /health)")
    return value


PathOrUrl = Annotated[str, AfterValidator(_path_or_url)]


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"not a regular expression: {pattern[:SHOWN]!r}: {exc}") from None
    return pattern


Regex = Annotated[str, AfterValidator(_regex)]
_V2_PRINT = re.compile(r"v2-[0-9a-f]{12}")


def _v2_print(value: str) -> str:
    """A cluster's key as ``results`` and issue markers show it (fingerprint.VERSION_V2)."""
    if not _V2_PRINT.fullmatch(value):
        raise ValueError(f"not a v2 fingerprint: {value[:SHOWN]!r} (e.g. v2-0123456789ab)")
    return value


V2Print = Annotated[str, AfterValidator(_v2_print)]


def _command(command: str) -> str:
    """A command line splits into words as the runner will split it (shlex, POSIX rules)."""
    if "\0" in command:
        raise ValueError("a command cannot contain a NUL character")
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"cannot split {command[:SHOWN]!r} into words: {exc}") from None
    if not words:
        raise ValueError("an empty command")
    return command


Command = Annotated[str, AfterValidator(_command)]

# RFC 9110 field names are tokens; values must not carry line breaks or NUL, and h11 (httpx)
# refuses leading or trailing whitespace.
HeaderName = Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", max_length=256)]


def _header_value(value: str) -> str:
    if any(c in value for c in "\r\n\0") or value != value.strip(" \t"):
        # The value is not shown: a header usually carries a credential.
        raise ValueError("not a valid header value (no line breaks, no leading or trailing space)")
    return value


HeaderValue = Annotated[str, AfterValidator(_header_value)]


def _path_text(value: str) -> str:
    if not value or "\0" in value:
        raise ValueError("a path must be non-empty text without NUL characters")
    return value


PathText = Annotated[str, AfterValidator(_path_text)]


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]  # what goes to a process: argv, environment


def _clock(value: object) -> dt.time:
    """``HH:MM`` as a string, or a TOML local time (``until = 07:00``) on the minute."""
    if not isinstance(value, dt.time):
        return parse_clock(str(value))
    if value.second or value.microsecond or value.tzinfo:
        raise ValueError(f"not a clock time: {value.isoformat()} (write it as a string 'HH:MM')")
    return value


Clock = Annotated[dt.time, BeforeValidator(_clock)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=80)]
Label = Annotated[str, Field(min_length=1, max_length=50)]  # GitHub's limit for a label name
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=256)]
