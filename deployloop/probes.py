"""Live checks against staging: HTTP status and latency, the agent WebSocket's events, preflight.

Every check returns a ProbeResult whose detail a person can act on at 3 a.m.: which events are
missing, which close code (by name) ended the stream, which HTTP status refused the handshake.
Header values (tokens) never appear in a detail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin, urlsplit

# Untyped in typeshed, but in urllib on every platform: the environment's NO_PROXY test alone.
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

from deployloop.config import Config, ProbeConfig, TargetConfig
from deployloop.models import ProbeResult
from deployloop.summary import percentile
from deployloop.version import VersionUnavailable, read_version

if TYPE_CHECKING:
    import httpx
    from websockets.exceptions import ConnectionClosed

RETRY_FOR_S = 3.0  # connection refused is retried this long: staging may be restarting
_MAX_FRAMES_SHOWN = 3
_T = TypeVar("_T")


# -- HTTP ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Sample:
    """One request's outcome: a status and its latency, or why there was no response."""

    status: int | None
    latency_s: float | None
    error: str | None
    attempts: int

    def problem(self, expected: int) -> str:
        if self.error is not None:
            return self.error
        if self.status != expected:
            return f"HTTP {self.status} (expected {expected})"
        return ""


def http_probe(
    target: TargetConfig,
    probe: ProbeConfig | None = None,
    path: str | None = None,
    samples: int = 1,
    *,
    retry_for_s: float = RETRY_FOR_S,
) -> ProbeResult:
    """Request ``probe.url`` (or ``path``) ``samples`` times; ok when every status is expected."""
    import httpx

    where = (probe.url if probe else None) or path or "/"
    url = urljoin(target.base_url.rstrip("/") + "/", where)
    method = probe.method if probe else "GET"
    expected = probe.expect_status if probe else 200
    count = probe.samples if probe else samples
    # The environment is trusted (SSL_CERT_FILE, HTTPS_PROXY) as the team's own suites trust it.
    with httpx.Client(
        timeout=target.request_timeout,
        proxy=target.proxy,
        headers=target.headers,
    ) as client:
        taken = [_sample(client, method, url, retry_for_s) for _ in range(count)]
    name = probe.label if probe else f"http:{where}"
    return _http_result(name, method, url, expected, taken)


def health_probe(target: TargetConfig) -> ProbeResult:
    """GET target.health (200 expected), named "health"."""
    result = http_probe(target, path=target.health or "/")
    return dataclasses.replace(result, name="health")


def _sample(client: httpx.Client, method: str, url: str, retry_for_s: float) -> _Sample:
    """One request; only failures to connect are retried, an HTTP error status is an answer."""
    import httpx
    from tenacity import (
        Retrying,
        retry_if_exception_type,
        stop_after_delay,
        wait_random_exponential,
    )

    def timed() -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = client.request(method, url)
        return response, time.monotonic() - started

    retrying = Retrying(
        retry=retry_if_exception_type((httpx.ConnectError, httpx.ConnectTimeout)),
        stop=stop_after_delay(retry_for_s),
        wait=wait_random_exponential(multiplier=0.05, max=0.5),
        reraise=True,
    )
    try:
        response, latency = retrying(timed)
    except httpx.HTTPError as exc:
        attempts = int(retrying.statistics.get("attempt_number", 1))
        return _Sample(None, None, _http_error(exc, attempts), attempts)
    attempts = int(retrying.statistics.get("attempt_number", 1))
    return _Sample(response.status_code, latency, None, attempts)


def _http_error(exc: Exception, attempts: int) -> str:
    import httpx

    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return f"cannot connect: {text} (after {attempts} attempts)"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out: {type(exc).__name__}"
    return text


def _http_result(
    name: str, method: str, url: str, expected: int, taken: Sequence[_Sample]
) -> ProbeResult:
    latencies = tuple(s.latency_s for s in taken if s.latency_s is not None)
    problems = Counter(p for s in taken if (p := s.problem(expected)))
    failed = sum(problems.values())
    data: dict[str, Any] = {
        "url": url,
        "method": method,
        "statuses": [s.status for s in taken],
        "attempts": sum(s.attempts for s in taken),
        "samples": len(taken),
    }
    if latencies:
        data |= {"p50_s": percentile(latencies, 50), "p95_s": percentile(latencies, 95)}
    if not failed:
        return ProbeResult(name, "http", True, f"HTTP {expected} {_timing(data)}", latencies, data)
    listed = ", ".join(p if n == 1 else f"{p} ×{n}" for p, n in problems.items())
    detail = listed if len(taken) == 1 else f"{failed}/{len(taken)} samples failed: {listed}"
    return ProbeResult(name, "http", False, detail, latencies, data)


