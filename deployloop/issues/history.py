"""The version story of a cause: the versions it failed and passed on, its last good version,
when it first failed. Triage carries it from record to record; issue text tells it.
"""

from __future__ import annotations

from dataclasses import replace

from deployloop.issues.records import ClusterRecord, Failing, TriageContext


def with_versions(
    prev: ClusterRecord | None, record: ClusterRecord, failing: Failing, ctx: TriageContext
) -> ClusterRecord:
    """The version story carried on: this version among those failing, the last good one.

    A new cause's last good is the iteration before's version when its tests passed there;
    after a verified fix, the version it last passed on."""
    if prev is None:
        passed = any(t in ctx.passed_before for t in failing.tests)
        good = ctx.previous_version if passed and ctx.previous_version != ctx.version else None
        since = ctx.now.isoformat(timespec="seconds")
        return replace(record, failing_on=added((), ctx.version), last_good=good,
                       first_failed_at=since)  # fmt: skip
    good = prev.passing_on[-1] if prev.status == "fixed" and prev.passing_on else prev.last_good
    return replace(
        record,
        failing_on=added(prev.failing_on, ctx.version),
        passing_on=prev.passing_on,
        last_good=good,
        first_failed_at=prev.first_failed_at,
        regressed_in=prev.regressed_in,
    )


def added(versions: tuple[str, ...], version: str | None) -> tuple[str, ...]:
    """``versions`` with ``version`` at the end, unless unknown (None) or already there."""
    return versions if version is None or version in versions else (*versions, version)
