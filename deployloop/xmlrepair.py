"""Make a JUnit byte stream readable XML 1.0 without losing a record, and say what was changed.

Test output leaks into JUnit files in shapes XML 1.0 forbids (issue 15 item 8): raw C0 control
bytes from coloured output (pytest-dev/pytest#404), the same escapes written as character
references ``&#x1B;`` (TOPdesk/dart-junitreport#43), references to what is no character
(``&#xD800;``, ``&#55296;``, ``&#x110000;``), HTML entities XML does not define (``&nbsp;``),
raw U+FFFE/U+FFFF, one Latin-1 byte in a file declared UTF-8, and a bare ``&`` (anywhere) or
``<`` (in an attribute value) that a writer forgot to escape. Each would make expat refuse the
whole file; here colour escapes go whole (ESC raw or as a reference, with its ``[31m``: ECMA-48
CSI and OSC), other controls are dropped, HTML entities become their character, other
non-characters U+FFFD, bare ``&``/``<`` are escaped, and stray bytes are read as Latin-1, chunk
by chunk, and counted for the caller's log. Which characters XML 1.0 allows: its ``Char``
production (XML 1.0 §2.2). Only truly broken XML (truncated, not JUnit) is left for the reader
to refuse.
"""

from __future__ import annotations

import re
from collections import Counter
from html.entities import html5

# Raw C0 control bytes other than tab, newline and carriage return.
CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13))
# Character references that may name no XML character (C0 controls, surrogates, U+FFFE/U+FFFF,
# beyond U+10FFFF); _reference decides. Narrow, so the common ``&#10;`` costs no callback.
_SUSPECT_REFERENCE = re.compile(
    rb"&#(?:[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]|[dD][89a-fA-F][0-9a-fA-F]{2}|[fF]{3}[eEfF]"
    rb"|(?:1[1-9a-fA-F]|[2-9a-fA-F][0-9a-fA-F])[0-9a-fA-F]{4}|[1-9a-fA-F][0-9a-fA-F]{6,})"
    rb"|0*(?:[0-8]|1[124-9]|2[0-9]|3[01]|[1-9][0-9]{4,}));"
)
_ENTITY = re.compile(rb"&([A-Za-z_][A-Za-z0-9._-]{0,31});")
# An ``&`` that starts no reference: a character reference, or a name _ENTITY would take.
_BARE_AMP = re.compile(rb"&(?!#[0-9]+;|#[xX][0-9a-fA-F]+;|[A-Za-z_][A-Za-z0-9._-]{0,31};)")
# ESC as a raw byte, a reference, or as pytest writes it (``#x1B``: bin_xml_escape in
# _pytest/junitxml.py spells so each character XML refuses), and the sequences it starts
# (ECMA-48 §5.4 CSI: parameter bytes 0x30-0x3F, intermediates 0x20-0x2F, a final 0x40-0x7E;
# OSC: up to BEL or ESC \). Markup (< " ' &) never counts as a sequence's byte: a stray ESC
# must not eat a closing tag.
_ESC = rb"(?:\x1b|&#[xX]0*1[bB];|&#0*27;|#x1B)"
_ESC_AT = re.compile(_ESC)
_CSI = rb"\[[0-;=>?]*[ !#-%(-/]*[@-~]"
_OSC = rb"\](?:[^<&\"'\x07\x1b]|&amp;){0,512}(?:\x07|&#[xX]0*7;|&#0*7;|" + _ESC + rb"\\)"
_ANSI = re.compile(_ESC + rb"(?:" + _CSI + rb"|" + _OSC + rb")")
_LONGEST_ESCAPE = 600  # an OSC's 512 bytes, its ESC and terminator as references
# What may follow an ESC at a chunk's end when the sequence goes on in the next chunk: the
# start of a CSI or an OSC. Anything else (a quote, a tag) means it never will: no wait.
_ESCAPE_PREFIX = re.compile(
    rb"(?:\[[0-;=>?]*[ !#-%(-/]*|\](?:[^<&\"'\x07\x1b]|&amp;){0,512}(?:&[#\w]{0,6})?)?\Z"
)
# A start tag, its quoted attribute values whole; _LT_IN_VALUE is the cheap hint that one
# holds a ``<`` (a start tag can hold no other).
_START_TAG = re.compile(
    rb"<[A-Za-z_][\w:.-]*(?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*/?>"
)
_LT_IN_VALUE = re.compile(rb"=\s*(?:\"[^\"<]*<|'[^'<]*<)")
_LONGEST_TAG = 4096  # a start tag cut by a chunk's end waits for its ``>`` up to this long
_XML_ENTITIES = frozenset((b"amp", b"lt", b"gt", b"quot", b"apos"))
_NON_CHARACTERS = (b"\xef\xbf\xbe", b"\xef\xbf\xbf")  # U+FFFE, U+FFFF in UTF-8
_REPLACEMENT = b"&#xFFFD;"  # a reference: right whatever the file's declared encoding
_LONGEST_REFERENCE = 40  # "&" + a 32-character entity name + ";" and a margin
_EXAMPLES = 3  # distinct forms named per kind in a note
_SURROGATE = re.compile("[\udc80-\udcff]+")
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
WIDE_STARTS = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")  # UTF-16 with or without BOM

