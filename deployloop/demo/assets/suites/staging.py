"""Tiny client helpers the demo suites share: the staging URLs come from the environment."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

BASE_URL = os.environ["STAGING_URL"]
WS_URL = os.environ["STAGING_WS_URL"]
AGENT_EVENTS = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
]


def get(path: str) -> tuple[int, Any]:
    with urllib.request.urlopen(BASE_URL + path, timeout=5) as response:
        return response.status, json.loads(response.read())


def post(path: str, payload: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        BASE_URL + path,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


def run_agent(user_request: str) -> list[str]:
    """Start an agent over the WebSocket and collect event names until it completes."""
    from websockets.sync.client import connect

    seen: list[str] = []
    with connect(WS_URL, open_timeout=5, close_timeout=1) as ws:
        ws.send(json.dumps({"type": "start_agent", "payload": {"user_request": user_request}}))
        while "agent_completed" not in seen:
            seen.append(json.loads(ws.recv(timeout=5))["type"])
    return seen
