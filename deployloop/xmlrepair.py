"""Make a JUnit byte stream readable XML 1.0 without losing a record, and say what was changed.

Test output leaks into JUnit files in shapes XML 1.0 forbids (issue 15 item 8): raw C0 control
bytes from coloured output (pytest-dev/pytest#404), the same escapes written as character
references ``&#x1B;`` (TOPdesk/dart-junitreport#43), and one Latin-1 byte in a file declared
UTF-8. Each such character would make expat refuse the whole file; here they are dropped
(controls) or read as Latin-1 (stray bytes), chunk by chunk, and counted for the caller's log.
Only truly broken XML (truncated, not JUnit) is left for the reader to refuse.
"""

from __future__ import annotations

import re

# Raw C0 control bytes other than tab, newline and carriage return.
CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13))
# Character references to characters XML 1.0 forbids: C0 controls, surrogates, U+FFFE/U+FFFF.
_BAD_REFERENCE = re.compile(
    rb"&#(?:[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]|[dD][89a-fA-F][0-9a-fA-F]{2}|[fF]{3}[eEfF])"
    rb"|0*(?:[0-8]|1[124-9]|2[0-9]|3[01]));"
)
_LONGEST_REFERENCE = 16  # "&#x0000000001B;" and a margin: a longer tail is no reference
_SURROGATE = re.compile("[\udc80-\udcff]+")
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
WIDE_STARTS = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")  # UTF-16 with or without BOM


class Repairer:
    """Cleans successive chunks of one file; :meth:`notes` says what it changed.

    ``head`` is the file's first chunk (to see its encoding). UTF-16 files pass through
    untouched; files declared in another single-byte encoding only lose control characters.
    """

    def __init__(self, head: bytes) -> None:
        self.active = not head.startswith(WIDE_STARTS)
        declared = _DECLARED.match(head[:200])
        self.utf8 = declared is None or declared.group(1).lower().replace(b"_", b"-") in (
            b"utf-8",
            b"utf8",
        )
        self.pending = b""
        self.controls = 0
        self.references = 0
        self.bytes = 0

    def feed(self, chunk: bytes, final: bool) -> bytes:
        """The cleaned bytes of ``chunk``; a tail that may continue in the next chunk waits."""
        if not self.active:
            return chunk
        data = self.pending + chunk
        cut = len(data) if final else _safe_end(data)
        data, self.pending = data[:cut], data[cut:]
        kept = data.translate(None, CONTROL_BYTES)
        self.controls += len(data) - len(kept)
        if b"&#" in kept:
            kept, found = _BAD_REFERENCE.subn(b"", kept)
            self.references += found
        if self.utf8 and not kept.isascii():
            kept = self._recode(kept)
        return kept

    def _recode(self, data: bytes) -> bytes:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", "surrogateescape")
            self.bytes += sum(len(m) for m in _SURROGATE.findall(text))
            return _SURROGATE.sub(_as_latin1, text).encode("utf-8")
        return data

    def notes(self) -> list[str]:
        """What was changed, one phrase per kind, e.g. ``2 control characters dropped``."""
        out = []
        if self.controls:
            out.append(f"{self.controls} raw control character(s) dropped")
        if self.references:
            out.append(f"{self.references} reference(s) to invalid characters (&#x1B;) dropped")
        if self.bytes:
            out.append(f"{self.bytes} byte(s) not valid UTF-8 read as Latin-1")
        return out


def _as_latin1(match: re.Match[str]) -> str:
    return match.group().encode("utf-8", "surrogateescape").decode("latin-1")


def _safe_end(data: bytes) -> int:
    """Where ``data`` can be cut without splitting a UTF-8 sequence or a character reference."""
    cut = len(data)
    amp = data.rfind(b"&", max(0, cut - _LONGEST_REFERENCE))
    if amp >= 0 and b";" not in data[amp:]:
        cut = amp
    for back in range(1, min(4, cut) + 1):
        byte = data[cut - back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for its lead
        if byte >= 0xC0:
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            if needed > back:
                return cut - back
        break
    return cut
