"""Logical tests: the records of one test id folded into one result, and the one pass rate.

A JUnit file can hold several ``<testcase>`` records for one test: pytest-rerunfailures (16.6.1
and later) writes one per attempt, the failed attempts as *empty* records and only the last one
with its failure; pytest writes a test that fails and then errors in teardown as two records
(pytest-dev/pytest#9909); pytest 9 subtests put several ``<failure>`` elements in one record.
A test is one test however many records it left: :func:`fold` merges them, :func:`tally`
counts logical tests in pytest's categories, and :func:`pass_rate` is the one rate every
gate, summary and report shows (issue 14 item 6, issue 15 items 1 and 11).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from deployloop.models import CaseResult, Outcome

MAX_DETAILS = 65536
PASSING = (Outcome.PASSED, Outcome.XPASSED)


def fold(records: Iterable[CaseResult]) -> list[CaseResult]:
    """One CaseResult per test id, in the order ids first appear; folding twice changes nothing.

    The folded outcome follows the records in order: a test whose last (non-skipped) record
    passed after a broken one passed and is ``flaky``; a test with a broken record that never
    passed afterwards is failed (error when no record failed); several passing records of one
    pytest node id (rerunfailures' empty attempt records, which exist only because an attempt
    failed) pass and are ``flaky``. Passing records of other runners that share an id are
    distinct tests that share a name (jest-junit names tests of two describe blocks alike) and
    stay apart. Every failure text is kept once.
    """
    first: dict[str, CaseResult] = {}
    repeats: dict[str, list[CaseResult]] = {}
    for record in records:
        seen = first.setdefault(record.id, record)
        if seen is not record:
            repeats.setdefault(record.id, [seen]).append(record)
    out: list[CaseResult] = []
    for key, case in first.items():
        group = repeats.get(key)
        if group is None:
            out.append(case)
        elif _attempts(group):
            out.append(merge(group))
        else:
            out.extend(group)
    return out


def _attempts(group: Sequence[CaseResult]) -> bool:
    """Are these records of one id attempts (or phases) of one test? See :func:`fold`."""
    return ".py::" in group[0].id or any(r.outcome is not Outcome.PASSED for r in group)


def merge(records: Sequence[CaseResult]) -> CaseResult:
    """One test from its records (attempts, teardown records), oldest first; see :func:`fold`."""
    ran = [r for r in records if r.outcome not in (Outcome.SKIPPED, Outcome.XFAILED)]
    broken = [r for r in records if r.broken]
    last = ran[-1] if ran else records[-1]
    if broken and last.outcome not in PASSING:
        failed = any(r.outcome is Outcome.FAILED for r in broken)
        outcome, flaky = (Outcome.FAILED if failed else Outcome.ERROR), False
    else:
        outcome = last.outcome
        flaky = bool(broken) or len(ran) > 1 or any(r.flaky for r in records)
    lead = broken[0] if broken else last
    times = [r.duration_s for r in records if r.duration_s is not None]
    return replace(
        lead,
        outcome=outcome,
        duration_s=max(times) if times else None,
        details=join_texts([(r.message, r.details) for r in broken or [lead]]),
        flaky=flaky,
        records=sum(r.records for r in records),
    )


def join_texts(texts: Iterable[tuple[str, str]]) -> str:
    """Failure texts as one ``details``: each distinct message once, headed when there are several.

    Attempts repeat the same failure (with other object addresses in the text), so a message
    already shown is not shown again; the result is cut at MAX_DETAILS characters.
    """
    shown: dict[str, str] = {}
    for message, details in texts:
        if details or message:
            shown.setdefault(message, details or message)
    if len(shown) <= 1:
        return next(iter(shown.values()), "")[:MAX_DETAILS]
    parts = [
        f"--- {k} of {len(shown)}: {message or '(no message)'} ---\n{details}"
        for k, (message, details) in enumerate(shown.items(), 1)
    ]
    return "\n\n".join(parts)[:MAX_DETAILS]


@dataclass(frozen=True, slots=True)
class Tally:
    """Logical tests per pytest category, and the records they came from.

    ``passed`` includes flaky passes (``flaky`` of them) and broken tests forgiven because
    deployloop's own rerun passed them (``forgiven`` of them, also counted in ``flaky``).
    """

    records: int = 0  # <testcase> records read (SPEC's ``tests``: a rerun counts twice)
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0
    flaky: int = 0
    forgiven: int = 0

    @property
    def tests(self) -> int:
        """Logical tests: what ``expect_tests`` and the pass rate count."""
        return self.passed + self.failed + self.errors + self.skipped + self.xfailed + self.xpassed

    @property
    def judged(self) -> int:
        """Tests that say something about the target: skips and xfails are not judged."""
        return self.passed + self.failed + self.errors + self.xpassed

    def __add__(self, other: Tally) -> Tally:
        """Both sets of tests counted together (a tally is a sum over tests)."""
        return Tally(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))

    def passing(self, flaky_passes: bool = True) -> int:
        """Judged tests that count as passed; ``flaky_passes=False`` holds flaky ones against."""
        return self.passed + self.xpassed - (0 if flaky_passes else self.flaky)

    def rate(self, flaky_passes: bool = True) -> float:
        """:func:`pass_rate` of these tests."""
        return pass_rate(self.passing(flaky_passes), self.judged)


def describe_counts(counts: Mapping[str, int]) -> str:
    """``2 passed, 1 failed, 1 xfailed``: the nonzero ones of ``counts`` (``Outcome`` value →
    tests) in pytest's order and words (its summary line's); ``no tests`` when all are zero."""
    parts = [f"{counts[o.value]} {o.value}" for o in Outcome if counts.get(o.value)]
    return ", ".join(parts) or "no tests"


def pass_rate(passing: int, judged: int) -> float:
    """passing / judged, a fraction in 0..1; 0.0 when nothing was judged.

    Nothing judged is 0.0, not 1.0: a run that ran nothing must never look green.
    """
    return passing / judged if judged else 0.0


def tally(cases: Iterable[CaseResult], forgiven: Collection[str] = ()) -> Tally:
    """Count logical tests (as ``fold`` and the reader give them) by category.

    A broken test whose id is in ``forgiven`` (it passed when deployloop reran it) counts
    as a flaky pass.
    """
    counts = dict.fromkeys(Outcome, 0)
    records = flaky = pardoned = 0
    for case in cases:
        records += case.records
        outcome = case.outcome
        if case.broken and case.id in forgiven:
            outcome, pardoned = Outcome.PASSED, pardoned + 1
        counts[outcome] += 1
        flaky += outcome is Outcome.PASSED and case.flaky
    return Tally(
        records=records,
        passed=counts[Outcome.PASSED],
        failed=counts[Outcome.FAILED],
        errors=counts[Outcome.ERROR],
        skipped=counts[Outcome.SKIPPED],
        xfailed=counts[Outcome.XFAILED],
        xpassed=counts[Outcome.XPASSED],
        flaky=flaky + pardoned,
        forgiven=pardoned,
    )


def hollow(cases: Sequence[CaseResult]) -> str | None:
    """Why a run's tests prove nothing (none at all, or every one skipped), else None: a
    harness error, never a pass."""
    if not cases:
        return "zero tests collected"
    if all(c.outcome is Outcome.SKIPPED for c in cases):
        return f"all {len(cases)} tests skipped" if len(cases) > 1 else "its only test skipped"
    return None
