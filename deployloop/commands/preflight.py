"""``deployloop preflight``: health, version and every probe against the target, and whether
every program the run lines and the trigger name can be found here (as ``validate`` checks,
through ``programs.missing_programs``), as one table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table
from rich.text import Text

from deployloop import config as config_module
from deployloop.config import Config
from deployloop.config_text import dotted
from deployloop.console import Console
from deployloop.errors import TargetUnreachable
from deployloop.models import ProbeResult
from deployloop.programs import missing_programs


def run(config_path: Path | None) -> int:
    """0 when every check passed; 3 (target unreachable) when any failed."""
    from deployloop.probes import preflight_checks

    config = config_module.load(config_module.find_config(config_path))
    console = Console()
    results = [*program_checks(config), *preflight_checks(config)]
    console.show(_table(results))
    for result in results:
        if not result.ok:
            console.line(f"FAIL {result.name}: {result.detail}")
    version = next((r.detail for r in results if r.kind == "version" and r.ok), None)
    if version is not None:
        console.line(f"deployed version: {version}")
    failed = sum(not r.ok for r in results)
    console.line(f"preflight: {len(results) - failed}/{len(results)} checks ok")
    return TargetUnreachable.exit_code if failed else 0


def program_checks(config: Config) -> list[ProbeResult]:
    """One failed row per program (or suite ``cwd``) not found on this machine's PATH, named
    by its config key; one ok row when every one was found; none when nothing names one."""
    missing = missing_programs(config, os.environ)
    if not missing and _names_programs(config):
        return [ProbeResult("programs", "programs", True, "every program named was found")]
    return [ProbeResult(f"programs / {dotted(loc)}", "programs", False, m) for loc, m in missing]


def _names_programs(config: Config) -> bool:
    """A suite, the trigger or the version command: something a run starts."""
    trigger = config.redeploy is not None and bool(config.redeploy.trigger)
    version = config.target.version is not None and bool(config.target.version.command)
    return any(phase.suites for phase in config.phases) or trigger or version


def _table(results: Sequence[ProbeResult]) -> Table:
    table = Table(title="preflight")
    table.add_column("check")
    table.add_column("result")
    table.add_column("latency", justify="right")
    table.add_column("detail", overflow="fold")
    for result in results:
        mark = Text("ok", "green") if result.ok else Text("FAIL", "bold red")
        # Text, not markup: details hold brackets such as "[Errno 111]".
        table.add_row(Text(result.name), mark, _latency(result), Text(result.detail))
    return table


def _latency(result: ProbeResult) -> str:
    if not result.latencies_s:
        return "-"
    # With several samples the p95 is what a gate would judge.
    seconds = float(result.data.get("p95_s", max(result.latencies_s)))
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
