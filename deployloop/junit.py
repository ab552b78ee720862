"""Streaming JUnit XML reader: one CaseResult per logical test, whatever runner wrote it.

It reads with expat callbacks, chunk by chunk, keeping only the records of the testsuite being
read (to fold a test's attempts into one): a 100,000-case file never sits in memory as a
tree. The same guards as defusedxml are installed on the parser (entity declarations and
external references are refused), so a billion-laughs bomb or an
``<!ENTITY x SYSTEM "file:///etc/passwd">`` stops with a JUnitError instead of expanding or
reading anything.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.parsers import expat

from defusedxml.common import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden

from deployloop.errors import JUnitError
from deployloop.junit_caps import CHUNK, CappedText
from deployloop.junit_cases import (
    BROKEN,
    MAX_DETAILS,
    MAX_MESSAGE,
    PASSED,
    RESULT_OUTCOMES,
    Element,
    broken_elements,
    build_case,
    passed_case,
)
from deployloop.junit_fields import derive_error_type, first_line
from deployloop.logical import fold
from deployloop.models import CaseResult, Outcome
from deployloop.xmlrepair import Repairer

MAX_SUITE_ERRORS = 100  # records made for one testsuite's unrecorded errors: bounded memory
ROOTS = frozenset({"testsuites", "testsuite"})

TRUNCATION_ERRORS = frozenset(
    expat.errors.codes[m]
    for m in (
        expat.errors.XML_ERROR_NO_ELEMENTS,
        expat.errors.XML_ERROR_UNCLOSED_TOKEN,
        expat.errors.XML_ERROR_PARTIAL_CHAR,
        expat.errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
    )
)

# A suite's extra pass as ``passes.Passes`` names its kept report: ``S+failed-first.xml``,
# ``S+rerun.xml``, ``S+shard-2.xml``, or its folder of several (``junit_files.kept_dir``).
EXTRA_PASS = re.compile(
    r"(?P<suite>[^+]+)\+(?:(?P<shard>shard-\d+)|failed-first|rerun)\.(?:xml|junit)"
)
JUNK_AFTER_ROOT = expat.errors.codes[expat.errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT]


def collect_files(paths: Iterable[Path], left_out: list[Path] | None = None) -> list[Path]:
    """The JUnit files named: files as given, directories searched for ``*.xml`` recursively.

    In a directory, a pass deployloop runs beside a suite's own (``S+failed-first.xml``,
    ``S+rerun.xml``, ``S+shard-2.xml``: ``passes.Passes``) is left out where the suite's
    result ``S.xml`` stands next to it, which holds its tests already (a sharded suite's
    merged file), and a failed-first or rerun pass where the suite's shards do: read both,
    and each of those tests would count twice. Such files go to
    ``left_out``; a file named on its own is always read. Raises ``JUnitError`` for a path
    that does not exist, or a directory without ``*.xml``."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            inside = {p for p in path.rglob("*.xml") if p.is_file()}
            if not inside:
                raise JUnitError(path, "no *.xml files in this directory")
            extra = {p for p in inside if _extra_pass(p, path)}
            found.update(inside - extra)
            if left_out is not None:
                left_out.extend(sorted(extra))
        elif path.exists():
            found.add(path)
        else:
            raise JUnitError(path, "no such file or directory")
    return sorted(found)


def _extra_pass(path: Path, searched: Path) -> bool:
    """Whether ``path`` (found in ``searched``) is, or is inside, one of deployloop's extra
    passes beside its suite's whole result (``EXTRA_PASS``; see ``collect_files``): ``S.xml``,
    or for a failed-first or rerun pass the suite's shards (``S+shard-N``: their merged
    ``S.xml`` is not written when one could not be merged)."""
    for part in (path, *path.parents):
        if part == searched:
            return False
        extra = EXTRA_PASS.fullmatch(part.name)
        if extra is None:
            continue
        suite = extra["suite"]
        if (part.parent / f"{suite}.xml").is_file():
            return True
        if not extra["shard"] and any(part.parent.glob(f"{glob.escape(suite)}+shard-*")):
            return True
    return False


def read_cases(path: Path, repairs: list[str] | None = None) -> list[CaseResult]:
    """The tests of one file, as :func:`iter_cases` gives them."""
    return list(iter_cases(path, repairs))


def iter_cases(path: Path, repairs: list[str] | None = None) -> Iterator[CaseResult]:
    """The logical tests of one file, suite by suite as each ``<testsuite>`` ends.

    The records of one test id within one ``<testsuite>`` (attempts, teardown records) are
    folded into one CaseResult (``logical.fold``; ``records`` counts them); ids repeated in
    different suites stay apart, since jest-junit and others name tests of different files
    alike. A failure a testsuite counts without a record of it becomes an error record.
    Raises JUnitError part way if the file breaks; ``repairs`` receives one
    ``"FILE: what was repaired"`` note per kind of bad character dropped or replaced.
    """
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below, across yields
    except OSError as exc:
        raise JUnitError(path, f"cannot read ({exc.strerror or exc})") from None
    with stream:
        yield from _Reader(path).read(stream, repairs)


