"""The staging simulator: its endpoints, deploys, bug mode, knobs, shutdown, and as a process."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from deployloop.config import TargetConfig
from deployloop.probes import health_probe
from deployloop.simagent import AGENT_EVENTS
from deployloop.simulator import Simulator
from tests.helpers import wait_for


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


@pytest.fixture
def client(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, trust_env=False, timeout=5) as http:
        yield http


def agent_run(url: str) -> list[Any]:
    """Every frame of one start_agent run (parsed JSON), then how the server ended it."""

    async def converse() -> list[Any]:
        frames: list[Any] = []
        async with connect(url, proxy=None) as ws:
            await ws.send(json.dumps({"type": "start_agent", "payload": {"user_request": "hi"}}))
            try:
                while len(frames) < 6:
                    frame = await asyncio.wait_for(ws.recv(), 2)
                    frames.append(json.loads(frame))
                    if frames[-1]["type"] == "agent_completed":
                        break
            except Exception as exc:
                frames.append(exc)
        return frames

    return asyncio.run(converse())


def test_health_and_version_answer_with_the_revision(sim: Simulator, client: httpx.Client) -> None:
    """/health is 200 with the version; /version carries it in JSON and the x-revision header."""
    health = client.get("/health")
    version = client.get("/version")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "version": "rev-0001"}
    assert version.json() == {"commit": "rev-0001", "revision": "rev-0001"}
    assert version.headers["x-revision"] == "rev-0001" == sim.version
    assert client.get("/version.txt").text == "rev-0001\n"


def test_agent_run_sends_all_five_events_in_order(sim: Simulator) -> None:
    """A start_agent message yields the five agent events, in the documented order."""
    frames = agent_run(sim.ws_url)
    assert [f["type"] for f in frames] == list(AGENT_EVENTS)


def test_bug_mode_closes_with_1011_after_the_first_event(sim: Simulator) -> None:
    """In bug mode only agent_started arrives, then a 1011 close saying the pipeline crashed."""
    sim.set_bug(True)
    frames = agent_run(sim.ws_url)
    assert frames[0] == {"type": "agent_started", "run_id": "run-0001", "agent": "triage"}
    closed = frames[1]
    assert getattr(getattr(closed, "rcvd", None), "code", None) == 1011
    assert "agent pipeline crashed" in str(closed)


def test_deploy_is_down_then_bumps_the_version_and_fixes(
    sim: Simulator, client: httpx.Client
) -> None:
    """A deploy answers 503 while it lasts, then serves rev-0002 with the bug fixed."""
    sim.set_bug(True)
    assert sim.deploy(fix=True, delay_s=0.4) == "rev-0002"
    assert client.get("/health").status_code == 503
    assert client.get("/version").status_code == 503
    wait_for(lambda: client.get("/health").status_code == 200, timeout=5)
    assert sim.version == "rev-0002"
    assert not sim.bug


def test_deploy_without_fix_keeps_the_bug(sim: Simulator) -> None:
    """fix=False deploys a new revision that still carries the bug."""
    sim.set_bug(True)
    sim.deploy(fix=False, delay_s=0)
    assert sim.version == "rev-0002"
    assert sim.bug


def test_control_endpoints_take_json_bodies(sim: Simulator, client: httpx.Client) -> None:
    """POST /_control/bug and /_control/deploy read their JSON body; /_control/state reports."""
    assert client.post("/_control/bug", json={"on": True}).json()["bug"] is True
    deploy = client.post("/_control/deploy", json={"fix": True, "delay_s": 0})
    assert deploy.status_code == 202
    assert deploy.json()["upcoming"] == "rev-0002"
    state = client.get("/_control/state").json()
    assert state["version"] == "rev-0002"
    assert state["bug"] is False
    assert state["deploys"] == 1
    knobs = client.post("/_control/behaviour", json={"omit_event": "tool_completed"})
    assert knobs.json()["behaviour"]["omit_event"] == "tool_completed"
    assert client.post("/_control/behaviour", json={"bogus": 1}).status_code == 400


def test_rest_routes_are_deterministic(client: httpx.Client) -> None:
    """Users, orders (echoed with increasing ids) and agents answer the same way every run."""
    assert client.get("/api/users/7").json() == {
        "id": 7,
        "name": "user-7",
        "email": "u7@example.test",
    }
    assert client.get("/api/users/x").status_code == 404
    first = client.post("/api/orders", json={"sku": "A-1", "qty": 2})
    second = client.post("/api/orders", json={"sku": "B-2"})
    assert first.status_code == 201
    assert first.json() == {"sku": "A-1", "qty": 2, "id": "ord-0001"}
    assert second.json()["id"] == "ord-0002"
    assert client.post("/api/orders", content=b"not json").status_code == 400
    assert client.get("/api/agents").json()["agents"][0]["name"] == "triage"
    assert client.get("/nowhere").status_code == 404


def test_token_guards_api_routes() -> None:
    """With a token, /api needs 'Authorization: Bearer TOKEN'; /health stays open."""
    with Simulator(token="s3cret") as sim, httpx.Client(base_url=sim.base_url) as http:
        assert http.get("/api/agents").status_code == 403
        assert http.get("/api/agents", headers={"Authorization": "Bearer s3cret"}).is_success
        assert http.get("/health").status_code == 200


def test_stop_is_prompt_with_a_slow_run_in_flight() -> None:
    """stop() returns quickly even while a slow agent run waits between events."""
    sim = Simulator(event_delay_s=30)
    sim.start()
    started = threading.Event()

    async def linger() -> None:
        async with connect(sim.ws_url, proxy=None) as ws:
            await ws.send(json.dumps({"type": "start_agent"}))
            started.set()
            try:
                await ws.recv()
            except Exception:
                return

    client = threading.Thread(target=lambda: asyncio.run(linger()))
    client.start()
    assert started.wait(5)
    begun = time.monotonic()
    sim.stop()
    client.join(5)
    assert time.monotonic() - begun < 3
    assert not client.is_alive()


def test_start_fails_loudly_on_a_busy_port() -> None:
    """A port already taken is an OSError from start(), not a silent dead thread."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="address already in use"):
            Simulator(port=taken.getsockname()[1]).start()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_process_announces_serves_and_exits_on_signal(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """As a process it writes the ready file, answers probes and exits 0 promptly on a signal."""
    ready = tmp_path / "ready.json"
    child = subprocess.Popen(
        [sys.executable, "-m", "deployloop.simulator", "--ready-file", str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        urls = json.loads(wait_for(lambda: ready.is_file() and ready.read_text(), timeout=20))
        target = TargetConfig.model_validate({"base_url": urls["base_url"], "health": "/health"})
        assert health_probe(target).ok
        assert urls["ws_url"] == urls["base_url"].replace("http", "ws") + "/ws"
        child.send_signal(stop_signal)
        begun = time.monotonic()
        out, err = child.communicate(timeout=10)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0, err
    assert time.monotonic() - begun < 5
    assert json.loads(out.splitlines()[0]) == urls
