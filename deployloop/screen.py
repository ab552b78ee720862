"""One pass over bytes for every secret kind at once: which lines may hold a secret.

:class:`~deployloop.redact.Redactor` finds secrets with Python patterns, each behind a cheap
substring check; on a 64 MB suite log that is some 40 scans of the text, about 30 times slower
than reading its lines. A :class:`Screen` compiles every probe, known value and key-block marker
into one Hyperscan database (Intel's multi-pattern engine, the PyPI wheel ``hyperscan`` with the
library bundled) and scans the raw bytes once. The Redactor then runs its own patterns only on
the lines the screen names, so what gets masked is decided by the same Python code either way.

Why lines are enough: every rule but the key block matches within one line, on a line holding
one of its probes, whatever the lines around it hold (see ``Redactor.spans``). What does reach
across lines, or changes the folding of the whole text, makes the screen answer "scan it all":

- a private-key marker (the block runs to its END line or to the end of the text);
- a fixed-length token cut short at a line's end (it goes on at the next line's start);
- a known value holding a line break;
- the first or last characters of a known value (its split probes) outside a whole copy of it:
  the value may go on past a line break;
- a character whose lower case is ASCII (KELVIN SIGN): lower-cased, it may complete a
  case-blind probe that the screen, blind to case in ASCII only, does not see.

One difference remains, by design: a known value cut by two or more line breaks into pieces
all shorter than its split probes is masked by the pure-Python path only when a whole copy of
it happens to be in the same text; the screen does not look for it. (Looking would cost more
than the rest of the scan: Hyperscan finds no literal to anchor such a pattern on.)

Hyperscan is imported only when a Screen is first built (``deployloop --help`` never pays for
it); :func:`load` returns None where it cannot be imported, and the Redactor then scans the
whole text in Python.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable
from enum import Enum
from functools import lru_cache
from typing import Any

LineRange = tuple[int, int]  # byte offsets: start of the line, its end (before the b"\n")
WHOLE_TEXT_CHARS = ("\u212a",)  # every non-ASCII char whose lower() is ASCII


class Hit(Enum):
    """What a match of one screen expression means."""

    LINE = "line"  # its line may hold a secret
    WHOLE = "whole"  # the text must be scanned whole
    VALUE = "value"  # a whole known value (raw): its line
    PART = "part"  # a known value's split probe: WHOLE unless inside a VALUE hit of it


@lru_cache(maxsize=32)
def load(
    probes: tuple[tuple[str, bool], ...],
    screens: tuple[str, ...],
    whole: tuple[str, ...],
    values: tuple[tuple[str, int], ...],
    crossing: tuple[str, ...] = (),
) -> Screen | None:
    """A Screen, or None when Hyperscan cannot be imported (no wheel for this platform).
    Arguments as for :class:`Screen`. Cached: a Redactor is made per config and per tracker,
    and compiling takes some 5 ms."""
    try:
        import hyperscan
    except ImportError:
        return None
    return Screen(hyperscan, probes, screens, whole, values, crossing)


class Screen:
    """Hyperscan block-mode database over the Redactor's triggers.

    ``probes``: (literal, caseless) pairs whose line may hold a secret (a known value's XML or
    JSON spelling among them); ``screens``: regexes (PCRE syntax, over bytes) of the same
    meaning; ``whole``: literals (a private-key marker) whose presence means the text is
    scanned whole, as are the ``WHOLE_TEXT_CHARS``; ``values``: known values as written, each
    with the length of its split probes; ``crossing``: regexes (a token cut short at a line's
    end) whose match means the text is scanned whole. Safe to share between threads (a scratch space
    each). Raises ``hyperscan.CompilerError`` for a screen it cannot compile.
    """

    def __init__(
        self,
        hyperscan: Any,
        probes: Iterable[tuple[str, bool]],
        screens: Iterable[str],
        whole: Iterable[str],
        values: Iterable[tuple[str, int]],
        crossing: Iterable[str] = (),
    ) -> None:
        self._hs = hyperscan
        expressions: list[bytes] = []
        flags: list[int] = []
        self._meaning: list[tuple[Hit, int, int]] = []  # (hit, value index, length in bytes)

        def add(expression: bytes, hit: Hit, value: int = -1, size: int = 0, flag: int = 0) -> None:
            expressions.append(expression)
            flags.append(flag)
            self._meaning.append((hit, value, size))

        for probe, caseless in probes:
            hit = Hit.WHOLE if "\n" in probe else Hit.LINE
            add(_literal(probe), hit, flag=hyperscan.HS_FLAG_CASELESS if caseless else 0)
        for screen in screens:
            add(screen.encode(), Hit.LINE)
        for literal in (*whole, *WHOLE_TEXT_CHARS):
            add(_literal(literal), Hit.WHOLE)
        for expression in crossing:
            add(expression.encode(), Hit.WHOLE)
        self._sizes: list[int] = []  # of each value, in bytes
        for index, (value, ends) in enumerate(values):
            self._sizes.append(len(utf8(value)))
            hit = Hit.WHOLE if "\n" in value else Hit.VALUE
            add(_literal(value), hit, index, self._sizes[-1])
            for part in {value[:ends], value[-ends:]}:
                add(_literal(part), Hit.PART, index, len(utf8(part)))
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=expressions,
            ids=list(range(len(expressions))),
            elements=len(expressions),
            flags=flags,
        )
        self._local = threading.local()

    def lines(self, data: bytes | bytearray) -> list[LineRange] | None:
        """The lines of ``data`` that may hold a secret, sorted, or None when ``data`` must be
        scanned whole (see the module docstring)."""
        ends: list[tuple[int, int]] = []
        self._db.scan(
            data,
            match_event_handler=lambda ident, _start, end, _flags, _ctx: ends.append((ident, end)),
            scratch=self._scratch(),
        )
        copies: dict[int, list[int]] = {}  # value index → where its whole copies end
        for ident, end in ends:
            hit, value, _ = self._meaning[ident]
            if hit is Hit.WHOLE:
                return None
            if hit is Hit.VALUE:
                copies.setdefault(value, []).append(end)
        found: dict[int, int] = {}
        for ident, end in ends:
            hit, value, size = self._meaning[ident]
            if hit is Hit.PART and not self._inside(end - size, end, value, copies.get(value, [])):
                return None
            start = data.rfind(b"\n", 0, end) + 1
            if start not in found:
                stop = data.find(b"\n", end)
                found[start] = len(data) if stop < 0 else stop
        return sorted(found.items())

    def _inside(self, start: int, end: int, value: int, copy_ends: list[int]) -> bool:
        """Whether ``[start, end)`` lies within a whole copy of ``value`` (all its copies have
        one length, so the first copy ending at or after ``end`` is the one to check)."""
        copy_ends.sort()
        i = bisect_left(copy_ends, end)
        return i < len(copy_ends) and copy_ends[i] - self._sizes[value] <= start

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        return scratch


def _literal(text: str) -> bytes:
    """``text`` as UTF-8 bytes matched literally: ASCII letters and digits as they are (so a
    caseless flag applies), every other byte escaped."""
    return b"".join(
        bytes((byte,)) if chr(byte).isalnum() and byte < 0x80 else b"\\x%02x" % byte
        for byte in utf8(text)
    )


def utf8(text: str) -> bytes:
    """``text`` as the bytes it was decoded from (surrogate escapes back to their bytes)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate no decoder made: never in suite output
        return text.encode("utf-8", "surrogatepass")
