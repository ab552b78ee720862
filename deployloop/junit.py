"""Streaming JUnit XML reader: one CaseResult per ``<testcase>``, whatever runner wrote it.

It reads with expat callbacks, chunk by chunk, keeping only the testcase being read: a
100,000-case file never sits in memory as a tree. The same guards as defusedxml are installed
on the parser (entity declarations and external references are refused), so a billion-laughs
bomb or an ``<!ENTITY x SYSTEM "file:///etc/passwd">`` stops with a JUnitError instead of
expanding or reading anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from xml.parsers import expat

from defusedxml.common import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden

from deployloop.errors import JUnitError
from deployloop.models import CaseResult, Outcome

CHUNK = 1 << 18
MAX_MESSAGE = 4096
MAX_DETAILS = 65536
MAX_SECONDS = 1e9
ROOTS = frozenset({"testsuites", "testsuite"})
PASSED = Outcome.PASSED

# Child elements of <testcase> that decide its outcome. Surefire's flaky* elements sit in a
# testcase that passed on a rerun: it stays passed. rerun* ones follow a <failure>/<error>
# when every rerun failed too; alone they still mean the test never passed.
RESULT_OUTCOMES = {
    "failure": Outcome.FAILED,
    "error": Outcome.ERROR,
    "skipped": Outcome.SKIPPED,
    "rerunFailure": Outcome.FAILED,
    "rerunError": Outcome.ERROR,
    "flakyFailure": Outcome.PASSED,
    "flakyError": Outcome.PASSED,
}
# When a testcase holds several result elements, the worst decides.
RANK = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.ERROR: 2, Outcome.FAILED: 3}

# Raw C0 control bytes are illegal in XML 1.0 yet leak into test output (ANSI colours);
# deleting them keeps such a file readable. Only for byte-oriented encodings, not UTF-16.
CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13))
WIDE_STARTS = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")  # UTF-16 with or without BOM
TRUNCATION_ERRORS = frozenset(
    expat.errors.codes[m]
    for m in (
        expat.errors.XML_ERROR_NO_ELEMENTS,
        expat.errors.XML_ERROR_UNCLOSED_TOKEN,
        expat.errors.XML_ERROR_PARTIAL_CHAR,
        expat.errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
    )
)

_MESSAGE_TYPE = re.compile(r"^\s*([A-Za-z_][\w.$]*):(?:\s|$)")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
_PYTEST_E_LINE = re.compile(r"^\s*E\s+([A-Za-z_][\w.]*):(?:\s|$)", re.MULTILINE)
_PYTEST_WHERE = re.compile(r"^\s*\S+:\d+: ([A-Za-z_][\w.]*)\s*$", re.MULTILINE)
_TRACEBACK_TAIL = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)):", re.MULTILINE)


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """The JUnit files named: files as given, directories searched for ``*.xml`` recursively."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            inside = {p for p in path.rglob("*.xml") if p.is_file()}
            if not inside:
                raise JUnitError(path, "no *.xml files in this directory")
            found.update(inside)
        elif path.exists():
            found.add(path)
        else:
            raise JUnitError(path, "no such file or directory")
    return sorted(found)


def read_cases(path: Path) -> list[CaseResult]:
    """Every testcase of one file; raises JUnitError when the file is not readable JUnit."""
    return list(iter_cases(path))


def iter_cases(path: Path) -> Iterator[CaseResult]:
    """Testcases of one file as they are parsed; raises JUnitError part way if the file breaks."""
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below, across yields
    except OSError as exc:
        raise JUnitError(path, f"cannot read ({exc.strerror or exc})") from None
    with stream:
        yield from _Reader(path).read(stream)


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

    def read(self, stream: IO[bytes]) -> Iterator[CaseResult]:
        head = stream.read(CHUNK)
        if not head:
            raise JUnitError(self.path, "empty file (0 bytes)")
        strip = not head.startswith(WIDE_STARTS)
        chunk = head
        while chunk:
            self._feed(chunk.translate(None, CONTROL_BYTES) if strip else chunk, False, head)
            if self.ready:
                yield from self.ready
                self.ready.clear()
            chunk = stream.read(CHUNK)
        self._feed(b"", True, head)
        yield from self.ready

    def _feed(self, data: bytes, final: bool, head: bytes) -> None:
        try:
            self.parser.Parse(data, final)
        except expat.ExpatError as exc:
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


def _attach(parser: Any, path: Path, ready: list[CaseResult]) -> Callable[[], bool]:
    """Install the element callbacks; they append each finished testcase to ``ready``.

    This is the hot path (it runs for every element of files with 100,000 testcases), so the
    state lives in closure cells rather than on an object, the common testcase (no result
    element) is built inline, and the id prefix (path and classes) is worked out once per
    classname rather than once per testcase. Returns a probe: has the root element been seen?
    """
    prefixes: dict[tuple[str, str | None], str] = {}
    case: dict[str, str] | None = None
    outcome = PASSED
    result: dict[str, str] | None = None
    result_tag = ""
    text: list[str] = []
    root = ""

    def start_root(name: str, attrs: dict[str, str]) -> None:
        nonlocal root
        if name not in ROOTS:
            raise JUnitError(path, f"not a JUnit file (root element <{name}>)")
        root = name
        parser.StartElementHandler = start

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal case, outcome, result
        if name == "testcase":
            case, outcome, result = attrs, PASSED, None
        elif case is not None and name in RESULT_OUTCOMES:
            start_result(name, attrs)

    def start_result(name: str, attrs: dict[str, str]) -> None:
        nonlocal outcome, result, result_tag
        found = RESULT_OUTCOMES[name]
        if result is not None and RANK[found] <= RANK[outcome]:
            return
        outcome = found
        if found is PASSED:
            return  # a flaky failure that passed on rerun: nothing to report against it
        result, result_tag = attrs, name
        text.clear()
        parser.CharacterDataHandler = text.append

    def end(name: str) -> None:
        nonlocal case, result_tag
        if name == "testcase" and case is not None:
            if result is None:
                ready.append(_passed(case, prefixes))
            else:
                ready.append(build_case(case, outcome, result, "".join(text)))
            case = None
        elif name == result_tag:
            parser.CharacterDataHandler = None
            result_tag = ""

    parser.StartElementHandler = start_root
    parser.EndElementHandler = end
    return lambda: bool(root)