# What a note says of each kind of repair, after its count.
_KINDS = {
    "escapes": "terminal escape sequence(s) removed",
    "controls": "raw control character(s) dropped",
    "control references": "reference(s) to control characters dropped",
    "non-character references": "reference(s) to non-characters replaced by U+FFFD",
    "entities": "entity reference(s) undefined in XML replaced (HTML ones by their character)",
    "non-characters": "raw U+FFFE/U+FFFF replaced by U+FFFD",
    "bytes": "byte(s) not valid UTF-8 read as Latin-1",
    "ampersands": "bare & escaped",
    "less-thans": "bare < in attribute values escaped",
}


class Repairer:
    """Cleans successive chunks of one file; :meth:`notes` says what it changed.

    ``head`` is the file's first chunk (to see its encoding). UTF-16 files pass through
    untouched; files declared in another single-byte encoding only lose control characters
    and bad references.
    """

    def __init__(self, head: bytes) -> None:
        self.active = not head.startswith(WIDE_STARTS)
        declared = _DECLARED.match(head[:200])
        self.utf8 = declared is None or declared.group(1).lower().replace(b"_", b"-") in (
            b"utf-8",
            b"utf8",
        )
        self.pending = b""
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def feed(self, chunk: bytes, final: bool) -> bytes:
        """The cleaned bytes of ``chunk``; a tail that may continue in the next chunk waits."""
        if not self.active:
            return chunk
        data = self.pending + chunk
        cut = len(data) if final else _safe_end(data)
        data, self.pending = data[:cut], data[cut:]
        if b"\x1b" in data or b"&#" in data or b"#x1B" in data:
            data = _ANSI.sub(self._escape, data)
        kept = data.translate(None, CONTROL_BYTES)
        self.counts["controls"] += len(data) - len(kept)
        if b"&" in kept:
            kept = _SUSPECT_REFERENCE.sub(self._reference, kept)
            kept = _ENTITY.sub(self._entity, kept)
            kept, bare = _BARE_AMP.subn(b"&amp;", kept)
            self.counts["ampersands"] += bare
        if _LT_IN_VALUE.search(kept):
            kept = _START_TAG.sub(self._start_tag, kept)
        if self.utf8 and not kept.isascii():
            kept = self._recode(kept)
        return kept

    def _reference(self, match: re.Match[bytes]) -> bytes:
        """A suspect ``&#…;`` as it stays: kept when XML allows its character."""
        text = match.group()
        hexa = text[2:3] in (b"x", b"X")
        digits = text[3 if hexa else 2 : -1].lstrip(b"0") or b"0"
        # eight digits are past U+10FFFF either way (and int() refuses 4300 decimal digits)
        value = 0x110000 if len(digits) > 8 else int(digits, 16 if hexa else 10)
        if value < 0x20:
            return self._saw("control references", text, b"")
        if 0xD800 <= value <= 0xDFFF or value in (0xFFFE, 0xFFFF) or value > 0x10FFFF:
            return self._saw("non-character references", text, _REPLACEMENT)
        return text

    def _entity(self, match: re.Match[bytes]) -> bytes:
        """``&name;``: XML's own five kept; an HTML one becomes its character, others U+FFFD."""
        name = match.group(1)
        if name in _XML_ENTITIES:
            return match.group()
        char = html5.get(name.decode("ascii") + ";")
        into = "".join(f"&#x{ord(c):X};" for c in char).encode() if char else _REPLACEMENT
        return self._saw("entities", match.group(), into)

    def _escape(self, match: re.Match[bytes]) -> bytes:
        """A terminal escape sequence, removed whole; its form named with ESC spelt out."""
        form = _ESC_AT.sub(b"ESC", match.group(), count=1)
        return self._saw("escapes", form, b"")

    def _start_tag(self, match: re.Match[bytes]) -> bytes:
        """A start tag with each ``<`` inside its attribute values escaped (only its first
        ``<`` is markup)."""
        tag = match.group()
        inner = tag[1:].count(b"<")
        if not inner:
            return tag
        self.counts["less-thans"] += inner
        return b"<" + tag[1:].replace(b"<", b"&lt;")

    def _saw(self, kind: str, found: bytes, into: bytes) -> bytes:
        """Count one repair of ``kind``, keep its form as an example; ``into`` replaces it."""
        self.counts[kind] += 1
        shown = self.examples.setdefault(kind, [])
        form = found[:_LONGEST_REFERENCE].decode("ascii", "replace")
        if len(shown) < _EXAMPLES and form not in shown:
            shown.append(form)
        return into

    def _recode(self, data: bytes) -> bytes:
        if any(bad in data for bad in _NON_CHARACTERS):
            for bad in _NON_CHARACTERS:
                self.counts["non-characters"] += data.count(bad)
                data = data.replace(bad, b"\xef\xbf\xbd")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", "surrogateescape")
            self.counts["bytes"] += sum(len(m) for m in _SURROGATE.findall(text))
            return _SURROGATE.sub(_as_latin1, text).encode("utf-8")
        return data

    def notes(self) -> list[str]:
        """What was changed, one phrase per kind with its count and up to three of the forms
        seen, e.g. ``2 reference(s) to control characters dropped (&#x1B;, &#27;)``."""
        out = []
        for kind, words in _KINDS.items():
            if self.counts[kind]:
                forms = self.examples.get(kind)
                shown = f" ({', '.join(forms)})" if forms else ""
                out.append(f"{self.counts[kind]} {words}{shown}")
        return out


