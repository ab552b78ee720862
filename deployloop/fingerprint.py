"""Failure fingerprints: one per root cause, stable across runs, versioned.

Twenty tests failing with "server closed with 1011 (internal error) request <uuid> at
10.0.0.5:8443" are one problem; the request id, address and timing are noise. A fingerprint
hashes the error type and the first meaningful line of the message after masking that noise.
The ``v1-`` prefix is the scheme's version: change the masking, bump it, and old issues are
not silently matched against different clusters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

VERSION = "v1"

# Order matters: the specific shapes go before the generic number mask eats their digits.
# Each mask has hints: substrings (of the lower-cased text) without which it cannot match, so
# most masks are skipped cheaply on most messages.
_Replacement = str | Callable[[re.Match[str]], str]


def _mask_hex(match: re.Match[str]) -> str:
    """A long run of hex digits is an id when it mixes digits and letters (not 12345678)."""
    run = match.group()
    mixed = any(c.isdigit() for c in run) and not run.isdigit()
    return "<hex>" if mixed else run


_MASKS: tuple[tuple[re.Pattern[str], _Replacement, tuple[str, ...]], ...] = tuple(
    (re.compile(pattern, flags), replacement, hints)
    for pattern, flags, replacement, hints in (
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            re.I,
            "<uuid>",
            ("-",),
        ),
        (
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?",
            0,
            "<ts>",
            ("-",),
        ),
        (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", 0, "<ts>", (":",)),
        (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b", 0, "<ip>", (".",)),
        (r"\[[0-9a-f:]*:[0-9a-f:]*\](?::\d{1,5})?", re.I, "<ip>", ("[",)),
        (
            r"(?:[A-Za-z]:\\(?:[^\s\\]+\\)*?(?:Temp|tmp)\\|/(?:private/)?(?:var/)?(?:tmp|folders)/)"
            r"[^\s'\"]*",
            re.I,
            "<tmp>",
            ("tmp", "temp", "folders"),
        ),
        (r"\S*pytest-of-[^\s'\"]*", 0, "<tmp>", ("pytest-of-",)),
        (r"\b0x[0-9a-f]+\b", re.I, "<hex>", ("0x",)),
        (r"\b[0-9a-f]{8,}\b", re.I, _mask_hex, ()),
        (r"(['\"])[^'\"\s]*\d[^'\"\s]*\1", 0, r"\1<id>\1", ("'", '"')),
    )
)
# Codes that name the failure stay: "closed with 1011" is not "closed with 1006", "status 500"
# is not "status 404". Every other number is masked, ports ("host:8443") included.
_KEEP_AFTER = ("status", "code", "closed with", "http")
_NUMBER_OR_CODE = re.compile(
    r"(\b(?:status|code|closed with|HTTP)[\s:=]*\d+\b)|(?<![\w.<])\d+(?:\.\d+)?", re.I
)
_NUMBER = re.compile(r"(?<![\w.<])\d+(?:\.\d+)?")
_TRACEBACK = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failure)\b")
_NOISE_PREFIX = re.compile(r"^(?:E\s+|[●✕×✗*>\-]+\s*)")


def fingerprint(error_type: str, message: str, extra_masks: Iterable[str] = ()) -> str:
    """``v1-<12 hex>`` for the error type plus the normalized first meaningful line."""
    return _fingerprint(error_type.strip(), first_meaningful_line(message), tuple(extra_masks))


@lru_cache(maxsize=4096)
def _fingerprint(error_type: str, line: str, extra_masks: tuple[str, ...]) -> str:
    # Cached: when staging is down, hundreds of tests fail with the very same line.
    digest = hashlib.sha256(f"{error_type}\n{normalize(line, extra_masks)}".encode()).hexdigest()
    return f"{VERSION}-{digest[:12]}"


def normalize(message: str, extra_masks: Iterable[str] = ()) -> str:
    """``message`` with run-specific noise (ids, numbers, addresses, times, temp paths) masked.

    ``extra_masks`` are the user's own regexes, applied first; each match becomes ``<*>``.
    """
    text = message
    for pattern in _compiled(tuple(extra_masks)):
        text = pattern.sub("<*>", text)
    lower = text.lower()
    for pattern, replacement, hints in _MASKS:
        if not hints or any(hint in lower for hint in hints):
            text = pattern.sub(replacement, text)
    if any(word in lower for word in _KEEP_AFTER):
        text = _NUMBER_OR_CODE.sub(_mask_number, text)
    else:
        text = _NUMBER.sub("<n>", text)
    return " ".join(text.split())


def first_meaningful_line(message: str) -> str:
    """The line that says what went wrong: a traceback's exception line, else the first text."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if lines and lines[0].startswith(_TRACEBACK):
        exceptions = [line for line in lines if _EXCEPTION_LINE.match(line)]
        if exceptions:
            return exceptions[-1]
    for line in lines:
        cleaned = _NOISE_PREFIX.sub("", line).strip()
        if cleaned and any(ch.isalnum() for ch in cleaned):
            return cleaned
    return ""


def _mask_number(match: re.Match[str]) -> str:
    return match.group(1) or "<n>"


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError(f"bad fingerprint mask {pattern!r}: {exc}") from None
    return tuple(compiled)


# Appended rather than at the top (another branch rewrites this module's head); move it up then.
from deployloop.models import CaseResult  # noqa: E402


def case_fingerprint(case: CaseResult, masks: Iterable[str] = ()) -> str:
    """The cluster key of one broken test case, ``v1-<12 hex>``: the one way a case is keyed.

    Summaries (``session.md``, ``results --json``, the report) and triage (the issue marker) all
    key a case by this, so one root cause has one key everywhere. A case whose JUnit element
    names no error type is keyed by its outcome (``failed``/``error``) instead. ``masks`` are the
    user's extra regexes (``[issues] mask``); a bad one raises ValueError.
    """
    return fingerprint(case.error_type or case.outcome.value, case.message, masks)
