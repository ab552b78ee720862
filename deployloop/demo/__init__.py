"""The embedded demo: a staging simulator with a bug, real e2e suites, and the demo config.

Everything ships in the package (``assets/``) so ``deployloop demo`` works from any directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from deployloop.config import Config, load


def assets() -> Path:
    return Path(str(resources.files("deployloop") / "demo" / "assets"))


@contextmanager
def demo_environment(
    base_url: str, ws_url: str, notify_url: str = "json://127.0.0.1:9/notify"
) -> Iterator[None]:
    """Point the demo config's ${DEPLOYLOOP_DEMO_*} variables at this simulator, these assets
    and ``notify_url`` (the demo's own notification receiver)."""
    values = {
        "DEPLOYLOOP_DEMO_NOTIFY": notify_url,
        "DEPLOYLOOP_DEMO_URL": base_url,
        "DEPLOYLOOP_DEMO_WS": ws_url,
        "DEPLOYLOOP_DEMO_PYTHON": sys.executable,
        "DEPLOYLOOP_DEMO_SUITES": str(assets() / "suites"),
        "DEPLOYLOOP_DEMO_ASSETS": str(assets()),
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def demo_config(path: Path | None = None) -> Config:
    """``path`` (an edited copy, e.g. the checkout's ``config/demo.toml``), else the shipped one;
    its logs go under the current directory, not the package.

    The DEPLOYLOOP_DEMO_* values are the demo's own addresses and paths, not secrets to mask.
    """
    public = frozenset(name for name in os.environ if name.startswith("DEPLOYLOOP_DEMO_"))
    return load(path or assets() / "demo.toml", base=Path.cwd(), public=public)
