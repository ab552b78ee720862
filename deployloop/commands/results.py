"""``deployloop results FILE_OR_DIR...``: what JUnit files add up to, as a table or JSON."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from deployloop import junit
from deployloop.console import Console
from deployloop.fingerprint import first_meaningful_line
from deployloop.summary import Summary, summarize

if TYPE_CHECKING:
    from rich.table import Table

EXAMPLE_WIDTH = 100
TESTS_SHOWN = 3


def run(paths: list[Path], as_json: bool) -> int:
    """Read every file (directories searched for *.xml); JUnitError if any cannot be read."""
    files = junit.collect_files(paths)
    cases = itertools.chain.from_iterable(junit.iter_cases(path) for path in files)
    summary = summarize(cases, files=len(files))
    console = Console()
    if as_json:
        console.json(summary.to_json())
    else:
        console.show(counts_table(summary))
        if summary.clusters:
            console.show(clusters_table(summary))
    return 0


def counts_table(summary: Summary) -> Table:
    from rich.table import Table

    table = Table(title="JUnit results", title_justify="left")
    for column in ("files", "tests", "passed", "failed", "errors", "skipped"):
        table.add_column(column, justify="right")
    table.add_column("pass rate", justify="right")
    table.add_column("duration", justify="right")
    table.add_column("p95", justify="right")
    table.add_row(
        *(str(n) for n in (summary.files, summary.tests, summary.passed, summary.failed)),
        str(summary.errors),
        str(summary.skipped),
        f"{summary.pass_rate:.1%}",
        f"{summary.duration_s:.2f} s",
        f"{summary.p95_s:.2f} s",
    )
    return table


def clusters_table(summary: Summary) -> Table:
    from rich.table import Table

    table = Table(title="Failure clusters (one per root cause)", title_justify="left")
    table.add_column("count", justify="right")
    table.add_column("fingerprint")
    table.add_column("example message", overflow="fold")
    table.add_column("tests", overflow="fold")
    for cluster in summary.clusters:
        shown = list(dict.fromkeys(cluster.tests))[:TESTS_SHOWN]
        more = len(set(cluster.tests)) - len(shown)
        tests = "\n".join(shown) + (f"\n… {more} more" if more > 0 else "")
        table.add_row(str(cluster.count), cluster.fingerprint, _example(cluster.message), tests)
    return table


def _example(message: str) -> str:
    line = first_meaningful_line(message) or "(no message)"
    return line if len(line) <= EXAMPLE_WIDTH else line[: EXAMPLE_WIDTH - 1] + "…"
