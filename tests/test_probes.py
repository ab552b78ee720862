"""Live probes against the real simulator: what a WebSocket or HTTP check reports, and why."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deployloop.config import Config, ProbeConfig, TargetConfig
from deployloop.probes import (
    health_probe,
    http_probe,
    preflight_checks,
    run_probe,
    websocket_probe,
)
from deployloop.simagent import AGENT_EVENTS
from deployloop.simulator import Simulator
from deployloop.summary import percentile
from tests.helpers import wait_for

START = '{"type": "start_agent", "payload": {"user_request": "ping"}}'


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def target_of(sim: Simulator, **extra: Any) -> TargetConfig:
    return TargetConfig.model_validate(
        {"base_url": sim.base_url, "websocket": sim.ws_url, "health": "/health", **extra}
    )


def make_target(**fields: Any) -> TargetConfig:
    return TargetConfig.model_validate(fields)


def make_probe(**fields: Any) -> ProbeConfig:
    return ProbeConfig.model_validate(fields)


def agents_probe(**extra: Any) -> ProbeConfig:
    fields = {"kind": "websocket", "send": START, "expect_events": list(AGENT_EVENTS)}
    return ProbeConfig.model_validate({"timeout": "5s", **fields, **extra})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_all_five_events_pass(sim: Simulator) -> None:
    """All five agent events arriving is ok, with time to first event and to completion."""
    result = websocket_probe(target_of(sim), agents_probe())
    assert result.ok, result.detail
    assert result.detail.startswith("5/5 events")
    assert "first event after" in result.detail
    assert "complete after" in result.detail
    assert result.data["events"] == list(AGENT_EVENTS)
    assert len(result.latencies_s) == 1
    assert result.latencies_s[0] == result.data["completed_s"]


def test_a_missing_event_is_named(sim: Simulator) -> None:
    """An event that never comes fails the probe at its timeout, naming the event."""
    sim.behaviour.omit_event = "tool_completed"
    result = websocket_probe(target_of(sim), agents_probe(timeout="0.5s"))
    assert not result.ok
    assert "missing tool_completed (4/5 events)" in result.detail
    assert "timed out after 0.5 s" in result.detail
    assert result.latencies_s == ()


def test_crash_close_is_named_with_the_last_event(sim: Simulator) -> None:
    """A 1011 close after the first event is reported by code, name, last event and reason."""
    sim.set_bug(True)
    result = websocket_probe(target_of(sim), agents_probe())
    assert not result.ok
    assert "server closed with 1011 (internal error) after agent_started" in result.detail
    assert "agent pipeline crashed" in result.detail
    assert f"missing {', '.join(AGENT_EVENTS[1:])}" in result.detail
    assert result.data["close_code"] == 1011


def test_too_slow_names_what_did_not_arrive(sim: Simulator) -> None:
    """Events slower than the timeout fail the probe and name every event still missing."""
    sim.behaviour.event_delay_s = 0.3
    began = time.monotonic()
    result = websocket_probe(target_of(sim), agents_probe(timeout="0.5s"))
    assert time.monotonic() - began < 2
    assert not result.ok
    # agent_started may or may not make it on a loaded machine; the later four never can.
    assert ", ".join(AGENT_EVENTS[1:]) in result.detail
    assert "timed out after 0.5 s" in result.detail
    assert result.data["missing"][-4:] == list(AGENT_EVENTS[1:])


def test_handshake_rejected_without_the_token() -> None:
    """A wrong token is 'handshake rejected: HTTP 403'; the header value never shows."""
    with Simulator(token="s3cret-value") as sim:
        wrong = websocket_probe(
            target_of(sim, headers={"Authorization": "Bearer nope-xyz"}), agents_probe()
        )
        right = websocket_probe(
            target_of(sim, headers={"Authorization": "Bearer s3cret-value"}), agents_probe()
        )
    assert not wrong.ok
    assert wrong.detail == "handshake rejected: HTTP 403"
    assert right.ok, right.detail
    for result in (wrong, right):
        assert "s3cret" not in repr(result)
        assert "nope-xyz" not in repr(result)


def test_handshake_rejected_with_another_status(sim: Simulator) -> None:
    """A refused upgrade reports the HTTP status it was refused with."""
    sim.behaviour.reject_status = 404
    assert websocket_probe(target_of(sim), agents_probe()).detail == "handshake rejected: HTTP 404"


def test_non_json_frames_fail_the_probe(sim: Simulator) -> None:
    """A frame that is not JSON fails the probe and is quoted, even if every event came."""
    sim.behaviour.non_json = True
    result = websocket_probe(target_of(sim), agents_probe())
    assert not result.ok
    assert "non-JSON frame: 'hello'" in result.detail
    assert result.data["events"] == list(AGENT_EVENTS)


def test_ordered_probe_reports_the_violation(sim: Simulator) -> None:
    """ordered=true fails when events come in another order; unordered accepts the same stream."""
    backwards = ["agent_completed", "agent_started"]
    ordered = websocket_probe(target_of(sim), agents_probe(expect_events=backwards, ordered=True))
    loose = websocket_probe(target_of(sim), agents_probe(expect_events=backwards))
    assert not ordered.ok
    assert "out of order: agent_started arrived before agent_completed" in ordered.detail
    assert loose.ok, loose.detail


def test_unreachable_websocket_says_cannot_connect() -> None:
    """Nothing listening is a clear 'cannot connect', quickly."""
    url = f"ws://127.0.0.1:{free_port()}/ws"
    target = make_target(base_url="http://127.0.0.1:9", websocket=url)
    result = websocket_probe(target, agents_probe())
    assert not result.ok
    assert result.detail.startswith(f"cannot connect to {url}")


def test_relative_probe_url_uses_the_base_url(sim: Simulator) -> None:
    """A probe url of '/ws' is the WebSocket on base_url's host."""
    target = make_target(base_url=sim.base_url)
    result = websocket_probe(target, agents_probe(url="/ws"))
    assert result.ok
    assert result.data["url"] == sim.ws_url