def _timing(data: dict[str, Any]) -> str:
    if data["samples"] == 1:
        return f"in {_human_s(data['p50_s'])}"
    return f"×{data['samples']}, p50 {_human_s(data['p50_s'])}, p95 {_human_s(data['p95_s'])}"


def _human_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


# -- WebSocket -------------------------------------------------------------------------------


@dataclasses.dataclass
class _Transcript:
    """What one WebSocket conversation showed, gathered while it runs."""

    expected: tuple[str, ...]
    event_key: str
    events: list[str] = dataclasses.field(
        default_factory=list
    )  # every event name, in arrival order
    first_index: dict[str, int] = dataclasses.field(default_factory=dict)
    first_s: float | None = None
    done_s: float | None = None
    connected: bool = False
    timed_out: bool = False
    refused: str | None = None  # the handshake failed: why
    closed: str | None = None  # the server ended the stream early: code by name
    close_code: int | None = None
    bad_frames: list[str] = dataclasses.field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [name for name in self.expected if name not in self.first_index]

    def receive(self, frame: str | bytes, at_s: float) -> None:
        text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
        try:
            message = json.loads(text)
        except ValueError:
            self.bad_frames.append(text)
            return
        if not isinstance(message, dict) or self.event_key not in message:
            return  # heartbeats and other chatter carry no event
        name = str(message[self.event_key])
        if self.first_s is None:
            self.first_s = at_s
        self.first_index.setdefault(name, len(self.events))
        self.events.append(name)
        if not self.missing and self.done_s is None:
            self.done_s = at_s

    def server_closed(self, exc: ConnectionClosed) -> None:
        from websockets.frames import CLOSE_CODE_EXPLANATIONS

        code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (1006, "")
        meaning = CLOSE_CODE_EXPLANATIONS.get(code, "unknown").removesuffix(" [internal]")
        after = f"after {self.events[-1]}" if self.events else "before any event"
        self.close_code = code
        self.closed = f"server closed with {code} ({meaning}) {after}"
        if reason:
            self.closed += f": {reason}"

    def order_violation(self) -> str | None:
        arrived = [name for name in self.expected if name in self.first_index]
        for before, after in itertools.pairwise(arrived):
            if self.first_index[after] < self.first_index[before]:
                return f"out of order: {after} arrived before {before}"
        return None


def websocket_probe(target: TargetConfig, probe: ProbeConfig) -> ProbeResult:
    """Connect, send ``probe.send``, read events until all expected arrived or the timeout."""
    url = _ws_url(target, probe)
    if url is None:
        detail = "no WebSocket URL: set [target] websocket or the probe's url"
        return ProbeResult(probe.label, "websocket", False, detail)
    transcript = _Transcript(tuple(probe.expect_events), probe.event_key)
    _run_coroutine(lambda: _converse(url, target, probe, transcript))
    return _websocket_result(probe, url, transcript)


def _ws_url(target: TargetConfig, probe: ProbeConfig) -> str | None:
    url = probe.url or target.websocket
    if url is not None and url.startswith("/"):
        # A path on base_url: the same host, ws:// or wss:// to match http:// or https://.
        return "ws" + urljoin(target.base_url.rstrip("/") + "/", url).removeprefix("http")
    return url


def _ws_proxy(url: str, configured: str | None) -> str | None:
    """The proxy for a WebSocket URL, chosen as the HTTP probes' httpx chooses it.

    ``[target] proxy`` when set; else the environment, by httpx's rule (not websockets' own,
    which would take HTTPS_PROXY for ws://): ``ws://`` uses HTTP_PROXY, ``wss://`` HTTPS_PROXY,
    ALL_PROXY as a fallback, and a host NO_PROXY names goes direct. None means direct.
    """
    if configured:
        return configured
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    if proxy_bypass_environment(netloc):
        return None
    proxies = urllib.request.getproxies_environment()
    scheme = "https" if parts.scheme == "wss" else "http"
    return proxies.get(scheme) or proxies.get("all")


