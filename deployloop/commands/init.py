"""``deployloop init``: a commented starter config that validates as written."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from deployloop.console import Console
from deployloop.errors import UsageError

TEMPLATE = "deployloop.toml"


def starter_text() -> str:
    return resources.files("deployloop").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")


def run(directory: Path) -> int:
    target = directory / TEMPLATE
    if target.exists():
        raise UsageError(f"{target} already exists; not overwriting it")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(starter_text(), encoding="utf-8")
    Console().line(f"wrote {target}; check it with: deployloop validate -c {target}")
    return 0
