"""Scrub as data is written: suite output reaches the disk with its secrets already masked.

``ScrubbingWriter`` takes the bytes (or text) a suite produces, in whatever pieces they come,
and appends them to a file through a :class:`~deployloop.redact.Redactor`. Nothing raw is ever
written, so a ``kill -9`` at any moment leaves no secret on disk. ``scrub_file`` rewrites a file
left by a killed run in place, atomically, for the next start.

How to wire it (the runner and the process wrapper own this): give the child a pipe instead of
the log file for stdout and stderr, and pump it from a thread::

    with ScrubbingWriter(log_path, redactor) as log:
        while chunk := os.read(read_fd, 65536):
            log.write(chunk)

The log cap (``process.LOG_KEEP``) then counts ``log.written``. The pytest plugin's
``.progress.jsonl`` goes the same way: point ``DEPLOYLOOP_PROGRESS`` at a FIFO (``os.mkfifo``)
and pump it into a second writer. On start-up, call ``scrub_file`` on every ``.log``,
``.progress.jsonl`` and (with ``xml=True``) ``.xml`` a killed run left, before anything reads them.

Why text is held back: a secret may arrive in two pieces, or be wrapped onto the next line. The
writer keeps the last complete line and the unfinished one (at most ``hold`` bytes, then
all but the last ``OVERLAP``) and only writes text no match can still reach into. A private-key
block is held from its BEGIN line to its END line (up to ``hold``; past that it is masked whole).

Why bytes: the writer never decodes what holds no secret. ``Redactor.byte_spans`` screens the
raw bytes in one pass (Hyperscan) and decodes only the lines that may hold one, so a 64 MB log
costs little more than copying it (``make bench``: ``redact_ratio``).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from types import TracebackType

from deployloop.atomic import temp_beside
from deployloop.redact import MASK_BYTES, Redactor, Span, masked_parts
from deployloop.screen import utf8

HOLD = 1 << 20  # bytes kept back at most, waiting for a line to end
OVERLAP = 4096  # kept back from an over-long line: longer than any secret shape or known value
BATCH = 1 << 16  # bytes gathered before a scan: one scan per line would cost 100x more
INTERVAL_S = 1.0  # ...unless this long has passed since the last write to disk
READ_CHUNK = 1 << 20  # bytes read at a time by scrub_file
_CHAR_REF = re.compile(r"&#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}));")
_MARKUP = frozenset("<>&\"'")


class ScrubbingWriter:
    """Appends scrubbed text to ``path``; call ``close()`` (or use ``with``) to write the rest.

    ``write(data)`` takes bytes, a buffer (UTF-8; bad bytes pass through unchanged) or str.
    ``xml=True`` decodes XML character references (``&#x41;``) of visible characters first, so a
    secret spelled with them is found (the file stays equivalent XML). ``hold`` bounds memory.
    ``masked`` counts masks written; ``written`` counts bytes written. Raises ``OSError`` when
    the file cannot be written.
    """

    def __init__(
        self, path: Path, redactor: Redactor, *, xml: bool = False, hold: int = HOLD
    ) -> None:
        self.redactor = redactor
        self.xml = xml
        self.hold = max(hold, 2 * OVERLAP)
        self.masked = 0
        self.written = 0
        self._pending = bytearray()  # one buffer, reused: a fresh 1 MiB each time costs more
        self._last_emit = time.monotonic()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, data: bytes | bytearray | memoryview | str) -> None:
        """Take the next piece of output; write out what can no longer hold part of a secret."""
        before = len(self._pending)
        self._pending += utf8(data) if isinstance(data, str) else data
        size = len(self._pending)
        due = size >= BATCH or time.monotonic() - self._last_emit >= INTERVAL_S
        if (due and self._pending.find(b"\n", before) >= 0) or size > self.hold:
            self._emit(final=False)

    def flush(self) -> None:
        """Write out all but the held-back tail (for a pump that has been idle a while)."""
        self._emit(final=False)

    def close(self) -> None:
        """Write out everything left, scrubbed, and close the file."""
        if self._fd < 0:
            return
        try:
            self._emit(final=True)
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ScrubbingWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _emit(self, final: bool) -> None:
        pending = self._pending
        if self.xml:
            pending[:] = utf8(decode_char_refs(pending.decode("utf-8", "surrogateescape")))
        spans = self.redactor.byte_spans(pending)
        cut = len(pending) if final else safe_cut(pending, spans, self.hold)
        # Past the hold a match can be cut through (a key block over 1 MiB): mask up to the cut.
        done = [(start, mask, min(end, cut)) for start, mask, end in spans if mask < cut]
        with memoryview(pending) as view:
            self._write_all(masked_parts(view[:cut], done, memoryview(MASK_BYTES)))
        del pending[:cut]  # every view released: the buffer may change size again
        self.masked += len(done)
        self._last_emit = time.monotonic()

    def _write_all(self, parts: list[memoryview]) -> None:
        for part in parts:
            left = part
            while left:
                sent = os.write(self._fd, left)
                left = left[sent:]
                self.written += sent


def safe_cut(text: bytes | bytearray, spans: list[Span], hold: int) -> int:
    """Where ``text`` may be cut: before its last complete line (a secret may go on from it
    to the next), or before the last ``OVERLAP`` characters of a line longer than ``hold``;
    then moved back to the start of any match the cut would go through, and out of a half
    character reference. 0 when nothing may be written yet."""
    last = text.rfind(b"\n")
    cut = text.rfind(b"\n", 0, last) + 1 if last >= 0 else 0
    if len(text) - cut > hold:
        cut = len(text) - OVERLAP
    for start, _, end in reversed(spans):  # sorted, merged: each can only move the cut back
        if start < cut < end or (start < cut and end == len(text)):
            cut = start
    amp = text.rfind(b"&", max(cut - 12, 0), cut)
    if amp >= 0 and b";" not in text[amp:cut]:
        cut = amp
    return cut if len(text) - cut <= hold else len(text) - OVERLAP


def decode_char_refs(text: str) -> str:
    """XML character references of visible characters replaced by the characters: equivalent
    XML (XML 1.0 §4.1) in which a secret reads as written. Markup characters and whitespace
    keep their references: they would change the document or be normalised in attributes."""
    if "&#" not in text:
        return text
    return _CHAR_REF.sub(_decoded, text)


def _decoded(match: re.Match[str]) -> str:
    hex_digits, digits = match.groups()
    code = int(hex_digits, 16) if hex_digits else int(digits)
    if code > 0x10FFFF or not chr(code).isprintable() or chr(code).isspace():
        return match.group(0)
    char = chr(code)
    return match.group(0) if char in _MARKUP else char


def scrub_file(path: Path, redactor: Redactor, *, xml: bool = False) -> int:
    """Rewrite ``path`` scrubbed, atomically (a temporary file beside it, then ``os.replace``),
    reading ``READ_CHUNK`` bytes at a time so memory stays bounded whatever its size. Left as
    it was when nothing needs masking. Returns the number of masks; 0 for a missing file.
    Raises ``OSError`` when the file cannot be read or replaced."""
    try:
        source = path.open("rb")
    except FileNotFoundError:
        return 0
    with source:
        mode = os.fstat(source.fileno()).st_mode & 0o777
        temp = temp_beside(path, "", mode=mode)
        try:
            buffer = memoryview(bytearray(READ_CHUNK))  # reused: no fresh memory per chunk
            with ScrubbingWriter(temp, redactor, xml=xml) as writer:
                while size := source.readinto(buffer):
                    writer.write(buffer[:size])
            if writer.masked:
                os.replace(temp, path)
                return writer.masked
        finally:
            temp.unlink(missing_ok=True)
    return 0
