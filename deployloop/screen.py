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
- a known value written across a line break, or holding one;
- a character whose lower case is ASCII or longer (KELVIN SIGN, LATIN CAPITAL I WITH DOT):
  ``str.lower`` would make a probe of it, or shift every position.

Hyperscan is imported only when a Screen is first built (``deployloop --help`` never pays for
it); :func:`load` returns None where it cannot be imported, and the Redactor then scans the
whole text in Python, with the same result.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from enum import Enum
from typing import Any

LineRange = tuple[int, int]  # byte offsets: start of the line, its end (before the b"\n")
BREAK = rb"(?:\r?\n[ \t]*)?"  # as redact._split_pattern: a line break and the next indent
WHOLE_TEXT_CHARS = ("\u0130", "\u212a")  # every char whose lower() is longer or ASCII


class Hit(Enum):
    """What a match of one screen expression means."""

    LINE = "line"  # its line may hold a secret
    WHOLE = "whole"  # the text must be scanned whole
    VALUE = "value"  # a known value, raw: WHOLE when written across a line break


def load(
    probes: Iterable[tuple[str, bool]],
    screens: Iterable[str],
    whole: Iterable[str],
    secrets: Iterable[str],
) -> Screen | None:
    """A Screen, or None when Hyperscan cannot be imported (no wheel for this platform).
    Arguments as for :class:`Screen`."""
    try:
        import hyperscan
    except ImportError:
        return None
    return Screen(hyperscan, probes, screens, whole, secrets)


class Screen:
    """Hyperscan block-mode database over the Redactor's triggers.

    ``probes``: (literal, caseless) pairs whose line may hold a secret; ``screens``: regexes
    (PCRE syntax, over bytes) of the same meaning; ``whole``: literals (a private-key marker)
    whose presence means the text is scanned whole, as are the ``WHOLE_TEXT_CHARS``;
    ``secrets``: the spellings of known values, each also matched with line breaks between
    its characters. Safe to share between threads (one
    scratch space each). Raises ``hyperscan.CompilerError`` for a screen it cannot compile.
    """

    def __init__(
        self,
        hyperscan: Any,
        probes: Iterable[tuple[str, bool]],
        screens: Iterable[str],
        whole: Iterable[str],
        secrets: Iterable[str],
    ) -> None:
        self._hs = hyperscan
        expressions: list[bytes] = []
        flags: list[int] = []
        self._meaning: list[tuple[Hit, int]] = []

        def add(expression: bytes, meaning: Hit, length: int = 0, caseless: bool = False) -> None:
            expressions.append(expression)
            flags.append(hyperscan.HS_FLAG_CASELESS if caseless else 0)
            self._meaning.append((meaning, length))

        for probe, caseless in probes:
            add(_literal(probe), Hit.LINE, caseless=caseless)
        for screen in screens:
            add(screen.encode(), Hit.LINE)
        for literal in (*whole, *WHOLE_TEXT_CHARS):
            add(_literal(literal), Hit.WHOLE)
        for value in secrets:
            if "\n" in value:
                add(_literal(value), Hit.WHOLE)
            else:  # the raw value with a break allowed between any two characters
                split = BREAK.join(_literal(char) for char in value)
                add(split, Hit.VALUE, len(utf8(value)))
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=expressions,
            ids=list(range(len(expressions))),
            elements=len(expressions),
            flags=flags,
        )
        self._local = threading.local()

    def lines(self, data: bytes) -> list[LineRange] | None:
        """The lines of ``data`` that may hold a secret, sorted, or None when ``data`` must be
        scanned whole (see the module docstring)."""
        ends: list[tuple[int, int]] = []
        self._db.scan(
            data,
            match_event_handler=lambda ident, _start, end, _flags, _ctx: ends.append((ident, end)),
            scratch=self._scratch(),
        )
        found: dict[int, int] = {}
        for ident, end in ends:
            meaning, length = self._meaning[ident]
            start = data.rfind(b"\n", 0, end) + 1
            if meaning is Hit.WHOLE or (meaning is Hit.VALUE and end - length < start):
                return None
            if start not in found:
                stop = data.find(b"\n", end)
                found[start] = len(data) if stop < 0 else stop
        return sorted(found.items())

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

