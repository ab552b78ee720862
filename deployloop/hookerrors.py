"""The error of a behave hook, attached to the tests it kept from running (issue 15 item 5).

behave writes the scenarios of a feature whose ``before_feature`` (or ``before_all``) hook
failed as ``status="untested"`` with ``<skipped/>``; the JUnit reader makes them errors carrying
``junit_cases.UNTESTED_MESSAGE``, but the hook's error is only in behave's output
(behave/behave#688), as a line ``HOOK-ERROR in before_feature: ConnectionError: …`` after the
``Feature: <name>`` line it belongs to. This module finds those lines in the suite's log and
puts them on the tests, so the cause is shown, clustered and filed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from deployloop.junit_cases import MAX_MESSAGE, UNTESTED_MESSAGE
from deployloop.models import CaseResult

HOOK_ERROR = "HOOK-ERROR in "
FEATURE = re.compile(r"^\s*Feature:\s*(.+?)\s*$")
ERROR_TYPE = re.compile(r"^HOOK-ERROR in \w+: ([A-Za-z_][\w.]*):")
MAX_LINE = 1000  # a hook's error line as kept; the rest of a huge line says nothing more


def attach_hook_errors(cases: Sequence[CaseResult], log_path: Path) -> list[CaseResult]:
    """``cases`` with each untested test's message replaced by the hook error that blocked it.

    Matched by feature name (behave's classname ends with it); a test whose feature logged no
    hook error gets every hook error of the run (``before_all`` blocks them all). Unchanged when
    no test is untested or the log names no hook error.
    """
    if not any(c.message == UNTESTED_MESSAGE for c in cases):
        return list(cases)
    errors = hook_errors(log_path)
    if not errors:
        return list(cases)
    return [_attached(c, errors) if c.message == UNTESTED_MESSAGE else c for c in cases]


def hook_errors(log_path: Path) -> dict[str, list[str]]:
    """Feature key (see :func:`_key`; "" before any feature) → its HOOK-ERROR lines, in order."""
    found: dict[str, list[str]] = {}
    feature = ""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            for line in log:
                if (match := FEATURE.match(line[:MAX_LINE])) is not None:
                    feature = _key(match.group(1))
                elif (start := line.find(HOOK_ERROR)) >= 0:
                    text = line[start : start + MAX_LINE].rstrip()
                    if text not in found.setdefault(feature, []):
                        found[feature].append(text)
    except OSError:
        return {}
    return found


def _key(name: str) -> str:
    """Letters and digits, lower case: behave's classname spells the feature name its own way."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _attached(case: CaseResult, errors: dict[str, list[str]]) -> CaseResult:
    feature = _key(case.classname.rpartition(".")[2])
    own = errors.get(feature) or list(dict.fromkeys(e for lines in errors.values() for e in lines))
    kind = ERROR_TYPE.match(own[0])
    lines = "\n".join(own)
    return replace(
        case,
        message="; ".join(own)[:MAX_MESSAGE],
        error_type=kind.group(1) if kind else case.error_type,
        details=f"{lines}\n\n{UNTESTED_MESSAGE}\n\n{case.details}".rstrip(),
    )
