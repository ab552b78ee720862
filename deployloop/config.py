"""The config file: found, read, interpolated and validated once into frozen typed objects.

Every problem is reported at once as ``FILE:LINE: message`` so a user fixes a config in one pass:
bad values (``config_values`` states every bound), keys that moved (``[issues] flaky`` is now
``[retest] flaky``), unset variables. Every relative path in it (``logs_dir``, a suite's ``cwd``
and ``junit``, ``[issues] dir``, ``[redeploy] cwd``) is anchored at the config file's directory
when it is loaded, so any command run with ``-c /abs/deployloop.toml`` from any directory sees
the same files, state and lock.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from deployloop.config_paths import finished
from deployloop.config_schema import (
    MAX_ITERATIONS,
    ClustersConfig,
    Config,
    Gates,
    IssuesConfig,
    PhaseConfig,
    ProbeConfig,
    RedeployConfig,
    RetestConfig,
    RunLimits,
    SessionConfig,
    SuiteConfig,
    TargetConfig,
    VersionSource,
)
from deployloop.config_text import (
    Interpolation,
    Loc,
    Problem,
    deep_line,
    describe,
    error_message,
    interpolate,
    locate_keys,
    located,
    take_moved,
)
from deployloop.errors import ConfigError, UsageError
from deployloop.redact import MASK

ENV_VAR = "DEPLOYLOOP_CONFIG"
# What a lenient load puts for an unset variable, tried in turn where the last did not validate:
# empty, then an address in the reserved .invalid domain (RFC 2606) for URL and header keys.
UNSET_FILLS = ("", "https://unset.invalid", "wss://unset.invalid")
SEARCH_PATH = ("deployloop.toml", "config/deployloop.toml")
__all__ = [
    "ENV_VAR",
    "MAX_ITERATIONS",
    "SEARCH_PATH",
    "ClustersConfig",
    "Config",
    "Gates",
    "IssuesConfig",
    "PhaseConfig",
    "ProbeConfig",
    "RedeployConfig",
    "RetestConfig",
    "RunLimits",
    "SessionConfig",
    "SuiteConfig",
    "TargetConfig",
    "VersionSource",
    "check_run_options",
    "find_config",
    "load",
    "parse",
]


def check_run_options(
    budget: str | None, until: str | None, max_iterations: int | None
) -> RunLimits:
    """``--budget``, ``--until`` and ``--max-iterations`` checked; UsageError (exit 2) with one
    line naming each bad option, e.g. ``--budget: not a duration: 'xyz' (...)``."""
    given = {"budget": budget, "until": until, "max_iterations": max_iterations}
    try:
        return RunLimits.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        problems = [
            f"--{str(err['loc'][0]).replace('_', '-')}: {error_message(err)}"
            for err in exc.errors()
        ]
        raise UsageError("; ".join(problems)) from None


def find_config(explicit: str | Path | None = None) -> Path:
    """The config to use: ``-c``, else $DEPLOYLOOP_CONFIG, else the search path."""
    if explicit:
        return _existing(Path(explicit))
    if os.environ.get(ENV_VAR):
        return _existing(Path(os.environ[ENV_VAR]))
    for candidate in SEARCH_PATH:
        if Path(candidate).is_file():
            return Path(candidate)
    raise UsageError(
        f"no config found: pass -c FILE, set ${ENV_VAR}, or create {' or '.join(SEARCH_PATH)}"
        " (deployloop init writes a starter)"
    )


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise UsageError(f"{path}: config file not found")
    return path


def load(
    path: str | Path,
    environ: Mapping[str, str] | None = None,
    base: Path | None = None,
    public: frozenset[str] = frozenset(),
    lenient: bool = False,
) -> Config:
    """Read and validate ``path``; raise ConfigError listing every problem.

    Relative paths in it resolve against ``base``, by default the file's own directory. Values
    of the variables named in ``public`` are not recorded as secrets. ``lenient`` is for the
    commands that talk to neither the target nor the tracker (status, report, schedule): an
    unset ``${NAME}`` is no problem there; see ``parse``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}:1: cannot read: {exc}"]) from None
    environ = os.environ if environ is None else environ
    return parse(text, str(path), environ, base, public, lenient)


def parse(
    text: str,
    source: str,
    environ: Mapping[str, str],
    base: Path | None = None,
    public: frozenset[str] = frozenset(),
    lenient: bool = False,
) -> Config:
    """The Config in ``text`` (read from ``source``); ConfigError with every problem.

    ``lenient``: an unset (or empty credential) ``${NAME}`` leaves its value empty, or, where
    a key cannot be empty, a placeholder from ``UNSET_FILLS`` that no real target answers;
    ``Config.unset`` names those variables. Such a config must never reach the network.
    """
    try:
        return _parse(text, source, environ, base, public, lenient)
    except RecursionError:  # tomllib (or a later walk) on arrays nested thousands deep
        line = deep_line(text)
        raise ConfigError([f"{source}:{line}: invalid TOML: nested too deeply"]) from None


def _parse(
    text: str,
    source: str,
    environ: Mapping[str, str],
    base: Path | None,
    public: frozenset[str],
    lenient: bool,
) -> Config:
    raw = _toml(text, source)
    lines = locate_keys(text)
    kept, problems = take_moved(raw, lines)
    fills: dict[Loc, str] | None = {} if lenient else None
    while True:
        data, found = interpolate(kept, environ, lines, public, fills)
        try:
            config = Config.model_validate(data)
            break
        except ValidationError as exc:
            if fills is None or not _refill(fills, found.unset, exc):
                problems += found.problems
                explained = {line for line, _ in problems}  # an unset variable explains these
                described = (describe(err, lines, found.written) for err in exc.errors())
                problems.extend(p for p in described if p[0] not in explained)
                raise ConfigError(located(source, _masked(problems, found))) from None
    problems += found.problems
    if problems:
        raise ConfigError(located(source, _masked(problems, found)))
    anchor = Path(os.path.abspath(base if base is not None else Path(source).parent))
    unset = sorted({name for names in found.unset.values() for name in names})
    return finished(config, raw, anchor).model_copy(
        update={"path": source, "secrets": tuple(sorted(found.secrets)), "unset": tuple(unset)}
    )


def _masked(problems: list[Problem], found: Interpolation) -> list[Problem]:
    """``problems`` with any value taken from the environment masked: ``describe`` shows a
    bad key as written, this catches a value some other message quotes."""
    values = sorted(found.secrets, key=len, reverse=True)  # not the shapes: ${NAME} stays
    return [(line, functools.reduce(_mask, values, message)) for line, message in problems]


def _mask(text: str, value: str) -> str:
    return text.replace(value, MASK)


def _refill(fills: dict[Loc, str], unset: Mapping[Loc, set[str]], exc: ValidationError) -> bool:
    """Move each unset key an error touches to its next placeholder; False when none is left
    (the error is the file's own, not the missing variable's). An error on a table (a key
    it needs) only moves its unset keys that are still empty."""
    touched = {
        loc
        for err in exc.errors()
        for loc in unset
        if loc[: len(err["loc"])] == err["loc"][: len(loc)]
        and fills.get(loc, "") != UNSET_FILLS[-1]
        and (len(err["loc"]) >= len(loc) or not fills.get(loc))
    }
    for loc in touched:
        fills[loc] = UNSET_FILLS[UNSET_FILLS.index(fills.get(loc, "")) + 1]
    return bool(touched)


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = match.group(1) if match else "1"
        raise ConfigError([f"{source}:{line}: invalid TOML: {exc}"]) from None
