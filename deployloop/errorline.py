"""Which line of a failure carries its error: the input of fingerprint v2.

A JUnit ``message`` is the error on most runners, but not on all: go-junit-report and gotestsum
write ``Failed`` on every failure, jest-junit writes ``Test suite failed to run`` for a syntax
error and for a missing module alike, Playwright <= 1.58 writes ``file:line:col title`` (the
test, not the error; microsoft/playwright#12944), jest's first line is the generic matcher
(``expect(received).toBe(expected)``) with the values on later lines, Spring wraps every
start-up failure in ``Failed to load ApplicationContext``, and a bare ``assert 1 == 2`` says
nothing of the ``OSError`` in the traceback. Each :class:`Rule` below handles one of those
kinds; :func:`choose` applies them and says which fired, for ``results --explain``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from deployloop.models import CaseResult

SCAN_CHARS = 32768  # text read per failure: the error sits near the top, or in the tail
MAX_PART = 300  # characters kept of each chosen line: huge lines are dumps, not errors
MAX_VALUES = 4  # Expected/Received lines kept for a matcher


class Rule(Enum):
    """Why a line was chosen; several can fire in turn (placeholder, then matcher)."""

    MESSAGE = "message"  # the message's first meaningful line
    TRACEBACK = "traceback"  # the message is a traceback: its last exception line
    PLACEHOLDER = "placeholder"  # the message says nothing ("Failed"): the text's error line
    NAMES_TEST = "names-test"  # the message is the test's own name: the text's error line
    MATCHER = "matcher"  # a generic matcher line: with its Expected/Received lines
    CAUSED_BY = "caused-by"  # a wrapper ("Failed to load ApplicationContext"): the root cause
    INNER_EXCEPTION = "inner-exception"  # a bare comparison: the exception behind it
    ASSERTION_SOURCE = "assertion-source"  # a bare comparison, no exception: its source


@dataclass(frozen=True, slots=True)
class Choice:
    """The chosen line (raw, before masking), the error type it goes with, the rules fired."""

    line: str
    error_type: str
    rules: tuple[Rule, ...]


# Messages that carry no information, lower-cased without a trailing colon, per runner:
# go-junit-report/gotestsum, jest-junit, Playwright's type attribute, JUnit 4 and friends.
PLACEHOLDERS = frozenset(
    {
        "", "failed", "fail", "failure", "error", "errors", "test failed", "exception",
        "test suite failed to run", "assertionerror", "assertion failed", "assertionfailederror",
        "java.lang.assertionerror", "junit.framework.assertionfailederror", "null", "none",
        "undefined", "unknown error", "failed on setup", "failed on teardown",
    }
)  # fmt: skip
PLACEHOLDER_TYPES = frozenset({"", "failure", "failed", "error", "fail"})
WRAPPERS = re.compile(
    r"^(?:[\w.$]+: )?(?:Failed to load ApplicationContext|ApplicationContext failure threshold"
    r"|Error creating bean|Unexpected exception thrown|Error while executing)",
    re.I,
)
_TRACEBACK = "Traceback (most recent call last):"
_NOISE_PREFIX = re.compile(r"^(?:E\s+|[●✕×✗*>\-]+\s*)")
_NAMES_TEST = re.compile(r"^\S+:\d+(?::\d+)?\s+(?:›\s+)?\S")  # agents.spec.js:8:1 stop agent
_FRAMEWORK = re.compile(
    r"^(?:=== (?:RUN|PAUSE|CONT|NAME)|--- (?:FAIL|PASS|SKIP)|FAIL\b|PASS\b|ok\s|at\s|File \"|"
    r"\.\.\. \d+ more|goroutine \d+|Call log:|-{3,}|\d*\s*\||>\s*\d+\s*\|)"
)
_GO_PREFIX = re.compile(r"^[\w.-]+\.go:\d+: ")
_PYTEST_E = re.compile(r"^E\s{2,}(\S.*)$")
_PYTEST_SOURCE = re.compile(r"^>\s+(assert\b.*)$")
_MATCHER = re.compile(r"expect\((?:received|locator|page|response)\)\.(?:not\.)?\w+\(")
_VALUES = re.compile(r"^[-+]?\s*(?:Expected|Received)\b")
_CAUSED_BY = re.compile(r"^Caused by: (.+)$")
_EXCEPTION = re.compile(
    r"(?<![\w.])((?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Fault))"
    r"(?::\s+\S.*|\s*$)"
)
_ERROR_WORDS = re.compile(
    r"error|exception|fail|panic|timed? ?out|unexpected|mismatch|expected|\bgot\b|\bwant\b|"
    r"invalid|cannot|can't|unable|refused|denied|not found|missing|exceeded|crash",
    re.I,
)
_ASSERTION_TYPE = re.compile(r"^(?:[\w.]*\.)?Assert\w*(?:Error|Failure|FailedError)$")
# A comparison of bare values: "assert 1 == 2", "assert 'Done' in ''", "assert []", "assert False".
_LITERAL = r"(?:-?\d+(?:\.\d+)?|'[^']*'|\"[^\"]*\"|None|True|False|\[\]|\{\}|\(\)|<[^<>]*>)"
_BARE = re.compile(
    rf"^(?:AssertionError:?\s*)?(?:assert\s+(?:not\s+)?{_LITERAL}"
    rf"(?:\s*(?:==|!=|<=|>=|<|>|in|not in|is|is not)\s*{_LITERAL})?)?\s*$"
)
_CODE_LIKE = re.compile(r"\b(?:[1-5]\d\d|1\d{3}|[34]\d{3})\b")  # HTTP 1xx-5xx, close codes


def choose(case: CaseResult) -> Choice:
    """The line that says what went wrong with ``case``, and the rules that picked it."""
    details = _scan(case.details)
    line, rule = _from_message(case)
    rules = [rule]
    error_type = case.error_type.strip()
    if _is_bare(line):
        behind = _after_bare(details)
        if behind is not None:
            (line, extra), error_type = behind, ""
            rules.append(extra)
    elif rule in (Rule.PLACEHOLDER, Rule.NAMES_TEST):
        found = _error_line(details, case)
        if found is not None:
            line, error_type = found, ""  # the line found carries its own type, if any
    if _MATCHER.search(line):
        line = _with_values(line, details)
        rules.append(Rule.MATCHER)
    elif WRAPPERS.match(line) and (cause := _caused_by(details)):
        line, error_type = cause, ""
        rules.append(Rule.CAUSED_BY)
    if error_type.lower() in PLACEHOLDER_TYPES:
        error_type = ""
    return Choice(line, error_type, tuple(rules))


def _scan(text: str) -> list[str]:
    """The text's non-blank lines, stripped; a huge text only by its head and tail."""
    if len(text) > SCAN_CHARS:
        text = text[: SCAN_CHARS // 2] + "\n" + text[-SCAN_CHARS // 2 :]
    return [line.strip()[:MAX_PART] for line in text.splitlines() if line.strip()]


def _from_message(case: CaseResult) -> tuple[str, Rule]:
    message = case.message.strip()
    if message.startswith(_TRACEBACK):
        exceptions = [s for s in _scan(message) if _EXCEPTION.match(s)]
        if exceptions:
            return exceptions[-1], Rule.TRACEBACK
    line = first_meaningful(message)
    if is_placeholder(line, case.error_type):
        return line, Rule.PLACEHOLDER
    if _NAMES_TEST.match(line) or _only_the_test(line, case):
        return line, Rule.NAMES_TEST
    return line, Rule.MESSAGE


def first_meaningful(text: str) -> str:
    """The first line with a letter or digit, list bullets and pytest's ``E`` stripped."""
    for line in text.splitlines():
        cleaned = _NOISE_PREFIX.sub("", line.strip()).strip()
        if any(ch.isalnum() for ch in cleaned):
            return cleaned[:MAX_PART]
    return ""


def is_placeholder(line: str, error_type: str) -> bool:
    """A message that says nothing: a known placeholder, or only the error's type."""
    bare = line.strip().rstrip(":").strip().lower()
    return bare in PLACEHOLDERS or (bool(bare) and bare == error_type.strip().lower())


def _only_the_test(line: str, case: CaseResult) -> bool:
    """The message is the test's own id or name, perhaps with a location: nothing else."""
    rest = line
    for own in (case.id, case.name):
        if own:
            rest = rest.replace(own, "")
    return line != rest and not any(ch.isalpha() for ch in rest.replace("failed", ""))


def _error_line(details: list[str], case: CaseResult) -> str | None:
    """The text's line that carries the error: pytest's first ``E`` line, else the first line
    with an error word among those not written by the framework, else the first such line."""
    for line in details:
        match = _PYTEST_E.match(line)
        if match and not _BARE.match(match.group(1)):
            return match.group(1)
    own = {case.name.strip().lower(), case.message.strip().lower(), case.error_type.lower()}
    candidates = [
        _GO_PREFIX.sub("", line)
        for line in details
        if not _FRAMEWORK.match(line)
        and not _NAMES_TEST.match(line)
        and line.lower() not in own
        and not is_placeholder(line, case.error_type)
    ]
    if not candidates:
        return None
    erring = [c for c in candidates if _ERROR_WORDS.search(c)]
    return _NOISE_PREFIX.sub("", (erring or candidates)[0]).strip()


def _is_bare(line: str) -> bool:
    """A comparison of bare values (or an empty assertion) whose values are not codes."""
    if _ASSERTION_TYPE.match(line.rstrip(": ")):
        return True
    return bool(_BARE.match(line)) and not _CODE_LIKE.search(line)


def _after_bare(details: list[str]) -> tuple[str, Rule] | None:
    """Behind a bare comparison: the exception nearest it in the traceback or the captured
    output (not an assertion), else the assertion's source expression (pytest's ``>`` line)."""
    nearest = None
    for text in details:
        for candidate in _EXCEPTION.finditer(text):
            if not _ASSERTION_TYPE.match(candidate.group(1)):
                nearest = candidate.group(0)
    if nearest is not None:
        return nearest.strip(), Rule.INNER_EXCEPTION
    for text in details:
        match = _PYTEST_SOURCE.match(text)
        if match:
            return match.group(1), Rule.ASSERTION_SOURCE
    return None


def _with_values(line: str, details: list[str]) -> str:
    """A matcher line with the Expected/Received lines that tell one failure from another."""
    values = [v for v in details if _VALUES.match(v)][:MAX_VALUES]
    return " | ".join([line, *values])


def _caused_by(details: list[str]) -> str | None:
    """The innermost ``Caused by:`` of a Java stack trace (the last one printed)."""
    causes = [m.group(1) for m in map(_CAUSED_BY.match, details) if m]
    return causes[-1] if causes else None
