"""Typer wiring only: parse options, call one command, turn its outcome into an exit code."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Run staging e2e suites phase by phase, file one issue per root cause, "
    "wait for the redeploy, retest, close what is verified fixed.",
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "-c", "--config", help="Config file (else $DEPLOYLOOP_CONFIG, ./deployloop.toml)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")]

EXIT_INTERRUPTED = 130
EXIT_SOFTWARE = 70  # an unexpected crash: not a verdict about staging


def _call(command: Callable[[], int], config: Path | None = None) -> None:
    """The one top-level handler: expected errors are one clear line, crashes leave a log.

    A full or read-only disk is expected (exit 2, the path and errno); anything else
    unexpected is a crash: ``crash.log`` under the config's logs_dir, exit 70, and the handler
    itself never raises.
    """
    from deployloop.console import error
    from deployloop.errors import ConfigError, DeployloopError, machine_error

    try:
        code = command()
    except DeployloopError as exc:
        error(str(exc), prefix=not isinstance(exc, ConfigError))
        code = exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        code = EXIT_INTERRUPTED
    except Exception as exc:
        machine = machine_error(exc)
        if machine is not None:
            error(str(machine))
            code = machine.exit_code
        else:
            code = _crashed(exc, config)
    raise typer.Exit(code)


def _crashed(exc: Exception, config: Path | None) -> int:
    """Log an unexpected exception (crash.log, else stderr) and give exit 70; never raises."""
    from deployloop import crash

    try:
        text = _scrubbed(crash.crash_text(traceback.format_exc(), sys.argv))
        written = crash.write_crash_log(text, crash.crash_directories(config))
        where = f"traceback in {written}" if written else "no crash.log could be written"
        crash.report_to_stderr(
            f"deployloop: unexpected error: {type(exc).__name__}: {exc} ({where})\n"
        )
        if written is None:
            crash.report_to_stderr(text)
    except BaseException:  # the handler of last resort must not raise
        pass
    return EXIT_SOFTWARE


def _scrubbed(text: str) -> str:
    """A traceback with the environment's secrets and every known shape masked (no config
    is at hand here); withheld whole rather than written raw if scrubbing itself fails."""
    try:
        from deployloop.redact import Redactor

        return Redactor.from_env(os.environ).redact(text)
    except Exception:  # the crash handler must not crash
        return "(traceback withheld: it could not be scrubbed)\n"


def _show_version(value: bool) -> None:
    if value:
        from deployloop import __version__

        typer.echo(f"deployloop {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Run staging e2e suites phase by phase, file one issue per root cause, retest."""


@app.command()
def run(
    config: ConfigOpt = None,
    budget: Annotated[str | None, typer.Option(help="Time budget, e.g. 8h.")] = None,
    until: Annotated[str | None, typer.Option(help="Stop at this local time, e.g. 07:00.")] = None,
    max_iterations: Annotated[int | None, typer.Option(min=1)] = None,
    phase: Annotated[
        list[str] | None, typer.Option(help="Run only this phase (repeatable).")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One iteration, no waiting.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide issues, write none.")] = False,
    new: Annotated[bool, typer.Option("--new", help="Start a new session, do not resume.")] = False,
    log_file: Annotated[
        Path | None, typer.Option("--log-file", help="Also append the plain lines here.")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="Print only a verdict line, and only on failure.")
    ] = False,
) -> None:
    """Run the test-deploy-retest loop until every gate is green or the budget is spent."""
    from deployloop.commands import run as command

    options = command.RunOptions(
        budget=budget,
        until=until,
        max_iterations=max_iterations,
        phases=tuple(phase or ()),
        once=once,
        dry_run=dry_run,
        new=new,
    )
    _call(lambda: command.run(config, options, command.Output(log_file, quiet)), config)


@app.command()
def validate(config: ConfigOpt = None) -> None:
    """Check the config; one FILE:LINE: message line per problem."""
    from deployloop.commands import validate as command

    _call(lambda: command.run(config), config)


@app.command()
def preflight(config: ConfigOpt = None) -> None:
    """Probe the target: health, version, WebSocket and HTTP probes."""
    from deployloop.commands import preflight as command

    _call(lambda: command.run(config), config)


@app.command()
def results(
    paths: Annotated[list[Path], typer.Argument(help="JUnit XML files or directories.")],
    json_out: JsonOpt = False,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Per failure: its normalized line and the rules fired."),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("-c", "--config", help="Apply this config's [clusters] mask and merge."),
    ] = None,
) -> None:
    """Read JUnit XML: counts, pass rate, p95, failure clusters."""
    from deployloop.commands import results as command

    _call(lambda: command.run(paths, json_out, explain, config))


@app.command()
def status(config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """The current or last session: iteration, phase, gates, issues, budget left."""
    from deployloop.commands import status as command

    _call(lambda: command.run(config, json_out), config)


@app.command()
def report(
    session: Annotated[str | None, typer.Argument(help="Session id (default: latest).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here.")] = None,
    config: ConfigOpt = None,
) -> None:
    """The morning report of a session."""
    from deployloop.commands import report as command

    _call(lambda: command.run(session, fmt, output, config), config)


@app.command()
def demo(
    config: Annotated[
        Path | None,
        typer.Option("-c", "--config", help="An edited demo config (default: shipped)."),
    ] = None,
) -> None:
    """The whole overnight story, self-contained, on this machine."""
    from deployloop.commands import demo as command

    _call(lambda: command.run(config), config)


@app.command()
def schedule(
    config: ConfigOpt = None,
    at: Annotated[str, typer.Option(help="Start time, local, HH:MM.")] = "23:00",
    fmt: Annotated[
        str | None, typer.Option("--format", help="cron or systemd (default both).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Directory (default: the config's).")
    ] = None,
) -> None:
    """Write a crontab line and a systemd service + timer that start this config nightly."""
    from deployloop.commands import schedule as command

    _call(lambda: command.run(config, at, fmt, output), config)


@app.command()
def init(directory: Annotated[Path, typer.Argument()] = Path(".")) -> None:
    """Write a commented starter deployloop.toml."""
    from deployloop.commands import init as command

    _call(lambda: command.run(directory))
