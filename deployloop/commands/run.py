"""``deployloop run``: the loop, until every gate is green or the budget is spent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from deployloop import config as config_module
from deployloop import daemon
from deployloop.console import Console
from deployloop.daemon import RunOutcome
from deployloop.errors import NOT_FAILURES, LockHeld
from deployloop.live import make_sinks
from deployloop.plan import build_plan
from deployloop.session import RunOptions

__all__ = ["Output", "RunOptions", "run"]


@dataclass(frozen=True, slots=True)
class Output:
    """Where a run's lines go besides session.md.

    ``log_file``: the plain timestamped lines are appended there too (its directory is made),
    so cron and systemd need no shell redirection. ``quiet``: nothing on stdout but one verdict
    line when the night failed (exit not in ``NOT_FAILURES``): cron mails exactly that.
    """

    log_file: Path | None = None
    quiet: bool = False


def run(config_path: Path | None, options: RunOptions, output: Output | None = None) -> int:
    """The run's exit code (0, 1, 3, 75, 130, 143); LockHeld is raised unless quiet."""
    output = output or Output()
    config_module.check_run_options(options.budget, options.until, options.max_iterations)
    config = config_module.load(config_module.find_config(config_path))
    plan = build_plan(config, options.phases, once=options.once, dry_run=options.dry_run)
    with _consoles(output) as consoles:
        try:
            outcome = daemon.run(
                config, plan, options, [s for c in consoles for s in make_sinks(c)]
            )
        except LockHeld as exc:
            if not output.quiet:
                raise
            for console in consoles:  # another instance runs it: logged, not mailed
                console.line(str(exc))
            return exc.exit_code
        for console in consoles:
            console.line(f"session log: {outcome.directory / 'session.md'}")
    if output.quiet and outcome.exit_code not in NOT_FAILURES:
        Console().line(verdict_line(outcome))
    return outcome.exit_code


def verdict_line(outcome: RunOutcome) -> str:
    """One line that says what failed and where to read more (a cron mail's whole body)."""
    return (
        f"deployloop: session {outcome.session} ended with exit {outcome.exit_code}: "
        f"{outcome.reason or 'failed'} (log: {outcome.directory / 'session.md'})"
    )


@contextmanager
def _consoles(output: Output) -> Iterator[list[Console]]:
    """The terminal or stdout (unless quiet), and the log file when one is asked for."""
    with ExitStack() as stack:
        consoles = [] if output.quiet else [Console()]
        if output.log_file is not None:
            output.log_file.parent.mkdir(parents=True, exist_ok=True)
            handle = stack.enter_context(
                open(output.log_file, "a", encoding="utf-8", errors="replace")
            )
            consoles.append(Console(handle, interactive=False))
        yield consoles
