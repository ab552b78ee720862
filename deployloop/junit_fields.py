"""What a ``<testcase>``'s attributes and texts say: its id, its time, its error's type.

Pure functions over strings, shared by the reader (``junit``) and anything that needs a test's
id the way the reader builds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_SECONDS = 1e9
# Seconds per unit, as runners write them (no unit: seconds, JUnit's own).
UNITS = {
    "": 1.0, "s": 1.0, "sec": 1.0, "secs": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6,
    "μs": 1e-6, "ns": 1e-9, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0,
}  # fmt: skip
# A thousands separator other than "," and ".": a space (also no-break U+00A0, narrow U+202F,
# thin U+2009; French, Russian, SI) or an apostrophe (Swiss ' and ’), between a digit and
# exactly three more (CLDR's grouping symbols; 1 234,5 and 1'234.5 are 1234.5).
_GROUPING = re.compile("(?<=\\d)[ \u00a0\u202f\u2009'\u2019](?=\\d{3}(?!\\d))")
_PART = re.compile(r"(\d[\d.,]*)\s*([^\W\d_]*)")
_DURATION = re.compile(r"\s*(?:\d[\d.,]*\s*[^\W\d_]*\s*)+")
_MESSAGE_TYPE = re.compile(r"^\s*([A-Za-z_][\w.$]*):(?:\s|$)")
_PYTEST_E_LINE = re.compile(r"^\s*E\s+([A-Za-z_][\w.]*):(?:\s|$)", re.MULTILINE)
_PYTEST_WHERE = re.compile(r"^\s*\S+:\d+: ([A-Za-z_][\w.]*)\s*$", re.MULTILINE)
_TRACEBACK_TAIL = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)):", re.MULTILINE)
_E_LINE = re.compile(r"^E\s+(\S.*?)\s*$", re.MULTILINE)
# pytest's record of a module that failed to collect: classname "", the module's node id mangled
# to dots as its name, and this message (_pytest/junitxml.py, append_collect_error).
COLLECT_FAILURE = "collection failure"


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


def collect_error_file(classname: str, name: str, file: str | None, message: str) -> str | None:
    """The module (``suite/test_imp.py``) a pytest collection-error record stands for, else None.

    That record is no test (``suite/test_imp.py::suite.test_imp`` selects nothing), so its id
    is the module's file: a rerun selects the whole file, and the file's tests passing proves
    the module imports again. The path is the ``file`` attribute (xunit1), else the name read
    back as a path when it names a pytest file (``test_*``/``*_test``; xunit2 has no ``file``).
    """
    if classname or message != COLLECT_FAILURE:
        return None
    if file and file.endswith(".py"):
        return file.replace("\\", "/")
    last = name.rsplit(".", 1)[-1]
    if last.startswith("test_") or last.endswith("_test"):
        return name.replace(".", "/") + ".py"
    return None


def collect_error_line(details: str) -> str | None:
    """The error line of a collection error's text: pytest's last ``E   `` line
    (``ImportError: client library broken``), which says more than "collection failure"."""
    found = _E_LINE.findall(details)
    return str(found[-1]) if found else None


def file_of(test_id: str) -> str | None:
    """The file a pytest node id names (``a/test_b.py::test_c`` → ``a/test_b.py``), else None."""
    path, sep, _ = test_id.partition("::")
    return path if sep and path.endswith(".py") else None


def with_files(ids: Iterable[str]) -> set[str]:
    """``ids`` and the files they are in: a collection error's id (its file, see
    ``collect_error_file``) counts as passing once a test of that file passes."""
    out = set(ids)
    out |= {f for f in map(file_of, out) if f is not None}
    return out


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


def parse_time(text: str | None) -> float | None:
    """Seconds from a ``time`` attribute; None when there is none or it cannot be read.

    Reads plain seconds (``3.412``), units and unit sequences as kotest and Kotlin's
    ``Duration.toString`` write them (``3.412s``, ``450ms``, ``80.803us``, ``1m 2.5s``;
    kotest/kotest#2756), a decimal comma (``0,160``) and grouped thousands in either convention
    (``1,234.5``, ``1.234,5``, ``2.401,100``), or grouped by spaces (``1 234,5``, also no-break
    and narrow no-break ones) or apostrophes (Swiss ``1'234.5``). A lone comma is a decimal
    comma: ``1,234`` is 1.234 s, since a test taking twenty minutes is rarer than a locale
    writing commas.
    An unreadable time is unknown, never 0: a p95 over made-up zeros would pass any gate.
    """
    if text is None:
        return None
    try:
        total: float | None = float(text)  # the common case, and 1.0E-4 as Java writes it
    except ValueError:
        total = _with_units(_GROUPING.sub("", text))
    return total if total is not None and 0.0 <= total < MAX_SECONDS else None


def _with_units(text: str) -> float | None:
    if not _DURATION.fullmatch(text):
        return None
    parts = _PART.findall(text)
    if len(parts) > 1 and not all(unit for _, unit in parts):
        return None  # "1 23,5" is no duration: only "1m 2.5s" sums its parts
    total = 0.0
    for number, unit in parts:
        factor = UNITS.get(unit.lower())
        value = _number(number)
        if factor is None or value is None:
            return None
        total += value * factor
    return total


def _number(text: str) -> float | None:
    """A decimal number written with either separator convention (see parse_time)."""
    comma, dot = text.rfind(","), text.rfind(".")
    if comma >= 0 and dot >= 0:  # the later separator is the decimal one
        grouping, decimal = (".", ",") if comma > dot else (",", ".")
        text = text.replace(grouping, "").replace(decimal, ".")
    elif comma >= 0:
        text = text.replace(",", "") if text.count(",") > 1 else text.replace(",", ".")
    elif text.count(".") > 1:
        text = text.replace(".", "")  # 1.234.567: dots grouping thousands
    try:
        return float(text)
    except ValueError:
        return None


def parse_line(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