class _Reader:
    """Feeds one file to a guarded expat parser in chunks; its errors become JUnitErrors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parser = expat.ParserCreate()
        self.parser.buffer_text = True
        self.parser.buffer_size = CHUNK
        # The defusedxml guards: no entity declarations, no external references.
        self.parser.EntityDeclHandler = _refuse_entity
        self.parser.UnparsedEntityDeclHandler = _refuse_unparsed_entity
        self.parser.ExternalEntityRefHandler = _refuse_external
        self.ready: list[CaseResult] = []
        self.root_seen = _attach(self.parser, path, self.ready)
        self.fed = 0  # bytes given to the parser, repaired
        self.trailing = 0  # bytes after the root element closed: counted, never parsed

    def read(self, stream: IO[bytes], repairs: list[str] | None) -> Iterator[CaseResult]:
        head = stream.read(CHUNK)
        if not head:
            raise JUnitError(self.path, "empty file (0 bytes)")
        repair = Repairer(head)
        chunk = head
        while chunk:
            self._feed(repair.feed(chunk, False), False, head)
            if self.ready:
                yield from self.ready
                self.ready.clear()
            chunk = stream.read(CHUNK)
        self._feed(repair.feed(b"", True), True, head)
        yield from self.ready
        if repairs is not None:
            notes = repair.notes()
            if self.trailing:
                notes.append(f"{self.trailing} trailing byte(s) after the root element dropped")
            repairs.extend(f"{self.path}: {note}" for note in notes)

    def _feed(self, data: bytes, final: bool, head: bytes) -> None:
        """Parse ``data``; past the root element's end, bytes are only counted (``trailing``):
        a runner that appends a line after ``</testsuites>`` loses no record for it."""
        if self.trailing:
            self.trailing += len(data)
            return
        self.fed += len(data)
        try:
            self.parser.Parse(data, final)
        except expat.ExpatError as exc:
            if exc.code == JUNK_AFTER_ROOT:
                self.trailing = max(1, self.fed - self.parser.ErrorByteIndex)
                return
            raise JUnitError(self.path, self._describe(exc, final, head)) from None
        except DefusedXmlException as exc:
            raise JUnitError(self.path, _describe_refusal(exc)) from None

    def _describe(self, exc: expat.ExpatError, final: bool, head: bytes) -> str:
        where = f"line {exc.lineno}, column {exc.offset}"
        if not self.root_seen():
            if b"<html" in head[:4096].lower():
                return "not a JUnit file (an HTML page)"
            if exc.code == expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]:
                return "not XML (no root element)"
            return f"not XML ({expat.errors.messages[exc.code]} at {where})"
        if final and exc.code in TRUNCATION_ERRORS:
            return f"truncated XML (no closing tag at line {exc.lineno})"
        return f"malformed XML ({expat.errors.messages[exc.code]} at {where})"


@dataclass(slots=True)
class _Suite:
    """A ``<testsuite>`` being read: what it declares broken against what it holds."""

    attrs: dict[str, str]
    records: list[CaseResult] = field(default_factory=list)  # its own, not nested suites
    found: int = 0  # failure/error elements of its records (and of nested suites)
    message: str = ""  # its own <error>/<failure> element, when it has one
    text: str = ""

    @property
    def missing(self) -> int:
        declared = _count(self.attrs.get("errors")) + _count(self.attrs.get("failures"))
        return min(max(0, declared - self.found), MAX_SUITE_ERRORS)


class _Suites:
    """The open ``<testsuite>``/``<testsuites>`` elements, innermost last."""

    def __init__(self, ready: list[CaseResult]) -> None:
        self.open: list[_Suite] = []
        self.ready = ready

    def start(self, attrs: dict[str, str]) -> None:
        self.open.append(_Suite(attrs))

    def end(self) -> None:
        """Close the innermost suite: its records folded into tests, and an error record for
        each failure it counts but holds no record of."""
        suite = self.open.pop()
        missing = suite.missing
        self.ready.extend(fold(suite.records))
        self.ready.extend(suite_errors(suite, missing))
        if self.open:
            self.open[-1].found += suite.found + missing

    def add(self, record: CaseResult, elements: list[Element]) -> None:
        """A testcase record of the innermost suite, and its result elements."""
        suite = self.open[-1]
        suite.records.append(record)
        if elements:
            suite.found += broken_elements(elements)

    def note(self, attrs: dict[str, str], body: str) -> None:
        """A failure/error element directly in the suite: the cause of its unrecorded errors."""
        if self.open:
            suite = self.open[-1]
            suite.message = suite.message or attrs.get("message") or first_line(body)
            suite.text = suite.text or body.strip()[:MAX_DETAILS]


# The callbacks share closure cells, so their statements count as one function's.
def _attach(parser: Any, path: Path, ready: list[CaseResult]) -> Callable[[], bool]:  # noqa: PLR0915
    """Install the element callbacks; they append each finished record to ``ready``.

    This is the hot path (it runs for every element of files with 100,000 testcases), so the
    state lives in closure cells rather than on an object, the common testcase (no result
    element) is built inline, and the id prefix (path and classes) is worked out once per
    classname rather than once per testcase. Returns a probe: has the root element been seen?
    """
    prefixes: dict[tuple[str, str | None], str] = {}
    case: dict[str, str] | None = None
    elements: list[Element] = []
    result: tuple[Outcome, dict[str, str]] | None = None
    result_tag = ""
    text = CappedText()
    suites = _Suites(ready)
    root = ""

    def start_root(name: str, attrs: dict[str, str]) -> None:
        nonlocal root
        if name not in ROOTS:
            raise JUnitError(path, f"not a JUnit file (root element <{name}>)")
        root = name
        parser.StartElementHandler = start
        start(name, attrs)

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal case
        if name == "testcase":
            case = attrs
            if elements:
                elements.clear()
        elif name in ROOTS:
            suites.start(attrs)
        elif name in RESULT_OUTCOMES and not result_tag:
            start_result(name, attrs)

    def start_result(name: str, attrs: dict[str, str]) -> None:
        nonlocal result, result_tag
        found = RESULT_OUTCOMES[name]
        if found is PASSED or (case is None and found not in BROKEN):
            if case is not None:  # surefire's flaky*: failed, then passed on a rerun
                elements.append((found, attrs, "", False))
            return
        result, result_tag = (found, attrs), name
        text.clear()
        parser.CharacterDataHandler = text.append

    def end(name: str) -> None:
        nonlocal case, result, result_tag
        if name == result_tag and result is not None:
            parser.CharacterDataHandler = None
            end_result(result, text.text())
            result, result_tag = None, ""
        elif name == "testcase" and case is not None:
            record = build_case(case, elements) if elements else passed_case(case, prefixes)
            suites.add(record, elements)
            case = None
        elif name in ROOTS:
            suites.end()

    def end_result(found: tuple[Outcome, dict[str, str]], body: str) -> None:
        if case is not None:
            elements.append((found[0], found[1], body, result_tag.startswith("rerun")))
        else:
            suites.note(found[1], body)

    parser.StartElementHandler = start_root
    parser.EndElementHandler = end
    return lambda: bool(root)


def suite_errors(suite: _Suite, missing: int) -> list[CaseResult]:
    """Error records for failures a ``<testsuite>`` counts but has no record of.

    A test file that fails to import leaves only ``<testsuite errors="1" tests="0">``
    (jest-community/jest-junit#212, vitest-dev/vitest#3423): that is a failure in its own
    right, named after the suite, so it is counted and clustered like any other.
    """
    name = suite.attrs.get("name") or "(unnamed testsuite)"
    message = suite.message or (
        f"{name}: the runner counts {missing} failure(s) with no test record "
        "(a test file that failed to load?)"
    )
    return [
        CaseResult(
            id=name if missing == 1 else f"{name} [{k} of {missing}]",
            name=name,
            classname="",
            outcome=Outcome.ERROR,
            duration_s=None,
            message=message[:MAX_MESSAGE],
            error_type=derive_error_type("", message, suite.text),
            details=suite.text,
            file=suite.attrs.get("file") or None,
        )
        for k in range(1, missing + 1)
    ]


def _count(text: str | None) -> int:
    """A testsuite counter: a non-negative integer, anything else 0."""
    return int(text) if text and text.isdigit() else 0


def _describe_refusal(exc: DefusedXmlException) -> str:
    if isinstance(exc, ExternalReferenceForbidden):
        return f"external entity refused ({exc.sysid})"
    if isinstance(exc, EntitiesForbidden) and exc.sysid:
        return f"external entity refused (<!ENTITY {exc.name} SYSTEM {exc.sysid!r}>)"
    name = getattr(exc, "name", "?")
    return f"entity declarations refused (<!ENTITY {name}>: a possible XML bomb)"


def _refuse_entity(name: str, _is_parameter: bool, *declaration: Any) -> None:
    raise EntitiesForbidden(name, *declaration)


def _refuse_unparsed_entity(name: str, base: Any, sysid: Any, pubid: Any, notation: Any) -> None:
    raise EntitiesForbidden(name, None, base, sysid, pubid, notation)


def _refuse_external(context: Any, base: Any, sysid: Any, pubid: Any) -> int:
    raise ExternalReferenceForbidden(context, base, sysid, pubid)
