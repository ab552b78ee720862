"""JUnit files copied into one ``<testsuites>``, streamed (issue 19: a 64k-test suite is never
held whole): a ``<testsuite>`` is written tag by tag and each of its children (a testcase, its
properties, its output) as soon as it ends, then dropped from the tree, so memory holds one
testcase at a time whatever the file's size.

The bytes are the suite's (tests print what they like): they are parsed through defusedxml
only, which refuses entity declarations and external references.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import BinaryIO
from xml.etree import ElementTree

from defusedxml import ElementTree as DefusedElementTree

from deployloop.errors import JUnitError

SUITE = "testsuite"
SUITES = "testsuites"


class _Kind(Enum):
    """What is done with an element as it ends, decided when it starts."""

    OUTER = "outer"  # a <testsuites> root: its tags are the merged file's own, not copied
    SUITE = "suite"  # a <testsuite> copied tag by tag, its children one by one
    WHOLE = "whole"  # a <testsuite>'s child: copied whole when it ends
    DROPPED = "dropped"  # a <testsuites> child that is not a <testsuite>: not copied
    INSIDE = "inside"  # within a WHOLE or DROPPED element: goes with it


def copy_suites(source: Path, out: BinaryIO) -> None:
    """Write every ``<testsuite>`` of the JUnit file ``source`` (its root, or its
    ``<testsuites>`` root's children) to ``out`` as UTF-8 XML, nested suites kept nested;
    other children of a ``<testsuites>`` root, and text between elements, are left out.

    ``out`` may hold part of the file when this raises: the caller cuts it back. Raises
    ``JUnitError`` when ``source`` cannot be opened (missing, no permission) or its root is
    neither ``<testsuites>`` nor ``<testsuite>``, ``ElementTree.ParseError`` when it is not
    well-formed XML (truncated; a copy cut past ``junit_caps.MAX_KEPT_BYTES`` may well be, when
    its cut fell inside text: ``shards.write_merged`` refuses those by size), defusedxml's
    ``DefusedXmlException`` for an entity declaration or external reference, and ``OSError``
    only when reading it part way or writing ``out`` fails (the disk's fault, not the file's).
    """
    try:
        stream = open(source, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise JUnitError(source, f"cannot read ({exc.strerror or exc})") from None
    with stream:
        kinds: list[_Kind] = []
        parents: list[ElementTree.Element] = []
        for event, element in DefusedElementTree.iterparse(stream, events=("start", "end")):
            if event == "start":
                kind = _kind(element.tag, kinds[-1] if kinds else None, source)
                if kind is _Kind.SUITE:
                    out.write(_start_tag(element))
                kinds.append(kind)
                parents.append(element)
                continue
            kind = kinds.pop()
            parents.pop()
            if kind is _Kind.SUITE:
                out.write(f"</{SUITE}>\n".encode())
            elif kind is _Kind.WHOLE:
                element.tail = None  # the whitespace after it is the source's layout
                # as text, then encoded: tostring's own encoding costs twice the time
                out.write((ElementTree.tostring(element, encoding="unicode") + "\n").encode())
            if parents and kind in (_Kind.SUITE, _Kind.WHOLE, _Kind.DROPPED):
                parents[-1].remove(element)  # written or left out: the tree keeps no copy


def _kind(tag: str, parent: _Kind | None, source: Path) -> _Kind:
    """What an element starting under ``parent`` (None: the root) is; a root that is not
    JUnit's raises ``JUnitError``."""
    if parent is None:
        if tag not in (SUITE, SUITES):
            raise JUnitError(source, f"not a JUnit file (root element <{tag}>)")
        return _Kind.OUTER if tag == SUITES else _Kind.SUITE
    if parent in (_Kind.OUTER, _Kind.SUITE) and tag == SUITE:
        return _Kind.SUITE
    if parent is _Kind.SUITE:
        return _Kind.WHOLE
    return _Kind.DROPPED if parent is _Kind.OUTER else _Kind.INSIDE


def _start_tag(element: ElementTree.Element) -> bytes:
    """``<testsuite ...>`` with the element's attributes, escaped by ElementTree itself: an
    empty copy with a one-letter text is serialized and cut before that text (ElementTree
    escapes ``>`` in attribute values, so the last ``>x</`` is the start tag's end)."""
    shell = ElementTree.Element(element.tag, element.attrib)
    shell.text = "x"
    whole = ElementTree.tostring(shell, encoding="unicode")
    return (whole[: whole.rindex(">x</") + 1] + "\n").encode()
