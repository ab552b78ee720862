"""``deployloop results FILE_OR_DIR...``: what JUnit files add up to, as a table or JSON."""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployloop import config as config_module
from deployloop import junit
from deployloop.clustering import Keyed, key_cases
from deployloop.config import ClustersConfig
from deployloop.console import Console
from deployloop.fingerprint import first_meaningful_line
from deployloop.models import CaseResult
from deployloop.redact import Redactor
from deployloop.summary import Summary, summarize

if TYPE_CHECKING:
    from rich.table import Table

EXAMPLE_WIDTH = 100
TESTS_SHOWN = 3


def run(
    paths: list[Path], as_json: bool, explain: bool = False, config_path: Path | None = None
) -> int:
    """Read every file (directories searched for *.xml); JUnitError if any cannot be read.

    A file read only after dropping or replacing bad characters is named on stderr (and in
    the JSON's ``repairs``), so a repair is never silent. ``config_path``: a config whose
    ``[clusters]`` mask and merge rules apply, as in a run (ConfigError when it is bad).
    ``explain``: also how each failure was read (``explained``), as a table or under the
    JSON's ``explain`` key.
    """
    clusters = config_module.load(config_path).clusters if config_path else ClustersConfig()
    left_out: list[Path] = []
    files = junit.collect_files(paths, left_out)
    repairs: list[str] = []
    read = itertools.chain.from_iterable(junit.iter_cases(path, repairs) for path in files)
    cases = _scrubbed(read, Redactor.from_env(os.environ))
    broken: list[CaseResult] = []
    summary = summarize(_keep_broken(cases, broken), len(files), clusters.mask, clusters.merge)
    keyed = key_cases(broken, clusters.mask, clusters.merge) if explain else []
    for note in repairs:
        Console(sys.stderr).line(f"repaired {note}")
    if left_out:
        Console(sys.stderr).line(
            f"left out {len(left_out)} file(s) of deployloop's extra passes (failed-first, "
            f"rerun, shards), whose tests the suite's own file beside them holds, e.g. "
            f"{left_out[0]}: name a file to read it"
        )
    console = Console()
    if as_json:
        extra = {"explain": explained(broken, keyed)} if explain else {}
        console.json({**summary.to_json(), "repairs": repairs, **extra})
        return 0
    console.show(counts_table(summary))
    if summary.clusters:
        console.show(clusters_table(summary))
    if explain and broken:
        console.show(explain_table(explained(broken, keyed)))
    return 0


def _scrubbed(cases: Iterable[CaseResult], redactor: Redactor) -> Iterator[CaseResult]:
    """Every case with its text redacted before it is keyed or shown: no config is at hand, so
    the environment's secrets and the known shapes (like the crash handler), as a run scrubs
    its JUnit copy before reading it."""
    for case in cases:
        yield dataclasses.replace(
            case,
            id=redactor.redact(case.id),
            name=redactor.redact(case.name),
            message=redactor.redact(case.message),
            details=redactor.redact(case.details),
        )


def _keep_broken(cases: Iterable[CaseResult], into: list[CaseResult]) -> Iterator[CaseResult]:
    """``cases`` as they stream by, the broken ones kept in ``into`` for ``--explain``."""
    for case in cases:
        if case.broken:
            into.append(case)
        yield case


def explained(cases: Sequence[CaseResult], keyed: Sequence[Keyed]) -> list[dict[str, Any]]:
    """One object per failure: its cluster, its own v2 print, the line read (``source``) and
    hashed (``line``), the rules that chose it (errorline.Rule values, in turn) and, when its
    print is not its cluster's, how it joined (clustering.Join: near-duplicate, merge rule)."""
    out = []
    for case, found in zip(cases, keyed, strict=True):
        e = found.explanation
        joined = dict(found.cause.joined).get(e.fingerprint)
        out.append(
            {
                "test": case.id,
                "cluster": found.key,
                "fingerprint": e.fingerprint,
                "error_type": e.error_type,
                "line": e.line,
                "source": e.source,
                "rules": [rule.value for rule in e.rules],
                "joined": joined.value if joined else None,
            }
        )
    return out


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


def explain_table(rows: Sequence[dict[str, Any]]) -> Table:
    """``explained`` as a table: test, cluster (and own print when joined), rules, line."""
    from rich.table import Table

    table = Table(title="How each failure was read", title_justify="left")
    for column in ("test", "cluster", "rules", "normalized line"):
        table.add_column(column, overflow="fold")
    for row in rows:
        cluster = row["cluster"]
        if row["fingerprint"] != cluster:
            cluster += f"\n{row['fingerprint']} joined by {row['joined'] or 'its cause'}"
        rules = ", ".join(row["rules"]) or "message"
        table.add_row(row["test"], cluster, rules, row["line"] or "(no message)")
    return table


def _example(message: str) -> str:
    line = first_meaningful_line(message) or "(no message)"
    return line if len(line) <= EXAMPLE_WIDTH else line[: EXAMPLE_WIDTH - 1] + "…"
