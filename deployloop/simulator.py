"""A staging stand-in on 127.0.0.1: health, version, a few REST routes and the agent WebSocket.

The tests, the demo and anyone trying deployloop without a staging environment point it here.
It deploys (health 503 for a while, then a new revision), carries a bug on demand (the agent
pipeline crashes with close code 1011 after its first event) and misbehaves in the specific ways
the probes must report: slow events, a missing event, non-JSON frames, a refused handshake.

Endpoints: ``GET /health`` (503 while deploying), ``GET /version`` (JSON and ``x-revision``),
``GET /version.txt``, ``GET /api/users/<id>``, ``POST /api/orders``, ``GET /api/agents``, the
WebSocket ``/ws`` (``{"type": "start_agent"}`` → the five agent events), and for tests and the
demo ``POST /_control/deploy`` ``{"fix", "delay_s", "rollout_s", "bug", "revision"}``
(``simversions``: gradual rollouts, rollbacks), ``POST /_control/bug`` ``{"on"}``,
``POST /_control/behaviour`` (the Behaviour fields) and ``GET /_control/state``.

Run it alone: ``python -m deployloop.simulator [--bug] [--port 0] [--token T] [--ready-file F]``.
This module is imported only by the demo and by tests, never at CLI start-up, so websockets is
imported at the top.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import logging
import random
import re
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from deployloop.atomic import write_atomic
from deployloop.simagent import CRASH_REASON, Behaviour, agent_events, pause
from deployloop.simhttp import BodyAwareConnection, Reply, json_object, response
from deployloop.simversions import Revisions

DEFAULT_DEPLOY_S = 1.0


class Simulator:
    """Staging on a free local port, served from a background thread; a context manager."""

    def __init__(
        self,
        *,
        bug: bool = False,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        event_delay_s: float = 0.0,
        omit_event: str | None = None,
        non_json: bool = False,
        reject_status: int | None = None,
        sha_versions: bool = False,
        seed: int | None = None,  # of the rollout's random answers: a test repeats exactly
    ) -> None:
        self.host = host
        self.token = token
        self.behaviour = Behaviour(event_delay_s, omit_event, non_json, reject_status)
        self._port = port
        self.revisions = Revisions(bug, sha_versions, random.Random(seed))
        self._orders = itertools.count(1)
        self._runs = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Serve in a background thread; return once the port is listening."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        self._thread = threading.Thread(target=self._thread_main, name="simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("simulator did not start listening within 10 s")
        if self._failure is not None:
            self._thread.join()
            raise self._failure

    def stop(self) -> None:
        """Close every connection, stop listening and join the thread; idempotent."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or not thread.is_alive():
            return
        if loop is not None and stopping is not None:
            loop.call_soon_threadsafe(stopping.set)
        thread.join(15)

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self._port}/ws"

    # -- state ----------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """The deployed revision; during a deploy still the old one (mid-rollout, either)."""
        return self.revisions.version

    @property
    def deploying(self) -> bool:
        return self.revisions.deploying

    @property
    def bug(self) -> bool:
        return self.revisions.bug

    def deploy(
        self,
        fix: bool = True,
        delay_s: float = DEFAULT_DEPLOY_S,
        *,
        rollout_s: float = 0.0,
        bug: bool | None = None,
        revision: int | None = None,
    ) -> str:
        """Start a redeploy (``simversions.Revisions.deploy``); returns the revision's name."""
        return self.revisions.deploy(fix, delay_s, rollout_s=rollout_s, bug=bug, revision=revision)

    def set_bug(self, on: bool) -> None:
        self.revisions.set_bug(on)

    def state(self) -> dict[str, Any]:
        return {**self.revisions.state(), "behaviour": dataclasses.asdict(self.behaviour)}

    # -- HTTP -----------------------------------------------------------------------------

    def handle_http(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        """Answer one plain HTTP request; the routing, free of any server machinery."""
        route = urlsplit(path).path.rstrip("/") or "/"
        if route.startswith("/_control/"):
            return self._control(method, route, body)
        if self.deploying:
            return Reply(503, {"status": "deploying", "version": self.version})
        if route.startswith("/api/") and not self._authorized(headers):
            return Reply(403, {"error": "forbidden"})
        return self._public(method, route, body)

    def _public(self, method: str, route: str, body: bytes) -> Reply:
        version = self.version
        if (method, route) == ("GET", "/health"):
            return Reply(200, {"status": "ok", "version": version})
        if (method, route) == ("GET", "/version"):
            return Reply(200, {"commit": version, "revision": version}, {"x-revision": version})
        if (method, route) == ("GET", "/version.txt"):
            return Reply(200, f"{version}\n")
        if (method, route) == ("GET", "/api/agents"):
            return Reply(200, {"agents": [{"name": "triage", "status": "ready"}]})
        if (method, route) == ("POST", "/api/orders"):
            return self._create_order(body)
        user = re.fullmatch(r"/api/users/([^/]+)", route)
        if user and method == "GET":
            return _user(user.group(1))
        return Reply(404, {"error": f"no route {method} {route}"})

    def _create_order(self, body: bytes) -> Reply:
        order = json_object(body)
        if order is None:
            return Reply(400, {"error": "body must be a JSON object"})
        return Reply(201, {**order, "id": f"ord-{next(self._orders):04d}"})

    def _control(self, method: str, route: str, body: bytes) -> Reply:
        options = json_object(body or b"{}")
        if options is None:
            return Reply(400, {"error": "body must be a JSON object"})
        if (method, route) == ("GET", "/_control/state"):
            return Reply(200, self.state())
        if (method, route) == ("POST", "/_control/deploy"):
            upcoming = self._deploy(options)
            return Reply(202, {**self.state(), "upcoming": upcoming})
        if (method, route) == ("POST", "/_control/bug"):
            self.set_bug(bool(options.get("on", True)))
            return Reply(200, self.state())
        if (method, route) == ("POST", "/_control/behaviour"):
            return self._set_behaviour(options)
        return Reply(404, {"error": f"no route {method} {route}"})

    def _deploy(self, options: Mapping[str, Any]) -> str:
        bug, revision = options.get("bug"), options.get("revision")
        return self.deploy(
            fix=bool(options.get("fix", True)),
            delay_s=float(options.get("delay_s", DEFAULT_DEPLOY_S)),
            rollout_s=float(options.get("rollout_s", 0.0)),
            bug=None if bug is None else bool(bug),
            revision=None if revision is None else int(revision),
        )

    def _set_behaviour(self, options: Mapping[str, Any]) -> Reply:
        known = {f.name for f in dataclasses.fields(Behaviour)}
        unknown = set(options) - known
        if unknown:
            return Reply(400, {"error": f"unknown knobs: {sorted(unknown)}"})
        self.behaviour = dataclasses.replace(self.behaviour, **options)
        return Reply(200, self.state())

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        return self.token is None or headers.get("Authorization") == f"Bearer {self.token}"

    # -- WebSocket ------------------------------------------------------------------------

    def _handshake_refusal(self, headers: Mapping[str, str]) -> int | None:
        """The HTTP status that refuses a WebSocket upgrade, or None to accept it."""
        if self.deploying:
            return 503
        if self.behaviour.reject_status is not None:
            return self.behaviour.reject_status
        return None if self._authorized(headers) else 403

    async def _agent_session(self, connection: ServerConnection) -> None:
        try:
            async for message in connection:
                request = json_object(message if isinstance(message, bytes) else message.encode())
                if request is None or request.get("type") != "start_agent":
                    await connection.send(
                        json.dumps({"type": "error", "message": "expected start_agent"})
                    )
                    continue
                await self._run_agent(connection, request)
        except ConnectionClosed:
            pass  # the client went away mid-run: nothing to clean up

    async def _run_agent(self, connection: ServerConnection, request: Mapping[str, Any]) -> None:
        behaviour, crash = self.behaviour, self.bug
        run_id = f"run-{next(self._runs):04d}"
        if behaviour.non_json:
            await connection.send("hello")
        for event in agent_events(run_id, request):
            if behaviour.event_delay_s and not await pause(connection, behaviour.event_delay_s):
                return
            if event["type"] == behaviour.omit_event:
                continue
            await connection.send(json.dumps(event))
            if crash:
                await connection.close(1011, CRASH_REASON)
                return

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = request.headers  # case-insensitive
        if urlsplit(request.path).path == "/ws":
            refusal = self._handshake_refusal(headers)
            if refusal is None:
                return None
            return response(Reply(refusal, {"error": "handshake refused"}))
        body = getattr(connection, "http_body", b"")
        return response(self.handle_http(request.method, request.path, body, headers))

    # -- server thread --------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start(), never lost in the thread
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with serve(
            self._agent_session,
            self.host,
            self._port,
            process_request=self._process_request,
            create_connection=BodyAwareConnection,
            close_timeout=1,
            logger=_quiet_logger(),
        ) as server:
            self._port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopping.wait()


def _user(user_id: str) -> Reply:
    if not user_id.isdigit():
        return Reply(404, {"error": f"no user {user_id}"})
    return Reply(
        200, {"id": int(user_id), "name": f"user-{user_id}", "email": f"u{user_id}@example.test"}
    )


def _quiet_logger() -> logging.Logger:
    # websockets logs every refused handshake; without a handler Python's last-resort handler
    # would print them to stderr in the middle of test and demo output.
    logger = logging.getLogger("deployloop.simulator")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


# -- as a process ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; announce the URLs on stdout and in ``--ready-file``."""
    args = _parser().parse_args(argv)
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    # Blocked before the server thread starts so it inherits the mask: sigwait() below is then
    # the only receiver, and no handler runs in the middle of anything.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    simulator = Simulator(
        bug=args.bug,
        token=args.token,
        port=args.port,
        event_delay_s=args.event_delay,
    )
    simulator.start()
    try:
        _announce(simulator, args.ready_file)
        signal.sigwait(stop_signals)
    finally:
        simulator.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deployloop.simulator", description=__doc__)
    parser.add_argument("--bug", action="store_true", help="start with the agent pipeline bug")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on /ws and /api")
    parser.add_argument("--event-delay", type=float, default=0.0, help="seconds before each event")
    parser.add_argument("--ready-file", type=Path, help="write the URLs here once listening")
    return parser


def _announce(simulator: Simulator, ready_file: Path | None) -> None:
    urls = json.dumps({"base_url": simulator.base_url, "ws_url": simulator.ws_url})
    sys.stdout.write(urls + "\n")
    sys.stdout.flush()
    if ready_file is not None:
        write_atomic(ready_file, urls + "\n")  # readers never see a half-written file


if __name__ == "__main__":
    sys.exit(main())