async def _converse(
    url: str, target: TargetConfig, probe: ProbeConfig, transcript: _Transcript
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
    from websockets.typing import Subprotocol

    started = time.monotonic()
    try:
        async with asyncio.timeout(probe.timeout):
            async with connect(
                url,
                additional_headers=target.headers,
                subprotocols=[Subprotocol(p) for p in target.subprotocols] or None,
                proxy=_ws_proxy(url, target.proxy),
                open_timeout=min(probe.timeout, target.request_timeout),
                close_timeout=1,
            ) as connection:
                transcript.connected = True
                if probe.send is not None:
                    await connection.send(probe.send)
                while transcript.missing:
                    frame = await connection.recv()
                    transcript.receive(frame, time.monotonic() - started)
    except TimeoutError:
        transcript.timed_out = True
        if not transcript.connected:
            transcript.refused = f"handshake timed out after {_human_s(time.monotonic() - started)}"
    except InvalidStatus as exc:
        transcript.refused = f"handshake rejected: HTTP {exc.response.status_code}"
    except ConnectionClosed as exc:
        transcript.server_closed(exc)
    except (WebSocketException, OSError) as exc:
        transcript.refused = f"cannot connect to {url}: {type(exc).__name__}: {exc}"


def _websocket_result(probe: ProbeConfig, url: str, transcript: _Transcript) -> ProbeResult:
    violation = transcript.order_violation() if probe.ordered else None
    parts = _websocket_problems(probe, transcript, violation)
    ok = not parts
    if transcript.first_s is not None:
        parts.append(f"first event after {_human_s(transcript.first_s)}")
    if transcript.done_s is not None:
        parts.append(f"complete after {_human_s(transcript.done_s)}")
    if ok:
        got = len(transcript.expected)
        parts.insert(0, f"{got}/{got} events" if got else "connected")
    data = {
        "url": url,
        "events": list(transcript.events),
        "missing": transcript.missing,
        "first_event_s": transcript.first_s,
        "completed_s": transcript.done_s,
        "close_code": transcript.close_code,
        "non_json_frames": len(transcript.bad_frames),
    }
    latencies = () if transcript.done_s is None else (transcript.done_s,)
    return ProbeResult(probe.label, "websocket", ok, "; ".join(parts), latencies, data)


def _websocket_problems(
    probe: ProbeConfig, transcript: _Transcript, violation: str | None
) -> list[str]:
    if transcript.refused is not None:
        return [transcript.refused]
    problems: list[str] = []
    missing = transcript.missing
    if missing:
        got = len(transcript.expected) - len(missing)
        problems.append(f"missing {', '.join(missing)} ({got}/{len(transcript.expected)} events)")
    if transcript.closed is not None:
        problems.append(transcript.closed)
    elif transcript.timed_out and missing:
        problems.append(f"timed out after {probe.timeout:g} s")
    problems.extend(
        f"non-JSON frame: {text[:80]!r}" for text in transcript.bad_frames[:_MAX_FRAMES_SHOWN]
    )
    if violation is not None:
        problems.append(violation)
    return problems


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine from sync code, even when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


# -- dispatch and preflight ------------------------------------------------------------------


def run_probe(target: TargetConfig, probe: ProbeConfig) -> ProbeResult:
    """One configured probe, HTTP or WebSocket."""
    if probe.kind == "websocket":
        return websocket_probe(target, probe)
    return http_probe(target, probe)


def version_check(target: TargetConfig) -> ProbeResult:
    """The deployed version as a check: ok with the version as its detail."""
    if target.version is None:
        return ProbeResult("version", "version", False, "no [target] version source configured")
    started = time.monotonic()
    try:
        version = read_version(target.version, target)
    except VersionUnavailable as exc:
        return ProbeResult("version", "version", False, str(exc))
    elapsed = time.monotonic() - started
    return ProbeResult("version", "version", True, version, (elapsed,), {"version": version})


def preflight_checks(config: Config) -> list[ProbeResult]:
    """Health and version when configured, then every distinct probe of every phase."""
    target = config.target
    results: list[ProbeResult] = []
    if target.health is not None:
        results.append(health_probe(target))
    if target.version is not None:
        results.append(version_check(target))
    seen: set[str] = set()
    for phase in config.phases:
        for probe in phase.probes:
            key = probe.model_dump_json()
            if key in seen:
                continue  # the same probe in two phases is checked once
            seen.add(key)
            result = run_probe(target, probe)
            results.append(dataclasses.replace(result, name=f"{phase.name} / {result.name}"))
    return results
