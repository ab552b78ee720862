"""``deployloop report``: the morning report of a session (the latest by default)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from deployloop import config as config_module
from deployloop.atomic import write_atomic
from deployloop.config import Config
from deployloop.console import Console, error
from deployloop.errors import UsageError
from deployloop.state import Store, state_dir

FORMATS = ("md", "html")


def run(session: str | None, fmt: str, output: Path | None, config_path: Path | None) -> int:
    from deployloop import report

    if fmt not in FORMATS:
        raise UsageError(f"--format must be md or html, not {fmt!r}")
    config = _config(config_path)
    store = Store.existing(state_dir(config.session.logs_dir if config else "logs"))
    missing = f"no session {session!r} found" if session else "no session found"
    if store is None:
        raise UsageError(missing)
    if store.recovered:
        error(store.recovered)
    try:
        if store.session(session) is None:
            raise UsageError(missing)
        data = report.build(store, session)
    finally:
        store.close()
    render = report.to_markdown if fmt == "md" else report.to_html
    text = _redactor(config)(render(data))
    console = Console()
    if output is None and fmt == "md":
        from rich.text import Text

        console.show(Text(text.rstrip("\n")))  # Text: untrusted output is never read as markup
        return 0
    target = output or Path(data.directory) / "report.html"
    console.line(str(write_atomic(target, text)))
    return 0


def _config(config_path: Path | None) -> Config | None:
    """The config when one is around (it places the logs and names secrets); else None.
    Lenient: a report needs no secret to be set (an unset one has nothing to mask)."""
    try:
        return config_module.load(config_module.find_config(config_path), lenient=True)
    except UsageError:
        if config_path is not None:
            raise
        return None


def _redactor(config: Config | None) -> Callable[[str], str]:
    from deployloop.daemon import redactor_for
    from deployloop.redact import Redactor

    redactor = redactor_for(config) if config else Redactor.from_env(os.environ)
    return redactor.redact