def _passed(attrs: dict[str, str], prefixes: dict[tuple[str, str | None], str]) -> CaseResult:
    """The common testcase, without a result element, built as cheaply as possible."""
    name = attrs.get("name", "")
    classname = attrs.get("classname") or attrs.get("class", "")
    file = attrs.get("file") or None
    prefix = prefixes.get((classname, file))
    if prefix is None:
        prefix = prefixes[classname, file] = id_prefix(classname, file)
    time = attrs.get("time")
    try:
        duration = float(time) if time else 0.0
    except ValueError:
        duration = parse_time(time)
    line = attrs.get("line")
    return CaseResult(
        prefix + name, name, classname, PASSED,
        duration if 0.0 <= duration < MAX_SECONDS else 0.0,
        "", "", "", file, int(line) if line and line.isdigit() else None,
    )  # fmt: skip


def build_case(
    attrs: dict[str, str], outcome: Outcome, result: dict[str, str] | None, text: str = ""
) -> CaseResult:
    """One CaseResult from a testcase's attributes and its deciding result element."""
    name = attrs.get("name", "")
    classname = attrs.get("classname") or attrs.get("class", "")
    file = attrs.get("file") or None
    message = error_type = details = ""
    if result is not None:
        details = text.strip()[:MAX_DETAILS]
        message = (result.get("message") or _first_line(details))[:MAX_MESSAGE]
        if outcome is not Outcome.SKIPPED:
            error_type = derive_error_type(result.get("type", ""), message, details)
    return CaseResult(
        id=case_id(classname, name, file),
        name=name,
        classname=classname,
        outcome=outcome,
        duration_s=parse_time(attrs.get("time")),
        message=message,
        error_type=error_type,
        details=details,
        file=file,
        line=_parse_line(attrs.get("line")),
    )


def case_id(classname: str, name: str, file: str | None) -> str:
    """The pytest node id when derivable, else ``classname::name`` (or the bare name)."""
    return id_prefix(classname, file) + name


def id_prefix(classname: str, file: str | None) -> str:
    """Everything of the id before the test's name: ``tests/test_lib.py::TestA::``."""
    if file and file.endswith(".py"):
        path = file.replace("\\", "/")
        module = path[:-3].replace("/", ".")
        if classname == module:
            return f"{path}::"
        if classname.startswith(module + "."):
            return "::".join([path, *classname[len(module) + 1 :].split("."), ""])
    derived = _pytest_prefix(classname)
    if derived:
        return derived
    if file and file.endswith(".py"):
        return f"{file}::{classname}::" if classname else f"{file}::"
    if classname:
        return f"{classname}::"
    return f"{file}::" if file else ""


def _pytest_prefix(classname: str) -> str | None:
    """``tests.test_lib.TestA`` → ``tests/test_lib.py::TestA::``, when it reads as pytest's.

    pytest names a testcase's class from its node id with ``/`` and ``::`` turned into dots;
    the module is the last part named like a pytest file (``test_*``/``*_test``), what follows
    are ``Test*`` classes. Anything else is not guessed at.
    """
    if not classname or "/" in classname or " " in classname:
        return None
    parts = classname.split(".")
    modules = [i for i, p in enumerate(parts) if p.startswith("test_") or p.endswith("_test")]
    if not modules:
        return None
    end = modules[-1] + 1
    classes = parts[end:]
    if not all(c.startswith("Test") for c in classes):
        return None
    return "::".join(["/".join(parts[:end]) + ".py", *classes, ""])


def derive_error_type(type_attr: str, message: str, details: str) -> str:
    """The exception's type: the ``type`` attribute, else read from the message or traceback."""
    if type_attr.strip():
        return type_attr.strip()
    match = _MESSAGE_TYPE.match(message)
    if match:
        return match.group(1)
    for pattern in (_PYTEST_E_LINE, _PYTEST_WHERE, _TRACEBACK_TAIL):
        found = pattern.findall(details) or pattern.findall(message)
        if found:
            return str(found[-1])
    return ""


def parse_time(text: str | None) -> float:
    """Seconds from a ``time`` attribute: tolerant of blanks, ``1,234.5``, ``0,5`` and garbage."""
    if not text:
        return 0.0
    text = text.strip()
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    elif "." not in text:
        text = text.replace(",", ".")  # a decimal comma, as some locales write it
    try:
        value = float(text)
    except ValueError:
        return 0.0
    return value if 0.0 <= value < MAX_SECONDS else 0.0  # NaN, inf and negatives are noise


def _parse_line(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


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
