"""The simulator's agent pipeline: the events one run sends over the WebSocket, and the
knobs (``Behaviour``) that make it misbehave the ways the probes must report.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

from websockets.asyncio.server import ServerConnection

AGENT_EVENTS = (
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
)
CRASH_REASON = "agent pipeline crashed"


@dataclasses.dataclass
class Behaviour:
    """Knobs that make the agent pipeline misbehave in one specific way; change them any time."""

    event_delay_s: float = 0.0  # pause before each agent event: a slow pipeline
    omit_event: str | None = None  # this event is never sent
    non_json: bool = False  # a plain-text frame 'hello' goes out before the events
    reject_status: int | None = None  # the WebSocket handshake is refused with this HTTP status


async def pause(connection: ServerConnection, seconds: float) -> bool:
    """Wait between events; False when the connection closed meanwhile, so shutdown stays fast."""
    try:
        await asyncio.wait_for(connection.wait_closed(), seconds)
    except TimeoutError:
        return True
    return False


def agent_events(run_id: str, request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The five events of one agent run, in order, echoing the request's ``user_request``."""
    payload = request.get("payload")
    ask = str(payload.get("user_request", "")) if isinstance(payload, dict) else ""
    return [
        {"type": "agent_started", "run_id": run_id, "agent": "triage"},
        {"type": "agent_thinking", "run_id": run_id, "thought": f"planning: {ask}"},
        {"type": "tool_executing", "run_id": run_id, "tool": "search", "args": {"q": ask}},
        {"type": "tool_completed", "run_id": run_id, "tool": "search", "result": {"hits": 3}},
        {"type": "agent_completed", "run_id": run_id, "result": f"done: {ask}"},
    ]
