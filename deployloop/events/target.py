"""Events of the target: its health, its versions, and the redeploy between iterations.

Part of ``kinds.Event``; see ``kinds`` for how sinks read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from deployloop.events.base import EventBase


# the target: its health, its versions, the redeploy between iterations ---------------------------
@dataclass(frozen=True, slots=True)
class Health(EventBase):
    """A health check before the tests (reported when it fails)."""

    kind = "health"
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Mixed(EventBase):
    """Staging answered two versions around a run. ``suite`` set: that suite saw both (read
    before and after it); ``rerun`` says it runs again on ``to_version`` (once per iteration),
    else its result stands as "staging serves mixed versions". ``suite`` empty: the iteration
    saw two versions and, ``rerun``, restarts on ``to_version`` (once)."""

    kind = "mixed"
    from_version: str
    to_version: str
    suite: str = ""
    rerun: bool = True


@dataclass(frozen=True, slots=True)
class RolloutProgress(EventBase):
    """While settling on ``version``, a read answered the old one: the rollout is not done.

    ``seen`` of ``needed`` consecutive reads had answered ``version``; the count restarts."""

    kind = "rollout"
    version: str
    old_version: str
    seen: int
    needed: int


@dataclass(frozen=True, slots=True)
class Trigger(EventBase):
    """The redeploy trigger command ran."""

    kind = "trigger"
    command: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Waiting(EventBase):
    """Waiting for a redeploy (or the interval) before the next iteration."""

    kind = "waiting"
    tested: str | None  # the version just tested
    reason: str


@dataclass(frozen=True, slots=True)
class Deploying(EventBase):
    """Staging stopped answering its version: a deploy under way."""

    kind = "deploying"
    detail: str


@dataclass(frozen=True, slots=True)
class VersionSeen(EventBase):
    """A new version appeared ``after_s`` seconds into the wait."""

    kind = "version_seen"
    version: str
    after_s: float


@dataclass(frozen=True, slots=True)
class Settled(EventBase):
    """The new version stayed healthy ``seconds`` long: retesting."""

    kind = "settled"
    version: str
    seconds: float  # how long it was healthy


@dataclass(frozen=True, slots=True)
class RedeployTimeout(EventBase):
    """No new version came within ``[redeploy] timeout``; ``then``: retest or stop."""

    kind = "redeploy_timeout"
    tested: str | None  # the version just tested
    timeout_s: float
    then: str  # [redeploy] on_timeout


TargetEvent: TypeAlias = (
    Health
    | Mixed
    | Trigger
    | Waiting
    | RedeployTimeout
    | Deploying
    | VersionSeen
    | Settled
    | RolloutProgress
)
