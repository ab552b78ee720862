"""Agent pipeline: every run must emit all five WebSocket events, in order."""

import pytest
from staging import AGENT_EVENTS, run_agent


@pytest.mark.parametrize(
    "ask", ["summarise my inbox", "book a meeting", "find the invoice", "draft a reply"]
)
def test_agent_emits_all_events(ask):
    assert run_agent(ask) == AGENT_EVENTS
