"""Failure fingerprints: one per root cause, stable across runs, versioned.

Twenty tests failing with "server closed with 1011 (internal error) request <uuid> at
10.0.0.5:8443" are one problem; the request id, address and timing are noise. A fingerprint
hashes the error type and the first meaningful line of the message after masking that noise.
The prefix is the scheme's version: change the masking, bump it, and old issues are not
silently matched against different clusters. ``v2`` (:func:`explain`) is the key in use, with
``clustering.merge`` as its second stage; ``v1`` stays, computed exactly as it was, so issues
filed under it are found again and re-keyed (``v1_fingerprint``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from deployloop.errorline import Rule, choose
from deployloop.models import CaseResult

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


# --- v2 --------------------------------------------------------------------------------------
# v2 masks what v1 could not (learned from Sentry's grouping parameterization, LUCI Analysis'
# failure-reason algorithm and the Kubernetes triage normalizer; written anew): the test's own
# identity, emails, URLs' hosts, numbered host names, k8s generated names, dates in several
# formats, durations, absolute paths anywhere, quoted single-token values, and dict/set/map
# orderings. It keeps what v1 ate: HTTP status, WebSocket close, signal, errno and exit codes.
VERSION_V2 = "v2"
_K8S = "[bcdfghjklmnpqrstvwxz2456789]"  # the alphabet of k8s generateName suffixes
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_FS_ROOTS = "srv|home|builds|var|tmp|opt|usr|app|Users|private|mnt|workspace|github|root|data|run"
_FILE_EXTS = frozenset(
    [
        "py",
        "js",
        "ts",
        "mjs",
        "cjs",
        "jsx",
        "tsx",
        "go",
        "java",
        "kt",
        "rb",
        "rs",
        "json",
        "xml",
        "yaml",
        "yml",
        "txt",
        "md",
    ]
)
_Mask = tuple[re.Pattern[str], _Replacement, tuple[str, ...]]


def _sort_items(match: re.Match[str]) -> str:
    """``{b, a}`` → ``{a, b}``: a printed set, dict or Go map in a stable order."""
    opener, body, closer = match.group(1), match.group(2), match.group(3)
    sep = " " if opener == "map[" else ", "
    return opener + sep.join(sorted(body.split(sep))) + closer


def _mask_host(match: re.Match[str]) -> str:
    """A dotted name with a numbered label is a host, unless it is a file name."""
    name = match.group()
    labels = name.split(".")
    if labels[-1].lower() in _FILE_EXTS or len(labels) < 3:
        return name
    return "<host>" if any(c.isdigit() for c in name) else name


def _keep_code(match: re.Match[str]) -> str:
    """Codes stay (status 500 is not status 404); values compared stay only when code-like."""
    context = match.group("ctx")
    if context is None:
        return "<n>"
    if match.group("strict") or _CODE_VALUE.fullmatch(match.group("num")):
        return match.group(0)
    return context + "<n>"


_HEX_RUN = re.compile(r"[0-9a-f]+")
_SWITCHES = re.compile(r"(?<=\d)[A-Za-z]|(?<=[A-Za-z])\d")  # letter↔digit changes in a run


def _mask_prefixed_id(match: re.Match[str]) -> str:
    """``req_8f7e6d5c4b3a2918``, ``build-9fK2xQ7mZ`` → ``req_<id>``: a generated id behind a
    word prefix (request, trace, session ids: Stripe-style ``<prefix>_<random>``). The run
    must look drawn at random: lower-case hex with a digit, or a digit in mixed case, or
    three letter↔digit changes; ``text_embedding3`` and ``checkout-v2service`` stay."""
    prefix, run = match.group(1), match.group(2)
    if not any(c.isdigit() for c in run):
        return match.group()
    mixed_case = run.lower() != run and run.upper() != run
    drawn = _HEX_RUN.fullmatch(run) or mixed_case or len(_SWITCHES.findall(run)) >= 3
    return prefix + "<id>" if drawn else match.group()


_CODE_VALUE = re.compile(r"[1-5]\d\d|1\d{3}|[34]\d{3}")  # HTTP 1xx-5xx, WebSocket close codes
_MASKS_V2: tuple[_Mask, ...] = tuple(
    (re.compile(pattern, flags), replacement, hints)
    for pattern, flags, replacement, hints in (
        (r"(\{|map\[)([^{}\[\]]*?(?:, | )[^{}\[\]]*?)(\}|\])", 0, _sort_items, ("{", "map[")),
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            re.I,
            "<uuid>",
            ("-",),
        ),
        (r"[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", 0, "<email>", ("@",)),
        (r"\b((?:https?|wss?|ftp)://)[^\s/'\"<>]+", re.I, r"\1<host>", ("://",)),
        (
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
            rf"|\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+)?\d{{1,2}}\s+{_MONTH}\s+\d{{4}}"
            r"(?:\s+\d{2}:\d{2}(?::\d{2})?)?(?:\s+(?:GMT|UTC|[+-]\d{4}))?"
            rf"|\b{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b"
            r"|\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b",
            0,
            "<date>",
            ("-", "/", ":", ","),
        ),
        (rf"\b([a-z][-a-z0-9]*?)-{_K8S}{{6,10}}-{_K8S}{{5}}\b", 0, r"\1-<pod>", ("-",)),
        (rf"\b([a-z][a-z0-9]*(?:-[a-z0-9]+)+)-{_K8S}{{5}}\b", 0, r"\1-<k8s>", ("-",)),
        (r"\b[A-Za-z][\w-]*(?:\.[A-Za-z0-9][\w-]*)+\b", 0, _mask_host, (".",)),
        (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b", 0, "<ip>", (".",)),
        (r"\[[0-9a-f:]*:[0-9a-f:]*\](?::\d{1,5})?", re.I, "<ip>", ("[",)),
        (
            rf"(?<![\w.>])(?:/(?:{_FS_ROOTS})(?:/[^\s/'\"()<>,;:]+)+|[A-Za-z]:\\[^\s'\"()<>,;]+)",
            0,
            "<path>",
            ("/", "\\"),
        ),
        (r"\S*pytest-of-[^\s'\"]*", 0, "<path>", ("pytest-of-",)),
        (r"\b0x[0-9a-f]+\b", re.I, "<hex>", ("0x",)),
        (r"\b([A-Za-z][A-Za-z0-9]{0,15}[_-])([A-Za-z0-9]{8,})\b", 0, _mask_prefixed_id, ("_", "-")),
        (r"\b[0-9a-f]{8,}\b", re.I, _mask_hex, ()),
        (
            r"\b(?:\d+h)?(?:\d+m)?\d+(?:\.\d+)?(?:ms|µs|us|ns|s)\b"
            r"|\b\d+(?:\.\d+)?\s?(?:ms|sec|secs|seconds|minutes|mins)\b",
            0,
            "<dur>",
            ("s",),
        ),
        (
            r"(?<![\w'\"])(['\"])(?!<[a-z*]+>\1)[^\s'\"]{1,80}\1(?![\w'\"])",
            0,
            r"\1<str>\1",
            ("'", '"'),
        ),
        (
            r"(?P<ctx>(?P<strict>\b(?:status(?:[ _]code)?|code|http|errno|signal|"
            r"exit(?:ed)?(?: with)?(?: status| code)?|closed with)[\s:=\[]*)"
            r"|(?:\b(?:assert|expected|got|want|was|received|sent|to (?:be|equal))"
            r"|==|!=|Response \[)"
            r"[\s:=<\[]*)?(?P<num>(?<![\w.<])\d+(?:\.\d+)?)",
            re.I,
            _keep_code,
            (),
        ),
    )
)


@dataclass(frozen=True, slots=True)
class Explanation:
    """How fingerprint v2 read one failure, for ``results --explain`` and for the merge.

    ``line`` is the normalized line hashed (with ``error_type``, when it is a real type);
    ``source`` the line before masking (what titles and cluster lists show, never the
    placeholder message the rules looked past); ``rules`` which rules chose it (errorline.Rule).
    """

    fingerprint: str
    error_type: str
    line: str
    source: str
    rules: tuple[Rule, ...]


def fingerprint_v2(case: CaseResult, extra_masks: Iterable[str] = ()) -> str:
    """``v2-<12 hex>``: the cause of ``case`` (a broken CaseResult), as :func:`explain` reads it.

    Raises ValueError naming the pattern when a user mask is not a valid regex.
    """
    return explain(case, extra_masks).fingerprint


def explain(case: CaseResult, extra_masks: Iterable[str] = ()) -> Explanation:
    """The line that carries ``case``'s error (see deployloop.errorline), masked, and hashed.

    ``extra_masks`` are the user's regexes (config ``mask``), applied first; each match
    becomes ``<*>``. The failing test's own id, name and file become ``<test>``.
    """
    choice = choose(case)
    own = _own_names(case.id, case.name, case.file or "", case.classname)
    line = normalize_v2(choice.line, tuple(extra_masks), own)
    return Explanation(
        _digest_v2(choice.error_type, line), choice.error_type, line, choice.line, choice.rules
    )


@lru_cache(maxsize=8192)
def normalize_v2(line: str, extra_masks: tuple[str, ...] = (), own: tuple[str, ...] = ()) -> str:
    """``line`` with the user's masks, then the test's ``own`` names, then run noise masked.

    Cached: when staging is down, hundreds of tests fail with the very same line.
    """
    text = line
    for pattern in _compiled(extra_masks):
        text = pattern.sub("<*>", text)
    for name in own:
        text = text.replace(name, "<test>")
    lower = text.lower()
    for pattern, replacement, hints in _MASKS_V2:
        if not hints or any(hint in lower for hint in hints):
            text = pattern.sub(replacement, text)
    return " ".join(text.split())


def _own_names(test_id: str, name: str, file: str, classname: str) -> tuple[str, ...]:
    """The test's id, file and name as they may appear in its own message, longest first.

    A name is masked only when it cannot be an ordinary word of a message (``health``).
    """
    names = {test_id, file, file.rsplit("/", 1)[-1], classname.replace(".", "/") + ".py"}
    names.add(test_id.split("::", 1)[0])
    if len(name) >= 6 and re.search(r"[_\s.\[]|^Test[A-Z]", name):
        names.add(name)
    return tuple(sorted((n for n in names if len(n) >= 6), key=len, reverse=True))


def _digest_v2(error_type: str, line: str) -> str:
    digest = hashlib.sha256(f"{error_type}\n{line}".encode()).hexdigest()
    return f"{VERSION_V2}-{digest[:12]}"


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


def v1_fingerprint(case: CaseResult, masks: Iterable[str] = ()) -> str:
    """``v1-<12 hex>``: how deployloop keyed ``case`` before v2, exactly, for migration only.

    Issues filed before v2 carry this print in their marker, and the state's cluster records
    are keyed by it; triage recomputes it for the current failures to find them. Clusters are
    keyed by ``clustering.key_cases``. ``masks`` as for :func:`normalize`; a bad one raises
    ValueError.
    """
    return fingerprint(case.error_type or case.outcome.value, case.message, masks)
