"""Waiting for the redeploy, on a fake clock: deploying is not failing, settle means settle."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TypeVar

from deployloop.config import RedeployConfig
from deployloop.events import Event, Reporter, Settled, VersionSeen
from deployloop.models import ProbeResult
from deployloop.testing import FakeClock
from deployloop.wait import IntervalWaiter, RedeployWaiter, WaitEnd

T = TypeVar("T")


def scripted(values: list[T]) -> Iterator[T]:
    yield from values
    while True:
        yield values[-1]


def waiter(
    versions: list[str | None], health: list[bool] | None = None, **config: object
) -> tuple[RedeployWaiter, FakeClock, list[Event]]:
    clock, events = FakeClock(wall=0.0, stop=threading.Event()), list[Event]()
    seq = scripted(versions)
    healthy = scripted(health or [True])
    settings = RedeployConfig.model_validate({"poll": 1, "settle": 3, "timeout": 60, **config})
    check = lambda: ProbeResult("health", "http", bool(next(healthy)), "")  # noqa: E731
    w = RedeployWaiter(settings, lambda: next(seq), check, clock, Reporter(events.append))
    return w, clock, events


def test_new_version_then_settle() -> None:
    """A new version is reported with the time it took, then settles after `settle` healthy s."""
    w, _, events = waiter(["v1", "v1", "v2"])
    result = w.wait("v1")
    assert (result.outcome, result.version) == (WaitEnd.CHANGED, "v2")
    kinds = [e.kind for e in events]
    assert kinds == ["waiting", "version_seen", "settled"]
    seen, settled = events[1], events[2]
    assert isinstance(seen, VersionSeen) and 1.5 <= seen.after_s <= 2.0
    assert isinstance(settled, Settled) and settled.seconds >= 3


def test_deploying_is_waited_through() -> None:
    """Staging not answering mid-deploy is 'deploying' (said once per outage), not a failure."""
    w, _, events = waiter(["v1", None, None, "v1", None, "v2"])
    assert w.wait("v1").outcome is WaitEnd.CHANGED
    assert [e.kind for e in events].count("deploying") == 2


def test_unhealthy_restarts_settle() -> None:
    """A health failure during settling restarts the settle period."""
    w, clock, _ = waiter(["v2"], health=[True, False, True, True, True, True, True, True])
    assert w.wait("v1").outcome is WaitEnd.CHANGED
    assert clock.now >= 3 + 0.75 * 2


def test_timeout_without_new_version() -> None:
    """No new version within the timeout ends the wait as 'timeout'."""
    w, clock, _ = waiter(["v1"], timeout=10)
    assert w.wait("v1").outcome is WaitEnd.TIMEOUT
    assert 10 <= clock.now <= 11


def test_deadline_ends_wait() -> None:
    """The session deadline ends the wait; nothing starts after it."""
    w, clock, _ = waiter(["v1"])
    w.deadline = 5.0
    assert w.wait("v1").outcome is WaitEnd.DEADLINE
    assert clock.now == 5.0


def test_stop_interrupts_wait() -> None:
    """A stop request ends the wait at once."""
    w, clock, _ = waiter(["v1"])
    assert clock.stop is not None
    clock.stop.set()
    assert w.wait("v1").outcome is WaitEnd.INTERRUPTED
    assert clock.now <= 1.0


def test_interval_waiter_ends_before_deadline() -> None:
    """Without [redeploy], an interval that would cross the deadline ends the session now."""
    clock, events = FakeClock(wall=0.0), list[Event]()
    w = IntervalWaiter(60, lambda: "v1", clock, Reporter(events.append), deadline=30)
    assert w.wait("v1").outcome is WaitEnd.DEADLINE
    assert clock.now == 0