def _as_latin1(match: re.Match[str]) -> str:
    return match.group().encode("utf-8", "surrogateescape").decode("latin-1")


def _open_escape(data: bytes, cut: int) -> int:
    """Where the first ESC near ``cut`` starts whose sequence may go on past ``cut`` (what
    follows it is a sequence's start); ``cut`` when none does."""
    done = 0
    for esc in _ESC_AT.finditer(data, max(0, cut - _LONGEST_ESCAPE), cut):
        if esc.start() < done:
            continue  # an OSC's own terminator
        whole = _ANSI.match(data, esc.start(), cut)
        if whole is not None:
            done = whole.end()
        elif _ESCAPE_PREFIX.match(data, esc.end(), cut):
            return esc.start()  # may go on in the next chunk
    return cut


def _safe_end(data: bytes) -> int:
    """Where ``data`` can be cut without splitting a UTF-8 sequence, a character reference,
    a terminal escape sequence or a start tag (each waits for the next chunk, when short)."""
    cut = len(data)
    cut = _open_escape(data, cut)
    amp = data.rfind(b"&", max(0, cut - _LONGEST_REFERENCE), cut)
    if amp >= 0 and b";" not in data[amp:cut]:
        cut = amp
    tag = data.find(b"<", data.rfind(b">", 0, cut) + 1, cut)
    if tag >= 0 and cut - tag <= _LONGEST_TAG:
        cut = tag  # last: a start tag holds the cuts above, so it waits whole
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
