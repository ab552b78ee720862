"""Shared test helpers: generated pytest suites, configs, the real CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def write_tests(directory: Path, name: str, source: str) -> Path:
    """A test file of ``source`` (dedented) at ``directory/name``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def suite_block(name: str, run: str, **options: Any) -> str:
    lines = ["  [[phase.suite]]", f'  name = "{name}"', f"  run = '''{run}'''"]
    lines += [f"  {key} = {_toml(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def phase_block(name: str, *suites: str, **options: Any) -> str:
    head = ["[[phase]]", f'name = "{name}"']
    head += [f"{key} = {_toml(value)}" for key, value in options.items()]
    return "\n".join(head) + "\n" + "".join(suites)


def config_text(
    *phases: str, base_url: str = "http://127.0.0.1:9", extra: str = "", session: str = ""
) -> str:
    return (
        f'[session]\nname = "t"\n{session}\n[target]\nbase_url = "{base_url}"\n\n'
        + "\n".join(phases)
        + "\n"
        + extra
    )


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def python_pytest(args: str = "") -> str:
    """A pytest command for the suite: this interpreter, so it works without PATH set-up."""
    return f"{sys.executable} -m pytest -q -p no:cacheprovider {args}".strip()


def cli(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployloop", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start_cli(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The CLI in the background; its output goes to ``cwd/cli.out`` (a pipe could fill up)."""
    with open(cwd / "cli.out", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "deployloop", *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test past ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s: {predicate}")


def session_dirs(logs: Path) -> list[Path]:
    return sorted(
        p
        for p in logs.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name != "issues"
    )