def test_probe_works_inside_a_running_event_loop(sim: Simulator) -> None:
    """Called from async code, the probe still runs (in a worker thread) instead of failing."""

    async def from_async() -> bool:
        return websocket_probe(target_of(sim), agents_probe()).ok

    assert asyncio.run(from_async())


def test_http_samples_give_p50_and_p95(sim: Simulator) -> None:
    """Twenty samples give twenty latencies and their p50 and p95."""
    probe = make_probe(kind="http", url="/api/agents", samples=20)
    result = http_probe(target_of(sim), probe)
    assert result.ok, result.detail
    assert len(result.latencies_s) == 20
    assert result.data["p95_s"] == percentile(result.latencies_s, 95)
    assert 0 < result.data["p50_s"] <= result.data["p95_s"] <= max(result.latencies_s)
    assert "×20, p50" in result.detail
    assert "p95" in result.detail


def test_http_status_mismatch_is_not_retried(sim: Simulator) -> None:
    """A 404 where 200 is expected fails at once: statuses are answers, not retried."""
    result = http_probe(target_of(sim), path="/nowhere")
    assert not result.ok
    assert result.detail == "HTTP 404 (expected 200)"
    assert result.data["attempts"] == 1


def test_health_503_during_deploy_then_ok(sim: Simulator) -> None:
    """Health fails with 503 while deploying and passes once the new revision is up."""
    sim.deploy(delay_s=0.5)
    during = health_probe(target_of(sim))
    assert not during.ok
    assert during.name == "health"
    assert during.detail == "HTTP 503 (expected 200)"
    after = wait_for(lambda: (r := health_probe(target_of(sim))).ok and r, timeout=5)
    assert after.detail.startswith("HTTP 200 in")
    assert sim.version == "rev-0002"


