"""``deployloop results FILE_OR_DIR...``: what JUnit files add up to, as a table or JSON."""

from __future__ import annotations

import itertools
import sys
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
    """Read every file (directories searched for *.xml); JUnitError if any cannot be read.

    A file read only after dropping or replacing bad characters is named on stderr (and in
    the JSON's ``repairs``), so a repair is never silent.
    """
    files = junit.collect_files(paths)
    repairs: list[str] = []
    cases = itertools.chain.from_iterable(junit.iter_cases(path, repairs) for path in files)
    summary = summarize(cases, files=len(files))
    for note in repairs:
        Console(sys.stderr).line(f"repaired {note}")
    console = Console()
    if as_json:
        console.json({**summary.to_json(), "repairs": repairs})
    else:
        console.show(counts_table(summary))
        if summary.clusters:
            console.show(clusters_table(summary))
    return 0


def counts_table(summary: Summary) -> Table:
    """Logical tests by category; ``tests`` also names the records when reruns added some."""
    from rich.table import Table

    table = Table(title="JUnit results", title_justify="left")
    columns = ("files", "tests", "passed", "failed", "errors", "skipped", "xfailed", "xpassed")
    for column in (*columns, "flaky", "pass rate", "duration", "p95"):
        table.add_column(column, justify="right")
    t = summary.tally
    tests = str(t.tests) if t.tests == t.records else f"{t.tests} ({t.records} records)"
    p95 = "unknown" if summary.p95_s is None else f"{summary.p95_s:.2f} s"
    if summary.untimed:
        p95 += f" ({summary.untimed} untimed)"
    table.add_row(
        str(summary.files),
        tests,
        *(str(n) for n in (t.passed, t.failed, t.errors, t.skipped, t.xfailed, t.xpassed)),
        str(t.flaky),
        f"{summary.pass_rate:.1%}",
        f"{summary.duration_s:.2f} s",
        p95,
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
