"""What version staging runs: from a URL (JSON key, header or body) or from a command.

The redeploy waiter polls this; while staging is down or half-deployed it raises
VersionUnavailable, which the waiter reads as "still deploying" rather than a failure.
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from deployloop.config import TargetConfig, VersionSource
from deployloop.errors import DeployloopError
from deployloop.models import RunEnd

_TAIL_CHARS = 500
_MAX_OUTPUT = 4096  # a version is one short line: of a chatty command only the end is read
_GRACE_S = 1.0  # a version command holds no state worth a long TERM grace


class VersionUnavailable(DeployloopError):
    """The deployed version cannot be read now: unreachable, 5xx, missing key, failed command."""

    exit_code = 3


def read_version(
    source: VersionSource,
    target: TargetConfig,
    timeout: float | None = None,
    stop: threading.Event | None = None,
) -> str:
    """The deployed version, stripped; raises VersionUnavailable saying why it could not be read.

    ``timeout`` (seconds) defaults to the target's request timeout; ``stop`` ends a version
    command early.
    """
    limit = target.request_timeout if timeout is None else timeout
    if source.command is not None:
        return _from_command(source.command, limit, stop)
    assert source.url is not None  # VersionSource guarantees url or command
    return _from_url(source, target, limit)


def _from_url(source: VersionSource, target: TargetConfig, timeout: float) -> str:
    import httpx

    url = urljoin(target.base_url.rstrip("/") + "/", source.url or "")
    try:
        with httpx.Client(timeout=timeout, proxy=target.proxy) as client:
            response = client.get(url, headers=target.headers)
    except httpx.HTTPError as exc:
        raise VersionUnavailable(f"version: {url}: {_describe_http_error(exc)}") from None
    if not response.is_success:
        raise VersionUnavailable(f"version: {url}: HTTP {response.status_code}")
    if source.header is not None:
        value = response.headers.get(source.header)
        if value is None:
            raise VersionUnavailable(f"version: {url}: no {source.header!r} header in the response")
        return _non_empty(value, url)
    if source.json_path is not None:
        return _non_empty(_dig(response.text, source.json_path, url), url)
    return _non_empty(response.text, url)


def _dig(text: str, dotted: str, url: str) -> str:
    """The value at ``a.b.0.c`` in a JSON document."""
    try:
        value: Any = json.loads(text)
    except ValueError:
        raise VersionUnavailable(f"version: {url}: response is not JSON: {text[:80]!r}") from None
    for key in dotted.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise VersionUnavailable(f"version: {url}: no key {dotted!r} in the JSON response")
    if isinstance(value, dict | list) or value is None:
        raise VersionUnavailable(f"version: {url}: {dotted!r} is not a scalar: {value!r}")
    return str(value)


def _non_empty(value: str, where: str) -> str:
    version = value.strip()
    if not version:
        raise VersionUnavailable(f"version: {where}: empty version")
    return version


def _describe_http_error(exc: Exception) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _from_command(command: str, timeout: float, stop: threading.Event | None) -> str:
    """The command's stripped stdout, run through ``process.run`` like any suite.

    It leads its own process group, so a timeout (or ``stop``) ends it and its children
    alike: TERM, a short grace, KILL. Output goes through files, never pipes, so a child that
    outlives the command cannot hold the read open.
    """
    from deployloop import process

    with tempfile.TemporaryDirectory(prefix="deployloop-version-") as scratch:
        out, err = Path(scratch) / "stdout", Path(scratch) / "stderr"
        done = process.run(
            process.split_command(command),
            log_path=out,
            stderr_path=err,
            timeout=timeout,
            stop=stop or threading.Event(),
            grace_s=_GRACE_S,
        )
        if done.ended is RunEnd.FAILED_TO_START:
            raise VersionUnavailable(f"version command {command!r} {done.start_error}")
        if done.ended is RunEnd.TIMEOUT:
            raise VersionUnavailable(f"version command {command!r} timed out after {timeout:g} s")
        if done.ended is RunEnd.INTERRUPTED:
            raise VersionUnavailable(f"version command {command!r} stopped: run ending")
        if done.returncode != 0:
            tail = process.tail(err, _TAIL_CHARS).strip() or "(no stderr)"
            raise VersionUnavailable(
                f"version command {command!r} exited {done.returncode}: {tail}"
            )
        return _non_empty(process.tail(out, _MAX_OUTPUT), f"command {command!r}")
