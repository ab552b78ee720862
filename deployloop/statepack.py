"""Suite runs packed for ``state.db``: a night of 64k-test iterations stays a few MB each.

A run's own fields stay JSON text (``status`` and ``last_wall_s`` read them with SQL); its cases
are one zlib-compressed JSON blob in which the common case, a plain pass (no message, no
details, not flaky, one record), is stored column-wise as ids, names, classnames, durations,
files and lines, and every other case (failures, skips, flaky passes) in full with its position,
so the run reads back exactly as it was written.
"""

from __future__ import annotations

import codecs
import json
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

from deployloop.models import CaseResult, Outcome, RunEnd, SuiteRun

# The columns of a plain pass, in CaseResult's field names.
PLAIN = ("id", "name", "classname", "duration_s", "file", "line")
_LEVEL = 6  # zlib's default: 64k passes pack to well under 1 MB in ~0.1 s


def is_plain(case: CaseResult) -> bool:
    """A pass with nothing to tell beyond its id and duration."""
    return (
        case.outcome is Outcome.PASSED
        and not (case.message or case.error_type or case.details or case.flaky)
        and case.records == 1
    )


def run_fields(run: SuiteRun) -> str:
    """The run without its cases, as JSON text."""
    fields = {name: getattr(run, name) for name in SuiteRun.__dataclass_fields__}
    del fields["cases"]
    return json.dumps(fields)


def pack_cases(cases: tuple[CaseResult, ...]) -> bytes:
    """The cases as one compressed blob (the layout is in the module docstring).

    The full entries are encoded and compressed one at a time: 100,000 failures never sit in
    memory as one JSON text.
    """
    columns: dict[str, list[Any]] = {name: [] for name in PLAIN}
    for case in cases:
        if is_plain(case):
            for name in PLAIN:
                columns[name].append(getattr(case, name))
    packer = zlib.compressobj(_LEVEL)
    parts = [packer.compress(b'{"plain":' + _json(columns) + b',"full":[')]
    separator = b""
    for position, case in enumerate(cases):
        if not is_plain(case):
            entry = {name: getattr(case, name) for name in CaseResult.__dataclass_fields__}
            parts.append(packer.compress(separator + _json({**entry, "at": position})))
            separator = b","
    parts.append(packer.compress(b"]}") + packer.flush())
    return b"".join(parts)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


_HEAD = '{"plain":'  # the layout pack_cases writes (and wrote since runs were packed)
_FULL = ',"full":['
_DECODER = json.JSONDecoder()


def unpack_cases(blob: bytes) -> tuple[CaseResult, ...]:
    """The cases ``pack_cases`` packed, in their original order (:func:`iter_cases`)."""
    return tuple(iter_cases(blob))


def iter_cases(blob: bytes) -> Iterator[CaseResult]:
    """The cases ``pack_cases`` packed, one at a time in their original order.

    The blob is decompressed and decoded as it is read (:class:`_Text`), and each full entry
    is decoded as its position comes (they are packed in position order): a reader that counts
    (the report) never holds 100,000 failures, nor their text, at once. Raises ValueError (or
    zlib.error) for a blob it did not write: the head before the first case, the rest as met.
    """
    text = _Text(blob)
    if not text.take(_HEAD):
        raise ValueError("not a packed run")
    columns = text.value()
    if not text.take(_FULL):
        raise ValueError("not a packed run")
    return _merged(columns, _entries(text))


class _Text:
    """A packed blob's JSON text, decompressed and decoded a chunk at a time: what is held is
    the value being read and one chunk, never the whole text."""

    def __init__(self, blob: bytes) -> None:
        self._source = zlib.decompressobj()
        self._blob = memoryview(blob)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._at = 0

    def _more(self, wanted: int) -> bool:
        """At least ``wanted`` more characters read, or all there are; False when none were."""
        pieces = [self._text[self._at :]]
        self._at = got = 0
        while got < wanted and self._blob:
            data, self._blob = self._blob[:_CHUNK], self._blob[_CHUNK:]
            piece = self._utf8.decode(self._source.decompress(data))
            if not self._blob:
                piece += self._utf8.decode(self._source.flush(), final=True)
            pieces.append(piece)
            got += len(piece)
        self._text = "".join(pieces)
        return got > 0

    def take(self, expected: str) -> bool:
        """Consume ``expected`` when the text goes on with it."""
        while len(self._text) - self._at < len(expected) and self._more(len(expected)):
            pass
        found = self._text.startswith(expected, self._at)
        self._at += len(expected) if found else 0
        return found

    def value(self) -> Any:
        """The JSON value that starts here. A value cut by the chunk's end is read again with
        as much more text as there is already (so a large one costs a few reads, not one per
        chunk)."""
        while True:
            try:
                found, self._at = _DECODER.raw_decode(self._text, self._at)
                return found
            except json.JSONDecodeError:
                if not self._more(max(_CHUNK, len(self._text) - self._at)):
                    raise ValueError("not a packed run") from None


_CHUNK = 1 << 14  # compressed bytes read at a time


def _merged(
    columns: Mapping[str, list[Any]], full: Iterator[dict[str, Any]]
) -> Iterator[CaseResult]:
    """The plain passes and the full entries, merged back by the full entries' positions."""
    entry = next(full, None)
    position = 0
    for i, n, c, d, f, line in zip(*(columns[name] for name in PLAIN), strict=True):
        while entry is not None and entry["at"] == position:
            yield _case(entry)
            entry, position = next(full, None), position + 1
        yield CaseResult(
            id=i, name=n, classname=c, outcome=Outcome.PASSED, duration_s=d, file=f, line=line
        )
        position += 1
    while entry is not None:
        yield _case(entry)
        entry = next(full, None)


def _entries(text: _Text) -> Iterator[dict[str, Any]]:
    """The JSON objects of the array being read (after its ``[``), one by one."""
    while not text.take("]"):
        yield text.value()
        text.take(",")


def _case(entry: Mapping[str, Any]) -> CaseResult:
    fields = {name: value for name, value in entry.items() if name != "at"}
    return CaseResult(**{**fields, "outcome": Outcome(entry["outcome"])})


def run_from_parts(fields: Mapping[str, Any], cases: tuple[CaseResult, ...]) -> SuiteRun:
    """A stored run from its fields and cases; rows written before ``ended`` existed get it
    from their wording. JSON gives lists: ``repairs`` is a tuple again."""
    ended = fields.get("ended")
    run_end = legacy_end(fields.get("harness_error")) if ended is None else RunEnd(ended)
    repairs = tuple(fields.get("repairs", ()))
    return SuiteRun(**{**fields, "cases": cases, "ended": run_end, "repairs": repairs})


# How runner.how_it_ended worded each end before runs stored it; anything else was the runner's.
_LEGACY_WORDING = (
    ("interrupted", RunEnd.INTERRUPTED),
    ("stopped at the session deadline", RunEnd.DEADLINE),
    ("timed out after", RunEnd.TIMEOUT),
    ("cannot start", RunEnd.FAILED_TO_START),
    ("runner killed by", RunEnd.KILLED_BY_SIGNAL),
)


def legacy_end(harness_error: str | None) -> RunEnd:
    """The RunEnd an old row's harness_error wording stands for."""
    if harness_error is None:
        return RunEnd.COMPLETED
    found = (end for start, end in _LEGACY_WORDING if harness_error.startswith(start))
    return next(found, RunEnd.RUNNER_ERROR)
