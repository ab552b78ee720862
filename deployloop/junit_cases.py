"""One record (``CaseResult``) from a ``<testcase>``: its attributes and the result elements
inside it (failure, error, skipped and surefire's rerun*/flaky* ones), as the streaming reader
in ``junit.py`` collects them.
"""

from __future__ import annotations

import sys

from deployloop.junit_fields import (
    case_id,
    collect_error_file,
    collect_error_line,
    derive_error_type,
    first_line,
    id_prefix,
    parse_line,
    parse_time,
)
from deployloop.logical import join_texts
from deployloop.models import CaseResult, Outcome

MAX_MESSAGE = 4096
MAX_DETAILS = 65536
PASSED = Outcome.PASSED

# Child elements of <testcase> that decide its outcome. Surefire's flaky* elements sit in a
# testcase that passed on a rerun: it stays passed, and is flaky. rerun* ones follow a
# <failure>/<error> when every rerun failed too; alone they still mean the test never passed.
RESULT_OUTCOMES = {
    "failure": Outcome.FAILED,
    "error": Outcome.ERROR,
    "skipped": Outcome.SKIPPED,
    "rerunFailure": Outcome.FAILED,
    "rerunError": Outcome.ERROR,
    "flakyFailure": Outcome.PASSED,
    "flakyError": Outcome.PASSED,
}
BROKEN = (Outcome.FAILED, Outcome.ERROR)
# How pytest writes xfail, and an xpass it reports as such (_pytest/junitxml.py).
XFAIL_TYPE = "pytest.xfail"
XPASS_MESSAGE = "xfail-marked test passes unexpectedly"
# behave writes the scenarios a failed hook (or --stop) kept from running as status="untested"
# with <skipped/> (behave/behave#688); the hook's error itself is only in behave's output.
UNTESTED_MESSAGE = (
    "not run: behave marked it untested (a hook or an earlier failure stopped it; "
    "its error is in the runner's output)"
)

# A result element of a testcase: outcome, attributes, text, is it surefire's rerun* one.
Element = tuple[Outcome, dict[str, str], str, bool]


def broken_elements(elements: list[Element]) -> int:
    """How many failures a testsuite's counters give this record: its failure/error elements
    (pytest counts each subtest's), or one when it only has surefire rerun* elements."""
    direct = sum(1 for o, _, _, rerun in elements if o in BROKEN and not rerun)
    return direct or int(any(o in BROKEN for o, _, _, _ in elements))


def passed_case(attrs: dict[str, str], prefixes: dict[tuple[str, str | None], str]) -> CaseResult:
    """The common testcase, without a result element, built as cheaply as possible."""
    name = attrs.get("name", "")
    # interned: 100,000 records of 1,000 classes hold 1,000 classnames, not 100,000 copies
    classname = sys.intern(attrs.get("classname") or attrs.get("class", ""))
    file = attrs.get("file") or None
    prefix = prefixes.get((classname, file))
    if prefix is None:
        prefix = prefixes[classname, file] = id_prefix(classname, file)
    line = attrs.get("line")
    return CaseResult(
        prefix + name, name, classname, PASSED, parse_time(attrs.get("time")),
        "", "", "", file, int(line) if line and line.isdigit() else None,
    )  # fmt: skip


def build_case(attrs: dict[str, str], elements: list[Element]) -> CaseResult:
    """One record from a testcase's attributes and its result elements, in document order.

    A failure or error decides (failure over error) and every broken element's text is kept
    (pytest subtests write one <failure> each; surefire a <rerunFailure> per rerun); else a
    skip decides, read as pytest's xfail/xpass where pytest wrote one, and as an error when
    behave says the test was never run (``status="untested"``).
    """
    name = attrs.get("name", "")
    classname = sys.intern(attrs.get("classname") or attrs.get("class", ""))
    broken = [e for e in elements if e[0] in BROKEN]
    skips = [e for e in elements if e[0] is Outcome.SKIPPED]
    outcome, message, error_type, details = _judge(attrs, broken or skips[:1])
    module = collect_error_file(classname, name, attrs.get("file") or None, message)
    if module is not None:  # pytest's record of a module that failed to import
        message = collect_error_line(details) or message
    return CaseResult(
        id=module or case_id(classname, name, attrs.get("file") or None),
        name=name,
        classname=classname,
        outcome=outcome,
        duration_s=parse_time(attrs.get("time")),
        message=message,
        error_type=error_type,
        details=details,
        file=attrs.get("file") or None,
        line=parse_line(attrs.get("line")),
        flaky=outcome is PASSED,  # a passed record with elements holds only flaky* ones
    )


def _judge(attrs: dict[str, str], deciding: list[Element]) -> tuple[Outcome, str, str, str]:
    """(outcome, message, error type, details) of a record from its deciding elements."""
    if not deciding:
        return PASSED, "", "", ""
    outcome, first, body, _ = deciding[0]
    texts = [(_message(a, t), t.strip()[:MAX_DETAILS]) for _, a, t, _ in deciding]
    message, details = texts[0][0], join_texts(texts)
    if outcome in BROKEN:
        if any(o is Outcome.FAILED for o, _, _, _ in deciding):
            outcome = Outcome.FAILED
        return outcome, message, derive_error_type(first.get("type", ""), message, body), details
    if first.get("type") == XFAIL_TYPE:
        return Outcome.XFAILED, message, "", details
    if message == XPASS_MESSAGE:
        return Outcome.XPASSED, message, "", details
    if attrs.get("status") == "untested":
        return Outcome.ERROR, UNTESTED_MESSAGE, "", details
    return Outcome.SKIPPED, message, "", details


def _message(attrs: dict[str, str], body: str) -> str:
    return (attrs.get("message") or first_line(body))[:MAX_MESSAGE]
