"""``deployloop run``: the loop, until every gate is green or the budget is spent."""

from __future__ import annotations

from pathlib import Path

from deployloop import config as config_module
from deployloop import daemon
from deployloop.console import Console
from deployloop.daemon import RunOptions
from deployloop.live import make_sinks
from deployloop.plan import build_plan

__all__ = ["RunOptions", "run"]


def run(config_path: Path | None, options: RunOptions) -> int:
    config_module.check_run_options(options.budget, options.until, options.max_iterations)
    config = config_module.load(config_module.find_config(config_path))
    plan = build_plan(config, options.phases, once=options.once, dry_run=options.dry_run)
    console = Console()
    outcome = daemon.run(config, plan, options, make_sinks(console))
    console.line(f"session log: {outcome.directory / 'session.md'}")
    return outcome.exit_code
