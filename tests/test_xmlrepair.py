"""xmlrepair: characters XML 1.0 refuses are repaired (every record kept) and named in the note."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deployloop import junit
from deployloop.errors import JUnitError
from deployloop.xmlrepair import Repairer

HEAD = b'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="e2e" tests="2">'
TAIL = b'<testcase classname="t" name="second"/></testsuite>\n'


def report(tmp_path: Path, attribute: bytes, text: bytes) -> Path:
    """A two-record JUnit file with ``attribute`` in a message and ``text`` in a failure."""
    path = tmp_path / "report.xml"
    case = b'<testcase classname="t" name="first"><failure message="boom ' + attribute + b'">'
    path.write_bytes(HEAD + case + b"at " + text + b"</failure></testcase>" + TAIL)
    return path


@pytest.mark.parametrize(
    ("bad", "kept", "note"),
    [
        (b"&nbsp;", "\xa0", "1 entity reference(s) undefined in XML replaced"),
        (b"&bogus;", "\ufffd", "1 entity reference(s) undefined in XML replaced"),
        (b"&#x110000;", "\ufffd", "1 reference(s) to non-characters replaced by U+FFFD"),
        (b"&#55296;", "\ufffd", "1 reference(s) to non-characters replaced by U+FFFD"),
        (b"&#xD800;", "\ufffd", "1 reference(s) to non-characters replaced by U+FFFD"),
        (b"&#65535;", "\ufffd", "1 reference(s) to non-characters replaced by U+FFFD"),
        (b"&#1" + b"0" * 5000 + b";", "\ufffd", "1 reference(s) to non-characters replaced"),
        (b"&#x1B;", "", "1 reference(s) to control characters dropped (&#x1B;)"),
        (b"\xef\xbf\xbe", "\ufffd", "1 raw U+FFFE/U+FFFF replaced by U+FFFD"),
        (b"\xef\xbf\xbf", "\ufffd", "1 raw U+FFFE/U+FFFF replaced by U+FFFD"),
    ],
)
def test_each_bad_character_is_repaired_in_texts(
    tmp_path: Path, bad: bytes, kept: str, note: str
) -> None:
    """Each kind XML refuses keeps both records, reads as ``kept``, and the note names it."""
    repairs: list[str] = []
    cases = junit.read_cases(report(tmp_path, b"ok", b"x" + bad + b"y"), repairs)
    assert [c.name for c in cases] == ["first", "second"]
    assert cases[0].details == f"at x{kept}y"
    (line,) = repairs
    assert note in line


def test_bad_characters_in_attributes_are_repaired(tmp_path: Path) -> None:
    """The same repairs hold inside an attribute (the failure message)."""
    path = report(tmp_path, b"&nbsp;&#55296;&#x110000;\xef\xbf\xbf&#27;", b"x")
    assert junit.read_cases(path)[0].message == "boom \xa0\ufffd\ufffd\ufffd"


def test_valid_references_are_left_alone(tmp_path: Path) -> None:
    """References XML allows (newline, emoji, its five entities) are not touched or noted."""
    repairs: list[str] = []
    path = report(tmp_path, b"&#10;&quot;", b"&#128512; &#x10FFFF; &amp;&lt;&gt;&apos;")
    cases = junit.read_cases(path, repairs)
    assert cases[0].details == "at \U0001f600 \U0010ffff &<>'"
    assert repairs == []


def test_note_counts_each_kind_and_names_at_most_three_forms() -> None:
    """A note per kind: its count and up to three distinct forms, whatever was repaired."""
    repair = Repairer(HEAD)
    repair.feed(b"&#x1B;&#27;&#x1b;&#1;&#2;&#x1B;" + b"\x1b" * 3 + b"&nbsp;" * 50, True)
    assert repair.notes() == [
        "3 raw control character(s) dropped",
        "6 reference(s) to control characters dropped (&#x1B;, &#27;, &#x1b;)",
        "50 entity reference(s) undefined in XML replaced (HTML ones by their character) (&nbsp;)",
    ]


def test_an_entity_split_across_chunks_is_repaired_whole() -> None:
    """A long entity cut by a chunk boundary waits for its end: no half-entity reaches expat."""
    repair = Repairer(HEAD)
    first = repair.feed(b"<a>x &CounterClockwise", False)
    rest = repair.feed(b"ContourIntegral; y</a>", True)
    assert first + rest == b"<a>x &#x2233; y</a>"


def test_bare_amp_and_lt_in_attributes_keep_every_record(tmp_path: Path) -> None:
    """A bare ``&`` and ``<`` in an attribute value (and ``&`` in a text) are escaped and
    noted: the file reads whole instead of being thrown out (item 4)."""
    repairs: list[str] = []
    cases = junit.read_cases(report(tmp_path, b"a & b < c", b"x & y"), repairs)
    assert [c.name for c in cases] == ["first", "second"]
    assert (cases[0].message, cases[0].details) == ("boom a & b < c", "at x & y")
    assert [r.split(": ", 1)[1] for r in repairs] == [
        "2 bare & escaped",
        "1 bare < in attribute values escaped",
    ]


def test_trailing_garbage_after_the_root_is_dropped_and_noted(tmp_path: Path) -> None:
    """Bytes after the root element closes are dropped and counted, every record kept; a
    file cut before its root closes is still refused as truncated (item 4)."""
    path = report(tmp_path, b"ok", b"x")
    path.write_bytes(path.read_bytes() + b"garbage <x>")
    repairs: list[str] = []
    assert [c.name for c in junit.read_cases(path, repairs)] == ["first", "second"]
    assert repairs == [f"{path}: 11 trailing byte(s) after the root element dropped"]
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(JUnitError, match="truncated XML"):
        junit.read_cases(path)


@pytest.mark.parametrize(
    "escape",
    [b"\x1b[31m", b"&#x1B;[1;31m", b"&#27;[0m", b"\x1b]8;;http://x\x07", b"&#x1b;]0;t&#x1b;\\"],
)
def test_terminal_escapes_go_whole(tmp_path: Path, escape: bytes) -> None:
    """A CSI or OSC sequence goes whole, its ESC raw or a reference, in messages and texts:
    no ``[31m`` left behind for titles and fingerprints (item 5)."""
    repairs: list[str] = []
    cases = junit.read_cases(report(tmp_path, b"x" + escape + b"red", escape + b"y"), repairs)
    assert (cases[0].message, cases[0].details) == ("boom xred", "at y")
    (note,) = repairs
    assert "2 terminal escape sequence(s) removed (ESC" in note


def test_an_escape_or_tag_split_across_chunks_is_repaired_whole() -> None:
    """An escape sequence or a start tag cut by a chunk boundary waits for its end."""
    whole = b'<a><b m="1 < 2 \x1b[31mred">x &#x1B;[0m y</b></a>'
    for at in range(1, len(whole)):
        repair = Repairer(HEAD)
        out = repair.feed(whole[:at], False) + repair.feed(whole[at:], True)
        assert out == b'<a><b m="1 &lt; 2 red">x  y</b></a>', at


# Random bytes, and the shapes test output really leaks (so each is tried, not left to chance).
LEAKS = [b"\x1b[31m", b"&#x1B;", b"&#27;", b"&nbsp;", b"&#55296;", b"&#x110000;", b"\xef\xbf\xbf",
         b"\xe9", b"\xf0\x9f", b"&#10;", b"&amp;", b"]]>", b"\r\n", b"\x00", b"&", b" & ", b"<",
         b"&#x1B;[0m", b"\x1b]8;;http://x\x07", b"\x1b["]  # fmt: skip
INSERTED = st.lists(st.one_of(st.binary(max_size=8), st.sampled_from(LEAKS)), max_size=6).map(
    b"".join
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(attribute=INSERTED, text=INSERTED)
@example(attribute=b"<>#x1B", text=b"")  # a stray ESC once held a start tag's cut mid-tag
def test_any_inserted_bytes_are_repaired_or_refused_clearly(
    tmp_path: Path, attribute: bytes, text: bytes
) -> None:
    """Any bytes in a text or attribute: every record kept, or a JUnitError, never a traceback;
    bytes are always repaired unless they hold markup no repair can place (the writer's own
    bug): a ``"`` in the attribute, a ``<`` or ``]]>`` in the text. A bare ``&`` anywhere and
    a ``<`` in the attribute are repaired."""
    path = report(tmp_path, attribute, text)
    if b'"' in attribute or b"<" in text or b"]]>" in text:
        try:
            junit.read_cases(path)
        except JUnitError as exc:
            refusal = str(exc)
            assert refusal.startswith(str(path)) and "\n" not in refusal
            return
    names = [c.name for c in junit.read_cases(path)]
    assert names == ["first", "second"]
