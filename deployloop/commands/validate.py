"""``deployloop validate``: every problem of the config at once, as FILE:LINE: message.

Beyond what ``load`` refuses (and ``run`` refuses at its start too), it checks this machine:
every suite ``cwd`` exists and every program a run line, trigger or version command names is
found where the run will look for it (see ``deployloop.programs``), ``logs_dir`` can be a
directory and the metrics textfile can be written (``unusable_paths``), and apprise can use
every ``[notify]`` URL (``unusable_urls``; apprise is imported only then). It warns (exit 0) about a
run line whose results it could not find: one that does not start pytest and sets no ``junit``,
or one that sets ``PYTEST_ADDOPTS`` itself (over deployloop's own options).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from deployloop import config as config_module
from deployloop.config import Config, SuiteConfig
from deployloop.config_text import Loc, locate_keys, located, problem_at
from deployloop.console import Console
from deployloop.errors import ConfigError
from deployloop.programs import Finding, missing_programs
from deployloop.pytestline import ADDOPTS_HINT, drops_addopts, runs_pytest

UNREADABLE = (
    "warning: this run line does not start pytest and sets no junit = : "
    "its results cannot be found (set junit = to the JUnit XML file it writes)"
)


def run(config_path: Path | None) -> int:
    """0 when the config is good here; ConfigError (exit 2), one line per problem, otherwise."""
    path = config_module.find_config(config_path)
    config = config_module.load(path)  # ConfigError → exit 2 with one line per problem
    lines = locate_keys(path.read_text(encoding="utf-8"))
    findings = [
        *missing_programs(config, os.environ),
        *unusable_paths(config),
        *unusable_urls(config),
    ]
    problems = [problem_at(loc, message, lines) for loc, message in findings]
    if problems:
        raise ConfigError(located(str(path), problems))
    console = Console()
    warnings = [problem_at(loc, UNREADABLE, lines) for loc in _blind(config)]
    warnings += [problem_at(loc, f"warning: {ADDOPTS_HINT}", lines) for loc in _own_addopts(config)]
    for warning in located(str(path), sorted(warnings)):
        console.line(warning)
    suites = sum(len(p.suites) for p in config.phases)
    probes = sum(len(p.probes) for p in config.phases)
    console.line(
        f"{path}: ok — session {config.session.name!r}, {len(config.phases)} phases, "
        f"{suites} suites, {probes} probes, tracker {config.issues.tracker}"
    )
    return 0


def unusable_paths(config: Config) -> list[Finding]:
    """A ``logs_dir`` that cannot be a directory here (a file, or under /proc, which takes no
    new entries), a metrics ``textfile`` whose directory is missing or that is a directory."""
    found: list[Finding] = []
    logs = Path(config.session.logs_dir)
    if logs.exists() and not logs.is_dir():
        found.append((("session", "logs_dir"), f"{logs} exists and is not a directory"))
    elif logs.resolve().is_relative_to("/proc"):
        found.append((("session", "logs_dir"), f"{logs} is under /proc: not a directory for logs"))
    if config.metrics is not None:
        textfile = Path(config.metrics.textfile)
        if textfile.is_dir():
            found.append((("metrics", "textfile"), f"{textfile} is a directory, not a file"))
        elif not textfile.parent.is_dir():
            found.append((("metrics", "textfile"), f"directory {textfile.parent} does not exist"))
    return found


def unusable_urls(config: Config) -> list[Finding]:
    """Each ``[notify]`` URL apprise cannot make a receiver of (an unknown scheme, a missing
    host or token), shown by its scheme only: the rest may be a credential."""
    if config.notify is None:
        return []
    import apprise

    found: list[Finding] = []
    for i, url in enumerate(config.notify.urls):
        with apprise.LogCapture(level=apprise.logging.ERROR):  # type: ignore[no-untyped-call]
            plugin = apprise.Apprise.instantiate(url)  # its own error goes to the capture
        if plugin is None:
            scheme = url.partition("://")[0]
            message = f"apprise cannot use this {scheme}:// URL (see its wiki for the form)"
            found.append((("notify", "urls", i), message))
    return found


def _blind(config: Config) -> list[Loc]:
    """The run lines whose results a run would not find (issue 15 item 7)."""
    return _run_lines(config, lambda suite: not suite.junit and not runs_pytest(suite.run))


def _own_addopts(config: Config) -> list[Loc]:
    """The run lines that set PYTEST_ADDOPTS over deployloop's own options."""
    return _run_lines(config, lambda suite: drops_addopts(suite.run))


def _run_lines(config: Config, flagged: Callable[[SuiteConfig], bool]) -> list[Loc]:
    return [
        ("phase", i, "suite", j, "run")
        for i, phase in enumerate(config.phases)
        for j, suite in enumerate(phase.suites)
        if flagged(suite)
    ]