def test_connection_refused_is_retried_until_the_server_comes() -> None:
    """Connection refused is retried with backoff; a server starting meanwhile is reached."""
    port = free_port()
    sim = Simulator(port=port)
    opener = threading.Timer(0.4, sim.start)
    opener.start()
    began = time.monotonic()
    try:
        result = http_probe(make_target(base_url=f"http://127.0.0.1:{port}"), path="/health")
    finally:
        opener.join()
        sim.stop()
    assert result.ok, result.detail
    assert result.data["attempts"] > 1
    assert time.monotonic() - began < 3.5


def test_connection_refused_gives_up_within_the_bound() -> None:
    """With nothing listening the probe stops retrying at its bound and says so."""
    target = make_target(base_url=f"http://127.0.0.1:{free_port()}")
    began = time.monotonic()
    result = http_probe(target, path="/health", retry_for_s=0.5)
    assert time.monotonic() - began < 2
    assert not result.ok
    assert result.detail.startswith("cannot connect: ConnectError")
    assert f"after {result.data['attempts']} attempts" in result.detail


def test_run_probe_dispatches_on_kind(sim: Simulator) -> None:
    """run_probe sends http probes to HTTP and websocket probes to the WebSocket."""
    http = run_probe(target_of(sim), make_probe(kind="http", url="/health"))
    ws = run_probe(target_of(sim), agents_probe())
    assert (http.kind, http.ok) == ("http", True)
    assert (ws.kind, ws.ok) == ("websocket", True)


def test_preflight_checks_health_version_and_distinct_probes(sim: Simulator) -> None:
    """Preflight is health, version, then each distinct probe once, named by phase."""
    probe = {"kind": "websocket", "send": START, "expect_events": list(AGENT_EVENTS)}
    config = Config.model_validate(
        {
            "target": {
                "base_url": sim.base_url,
                "health": "/health",
                "websocket": sim.ws_url,
                "version": {"url": "/version", "json": "commit"},
            },
            "phase": [
                {"name": "infra", "probe": [probe, {"kind": "http", "url": "/api/agents"}]},
                {"name": "agents", "probe": [probe]},
            ],
        }
    )
    results = preflight_checks(config)
    assert [r.name for r in results] == [
        "health",
        "version",
        "infra / websocket:default",
        "infra / http:/api/agents",
    ]
    assert all(r.ok for r in results), [r.detail for r in results]
    assert results[1].detail == "rev-0001"


PROXY_NAMES = {"staging.internal": "127.0.0.1"}


class ConnectProxy:
    """A CONNECT proxy on 127.0.0.1 port 0 that alone resolves ``staging.internal``.

    Like a corporate egress proxy with its own DNS: a probe that ignores the environment's
    proxy cannot reach that name at all.
    """

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ConnectProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self.thread.join(5)

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed by __exit__
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        method, where, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        self.requests.append(f"{method} {where}")
        host, port = where.rsplit(":", 1)
        upstream = socket.create_connection((PROXY_NAMES[host], int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for one, other in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(one, other), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with source, sink:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            return


def test_websocket_probe_uses_the_environment_proxy(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY from the environment carries the WebSocket probe, as it does httpx (case 13)."""
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # httpx's rule: not for ws://
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        port = sim.ws_url.rsplit(":", 1)[1].split("/", 1)[0]
        url = f"ws://staging.internal:{port}/ws"
        result = websocket_probe(make_target(base_url=sim.base_url, websocket=url), agents_probe())
    assert result.ok, result.detail
    assert proxy.requests == [f"CONNECT staging.internal:{port}"]


def test_websocket_probe_honours_no_proxy(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host NO_PROXY names goes direct, even with a dead HTTP_PROXY set."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    result = websocket_probe(target_of(sim), agents_probe())
    assert result.ok, result.detail
