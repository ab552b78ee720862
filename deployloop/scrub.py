"""Scrub as data is written: suite output reaches the disk with its secrets already masked.

``ScrubbingWriter`` takes the bytes (or text) a suite produces, in whatever pieces they come,
and appends them to a file through a :class:`~deployloop.redact.Redactor`. Nothing raw is ever
written, so a ``kill -9`` at any moment leaves no secret on disk. ``scrub_file`` rewrites a file
left by a killed run in place, atomically, for the next start.

How it is wired: ``process.run`` gives the child a pipe for stdout and stderr, and a
:class:`~deployloop.pump.Pump` thread copies it into a writer with the log cap (``Cap``): the
file is never larger than the cap, at any moment. The pytest plugin's ``.progress.jsonl``
comes through a FIFO (``runner``) into ``progress.ScrubbedRecords``, record by record; the kept
JUnit copy is written by ``scrub_copy`` with ``xml=True`` from the raw file in a private place.
On start-up, ``scrub_file`` rewrites every ``.log``, ``.progress.jsonl`` and ``.xml`` a killed
run left, before anything reads them (``session``).

Why text is held back: a secret may arrive in two pieces, or be wrapped onto the next line. The
writer keeps the last complete line and the unfinished one (at most ``hold`` bytes, then
all but the last ``OVERLAP``) and only writes text no match can still reach into. A private-key
block is held from its BEGIN line to its END line (up to ``hold``; past that it is masked whole).

Why bytes: the writer never decodes what holds no secret. ``Redactor.byte_spans`` screens the
raw bytes in one pass (Hyperscan) and decodes only the lines that may hold one, so a 64 MB log
costs little more than copying it (``make bench``: ``redact_ratio``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from deployloop.atomic import temp_beside
from deployloop.models import CaseResult
from deployloop.redact import MASK_BYTES, Redactor, Span, masked_parts
from deployloop.screen import utf8

HOLD = 1 << 20  # bytes kept back at most, waiting for a line to end
OVERLAP = 4096  # kept back from an over-long line: longer than any secret shape or known value
BATCH = 1 << 16  # bytes gathered before a scan: one scan per line would cost 100x more
INTERVAL_S = 1.0  # ...unless this long has passed since the last write to disk
READ_CHUNK = 1 << 20  # bytes read at a time by scrub_file
# XML 1.0 §4.1 and §4.6: character references and the five predefined entities.
_XML_REF = re.compile(rb"&(?:#x([0-9a-fA-F]{1,6})|#([0-9]{1,7})|(quot|apos|amp|lt|gt));")
_ENTITIES = {b"quot": b'"', b"apos": b"'", b"amp": b"&", b"lt": b"<", b"gt": b">"}
_MARKUP_END = re.compile(rb"[<\"]")  # where a mask in XML must stop: a tag, an attribute's end


@dataclass(frozen=True, slots=True)
class Cap:
    """A file's size bound: once the next bytes would take it past ``limit``, it is cut back
    to its first ``keep`` bytes, ``note`` is appended and writing goes on from there. The file
    thus holds the start of the output and its most recent part, never more than ``limit``."""

    limit: int
    keep: int
    note: bytes


class ScrubbingWriter:
    """Appends scrubbed text to ``path``; call ``close()`` (or use ``with``) to write the rest.

    ``write(data)`` takes bytes, a buffer (UTF-8; bad bytes pass through unchanged) or str.
    ``redactor=None`` writes the data as it comes (output that is no one's to read but ours).
    ``xml=True`` reads the text with its references decoded (``&quot;``, ``&#x41;``), so a
    secret spelled with them is found; each mask covers the references it spans and stops
    at markup. ``hold`` bounds memory; ``cap`` the file.
    ``interval_s``: complete lines wait at most this long (else until ``BATCH`` bytes) before
    they are scanned and written; 0 writes them as they come (a stream someone waits on).
    ``masked`` counts masks written; ``written`` counts bytes written. Raises ``OSError`` when
    the file cannot be written.
    """

    def __init__(
        self,
        path: Path,
        redactor: Redactor | None,
        *,
        xml: bool = False,
        hold: int = HOLD,
        cap: Cap | None = None,
        interval_s: float = INTERVAL_S,
    ) -> None:
        self.redactor = redactor
        self.interval_s = interval_s
        self.xml = xml
        self.hold = max(hold, 2 * OVERLAP)
        self.cap = cap
        self.masked = 0
        self.written = 0
        self._pending = bytearray()  # one buffer, reused: a fresh 1 MiB each time costs more
        self._last_emit = time.monotonic()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size  # a resumed suite appends to its old log

    def write(self, data: bytes | bytearray | memoryview | str) -> None:
        """Take the next piece of output; write out what can no longer hold part of a secret."""
        before = len(self._pending)
        self._pending += utf8(data) if isinstance(data, str) else data
        size = len(self._pending)
        due = size >= BATCH or time.monotonic() - self._last_emit >= self.interval_s
        if (due and self._pending.find(b"\n", before) >= 0) or size > self.hold:
            self._emit(final=False)

    def flush(self) -> None:
        """Write out all but the held-back tail (for a pump that has been idle a while)."""
        if self._pending:
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
        spans = self._spans(pending)
        cut = len(pending) if final else self._cut(pending, spans)
        # Past the hold a match can be cut through (a key block over 1 MiB): mask up to the cut.
        done = [(start, mask, min(end, cut)) for start, mask, end in spans if mask < cut]
        with memoryview(pending) as view:
            self._append(masked_parts(view[:cut], done, memoryview(MASK_BYTES)))
        del pending[:cut]  # every view released: the buffer may change size again
        self.masked += len(done)
        self._last_emit = time.monotonic()

    def _spans(self, pending: bytearray) -> list[Span]:
        if self.redactor is None:
            return []
        return xml_spans(self.redactor, pending) if self.xml else self.redactor.byte_spans(pending)

    def _cut(self, pending: bytearray, spans: list[Span]) -> int:
        if self.redactor is None:
            return len(pending)
        return safe_cut(pending, spans, self.hold)

    def _append(self, parts: list[memoryview]) -> None:
        """Append ``parts``; when they would take the file past the cap, fill it up to ``keep``,
        cut it back there, add the note, and append as much of their end as fits."""
        cap = self.cap
        if cap is not None and self._size + sum(len(part) for part in parts) > cap.limit:
            data = b"".join(parts)  # once per cut: some 56 MB of output apart
            head = max(cap.keep - self._size, 0)
            self._write_all(memoryview(data)[:head])
            self._size = min(self._size, cap.keep)
            os.ftruncate(self._fd, self._size)
            self._write_all(memoryview(cap.note))
            rest = memoryview(data)[head:]
            parts = [rest[max(len(rest) - (cap.limit - self._size), 0) :]]
        for part in parts:
            self._write_all(part)

    def _write_all(self, part: memoryview) -> None:
        left = part
        while left:
            sent = os.write(self._fd, left)
            left = left[sent:]
            self.written += sent
            self._size += sent


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


def xml_spans(redactor: Redactor, data: bytes | bytearray) -> list[Span]:
    """``redactor.byte_spans`` of XML ``data`` read with its references decoded (XML 1.0 §4.1,
    §4.6: a JSON key in an attribute is ``&quot;password&quot;``), in offsets of ``data``.

    A mask that would reach a ``<`` or a raw ``"`` stops there: in a JUnit file those are
    markup (text and attribute values escape them), so the masked file stays well-formed.
    """
    view, anchors = _decoded_view(data)
    if not anchors:
        return _stopped_at_markup(data, redactor.byte_spans(data))
    views = [at_view for at_view, _ in anchors]

    def raw(offset: int) -> int:
        at_view, at_raw = anchors[bisect_right(views, offset) - 1]
        return at_raw + offset - at_view

    spans = [(raw(s), raw(m), raw(e)) for s, m, e in redactor.byte_spans(view)]
    return _stopped_at_markup(data, spans)


def _decoded_view(data: bytes | bytearray) -> tuple[bytes, list[tuple[int, int]]]:
    """``data`` with its references decoded, and after each decoded one an anchor
    ``(offset in the view, offset in data)``; no anchors when nothing was decoded."""
    if b"&" not in data:
        return bytes(data), []
    parts: list[bytes | bytearray] = []
    anchors, size, last = [(0, 0)], 0, 0
    for match in _XML_REF.finditer(data):
        char = _referenced(match)
        if char is None:
            continue
        parts.extend((data[last : match.start()], char))
        size += match.start() - last + len(char)
        last = match.end()
        anchors.append((size, last))
    parts.append(data[last:])
    return b"".join(parts), anchors if len(anchors) > 1 else []


def _referenced(match: re.Match[bytes]) -> bytes | None:
    """The UTF-8 bytes a reference stands for; None for a code point that is no character."""
    hex_digits, digits, name = match.groups()
    if name:
        return _ENTITIES[name]
    code = int(hex_digits, 16) if hex_digits else int(digits)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code).encode("utf-8")


def _stopped_at_markup(data: bytes | bytearray, spans: list[Span]) -> list[Span]:
    stopped = []
    for start, mask, end in spans:
        markup = _MARKUP_END.search(data, mask, end)
        stop = markup.start() if markup else end
        if stop > mask:
            stopped.append((start, mask, stop))
    return stopped


def scrub_copy(source: Path, dest: Path, redactor: Redactor | None, *, xml: bool = False) -> int:
    """Append ``source`` to ``dest`` scrubbed, reading ``READ_CHUNK`` bytes at a time so memory
    stays bounded whatever its size. Returns the number of masks. Raises ``OSError`` when
    either file cannot be opened, read or written."""
    with source.open("rb") as reader, ScrubbingWriter(dest, redactor, xml=xml) as writer:
        buffer = memoryview(bytearray(READ_CHUNK))  # reused: no fresh memory per chunk
        while size := reader.readinto(buffer):
            writer.write(buffer[:size])
    return writer.masked


def scrub_file(path: Path, redactor: Redactor, *, xml: bool = False) -> int:
    """Rewrite ``path`` scrubbed, atomically (a temporary file beside it, then ``os.replace``),
    with ``scrub_copy``. Left as it was when nothing needs masking. Returns the number of
    masks; 0 for a missing file. Raises ``OSError`` when the file cannot be read or replaced."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0
    temp = temp_beside(path, "", mode=mode)
    try:
        masked = scrub_copy(path, temp, redactor, xml=xml)
        if masked:
            os.replace(temp, path)
        return masked
    finally:
        temp.unlink(missing_ok=True)


def scrubbed_case(case: CaseResult, redactor: Redactor) -> CaseResult:
    """The case with every text a test controls scrubbed: its id and names too, each secret
    in those tagged (``Redactor.redact_id``) so tests differing only in a secret keep distinct
    ids. The case itself when nothing was found: 100,000 results are not kept twice for nothing."""

    def clean(text: str) -> str:
        return redactor.redact(text) if text else text  # a passed case's texts are mostly empty

    found: dict[str, Any] = {
        "id": redactor.redact_id(case.id),
        "name": redactor.redact_id(case.name),
        "classname": clean(case.classname),
        "message": clean(case.message),
        "error_type": clean(case.error_type),
        "details": clean(case.details),
        "file": None if case.file is None else clean(case.file),
    }
    changed = {field: text for field, text in found.items() if text != getattr(case, field)}
    return dataclasses.replace(case, **changed) if changed else case
