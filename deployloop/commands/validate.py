"""``deployloop validate``: every problem of the config at once, as FILE:LINE: message."""

from __future__ import annotations

from pathlib import Path

from deployloop import config as config_module
from deployloop.console import Console


def run(config_path: Path | None) -> int:
    path = config_module.find_config(config_path)
    config = config_module.load(path)  # ConfigError → exit 2 with one line per problem
    suites = sum(len(p.suites) for p in config.phases)
    probes = sum(len(p.probes) for p in config.phases)
    Console().line(
        f"{path}: ok — session {config.session.name!r}, {len(config.phases)} phases, "
        f"{suites} suites, {probes} probes, tracker {config.issues.tracker}"
    )
    return 0
