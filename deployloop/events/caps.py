"""What one event may weigh in the logs and the state, whatever the suites produced.

100,000 distinct failures in one phase must not write 12 MB of session.md, 15 MB of
events.jsonl and 32 MB of story per iteration: a PhaseEnd keeps its MAX_CLUSTERS largest
clusters in full (MAX_TESTS test ids each) and counts the rest in one trailing entry. So a
PhaseEnd stays within about MAX_CLUSTERS × MAX_TESTS × 300 bytes (~300 KB) per sink.
"""

from __future__ import annotations

import dataclasses

from deployloop.events.kinds import Event, FailureCluster, PhaseEnd

MAX_CLUSTERS = 50
MAX_TESTS = 20
OTHERS = "(others)"  # the fingerprint of the entry that counts the clusters left out


def capped(event: Event) -> Event:
    """``event`` within the caps above; every kind but PhaseEnd is returned as it is."""
    if not isinstance(event, PhaseEnd) or not _over(event.clusters):
        return event
    ranked = sorted(event.clusters, key=lambda c: c.count, reverse=True)
    kept = [dataclasses.replace(c, tests=c.tests[:MAX_TESTS]) for c in ranked[:MAX_CLUSTERS]]
    rest = ranked[MAX_CLUSTERS:]
    if rest:
        kept.append(others(len(rest), sum(c.count for c in rest)))
    return dataclasses.replace(event, clusters=tuple(kept))


def others(clusters: int, tests: int) -> FailureCluster:
    """The trailing entry counting ``clusters`` clusters of ``tests`` failures left out."""
    message = f"{clusters} more clusters ({tests} tests), counted, not listed"
    return FailureCluster(OTHERS, tests, message, ())


def _over(clusters: tuple[FailureCluster, ...]) -> bool:
    return len(clusters) > MAX_CLUSTERS or any(len(c.tests) > MAX_TESTS for c in clusters)
