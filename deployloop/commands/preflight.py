"""``deployloop preflight``: health, version and every probe against the target, as one table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table
from rich.text import Text

from deployloop import config as config_module
from deployloop.console import Console
from deployloop.errors import TargetUnreachable
from deployloop.models import ProbeResult


def run(config_path: Path | None) -> int:
    """0 when every check passed; 3 (target unreachable) when any failed."""
    from deployloop.probes import preflight_checks

    config = config_module.load(config_module.find_config(config_path))
    console = Console()
    results = preflight_checks(config)
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
