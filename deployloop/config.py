"""The config file: found, read, interpolated and validated once into frozen typed objects.

Every problem is reported at once as ``FILE:LINE: message`` so a user fixes a config in one pass.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from deployloop.durations import parse_clock, parse_duration
from deployloop.errors import ConfigError, UsageError

ENV_VAR = "DEPLOYLOOP_CONFIG"
SEARCH_PATH = ("deployloop.toml", "config/deployloop.toml")

Duration = Annotated[float, BeforeValidator(parse_duration)]
Clock = Annotated[dt.time, BeforeValidator(parse_clock)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=80)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SessionConfig(_Model):
    name: Name = "deployloop"
    budget: Duration | None = None
    until: Clock | None = None
    max_iterations: int = Field(100, ge=1)
    logs_dir: str = "logs"
    interval: Duration = 60.0  # between iterations when there is no [redeploy] section


class VersionSource(_Model):
    url: str | None = None
    json_path: str | None = Field(None, alias="json")
    header: str | None = None
    command: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> VersionSource:
        if (self.url is None) == (self.command is None):
            raise ValueError("give either url (with json or header) or command")
        if self.command is not None and (self.json_path or self.header):
            raise ValueError("json and header go with url, not command")
        return self


class TargetConfig(_Model):
    base_url: str = Field(pattern=r"^https?://")
    health: str | None = None
    version: VersionSource | None = None
    websocket: str | None = Field(None, pattern=r"^wss?://")
    headers: dict[str, str] = Field(default_factory=dict)
    subprotocols: list[str] = Field(default_factory=list)
    proxy: str | None = None
    request_timeout: Duration = 10.0
    # How long staging may stay unreachable before the run gives up with exit 3.
    unreachable_timeout: Duration = 600.0


class Gates(_Model):
    pass_rate: float = Field(1.0, ge=0.0, le=1.0)
    p95_s: float | None = Field(None, gt=0)
    max_failures: int | None = Field(None, ge=0)


class SuiteConfig(_Model):
    name: Name
    run: str = Field(min_length=1)
    junit: str | None = None
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    expect_tests: int | None = Field(None, ge=1)
    min_seconds: float | None = Field(None, ge=0)
    timeout: Duration = 1800.0


class ProbeConfig(_Model):
    kind: Literal["http", "websocket"]
    name: Name | None = None
    url: str | None = (
        None  # http: a path on base_url or a full URL; websocket: default target.websocket
    )
    method: str = "GET"
    expect_status: int = 200
    samples: int = Field(1, ge=1, le=1000)
    send: str | None = None
    expect_events: list[str] = Field(default_factory=list)
    event_key: str = "type"
    ordered: bool = False
    timeout: Duration = 30.0

    @property
    def label(self) -> str:
        return self.name or f"{self.kind}:{self.url or 'default'}"


class PhaseConfig(_Model):
    name: Name
    priority: str | None = None
    fail_fast: bool = False
    gates: Gates = Field(default_factory=Gates)
    suites: list[SuiteConfig] = Field(default_factory=list, alias="suite")
    probes: list[ProbeConfig] = Field(default_factory=list, alias="probe")

    @model_validator(mode="after")
    def _has_work(self) -> PhaseConfig:
        if not self.suites and not self.probes:
            raise ValueError("a phase needs at least one [[phase.suite]] or [[phase.probe]]")
        return self


class IssuesConfig(_Model):
    tracker: Literal["local", "github"] = "local"
    repo: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$")
    token: str | None = None
    api_url: str = "https://api.github.com"
    labels: list[str] = Field(default_factory=lambda: ["deployloop"])
    max_new_per_iteration: int = Field(5, ge=0)
    mask: list[str] = Field(default_factory=list)
    broken_threshold: float = Field(0.5, gt=0.0, le=1.0)
    flaky: Literal["pass", "fail"] = "pass"
    rerun_failed: bool = True
    close_on_fix: bool = True
    reopen_days: float = Field(14.0, ge=0)
    dir: str | None = None  # local tracker: default <logs_dir>/issues
    write_interval: Duration = 1.0  # GitHub asks integrations to space writes by at least 1 s
    retry_backoff: Duration = 2.0  # first wait after a 5xx or a lost answer; doubles each time
    retry_max_wait: Duration = 300.0  # all retries of one GitHub call together

    @model_validator(mode="after")
    def _github_needs(self) -> IssuesConfig:
        if self.tracker == "github" and not (self.repo and self.token):
            raise ValueError("tracker = 'github' needs repo and token")
        for pattern in self.mask:
            re.compile(pattern)
        return self


class RedeployConfig(_Model):
    trigger: str | None = None
    trigger_timeout: Duration = 1800.0
    poll: Duration = 30.0
    settle: Duration = 60.0
    timeout: Duration = 7200.0
    on_timeout: Literal["retest", "stop"] = "retest"


class Config(_Model):
    session: SessionConfig = Field(default_factory=SessionConfig)
    target: TargetConfig
    phases: list[PhaseConfig] = Field(alias="phase", min_length=1)
    issues: IssuesConfig = Field(default_factory=IssuesConfig)
    redeploy: RedeployConfig | None = None
    path: str = Field("", exclude=True)  # where it was read from; set by load()

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        phases = [p.name for p in self.phases]
        if len(phases) != len(set(phases)):
            raise ValueError("phase names repeat")
        # suite names name the files under logs/<session>/<iteration>/, so they must be unique
        suites = [s.name for p in self.phases for s in p.suites]
        if len(suites) != len(set(suites)):
            raise ValueError("suite names repeat (they name the log files, so must be unique)")
        return self

    def phase(self, name: str) -> PhaseConfig:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise UsageError(f"no phase named {name!r} (have: {', '.join(self.phase_names)})")

    @property
    def phase_names(self) -> list[str]:
        return [p.name for p in self.phases]


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


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate ``path``; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}:1: cannot read: {exc}"]) from None
    return parse(text, str(path), os.environ if environ is None else environ)


def parse(text: str, source: str, environ: Mapping[str, str]) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = match.group(1) if match else "1"
        raise ConfigError([f"{source}:{line}: invalid TOML: {exc}"]) from None
    lines = locate_keys(text)
    problems: list[tuple[int, str]] = []
    data = _interpolate(raw, (), environ, lines, problems)
    unset = {line for line, _ in problems}  # an unset variable explains its key's other errors
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        described = (_describe(err, lines) for err in exc.errors())
        problems.extend(p for p in described if p[0] not in unset)
        config = None
    if problems or config is None:
        ordered = sorted(set(problems))
        raise ConfigError([f"{source}:{line}: {message}" for line, message in ordered])
    return config.model_copy(update={"path": source})


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(
    value: Any,
    loc: tuple[str | int, ...],
    environ: Mapping[str, str],
    lines: Mapping[tuple[str | int, ...], int],
    problems: list[tuple[int, str]],
) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*loc, k), environ, lines, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), environ, lines, problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        problems.append(
            (_line_of(loc, lines), f"{_dotted(loc)}: environment variable ${{{name}}} is not set")
        )
        return ""

    return _VAR.sub(substitute, value)


def _describe(error: Any, lines: Mapping[tuple[str | int, ...], int]) -> tuple[int, str]:
    loc = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = f"missing required key {loc[-1]!r}"
    elif error["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
    where = _dotted(loc)
    return _line_of(loc, lines), f"{where}: {message}" if where else message


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(loc: tuple[str | int, ...], lines: Mapping[tuple[str | int, ...], int]) -> int:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\"'-]+)\s*=\s*(.*)$")
_INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_\"'-]+)\s*=")


def locate_keys(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each key path (as pydantic reports it, list indices included) to its line number.

    tomllib keeps no positions, so this scans the few TOML forms a config uses: table and
    array-of-table headers, ``key = value`` lines, and one level of inline table.
    """
    found: dict[tuple[str | int, ...], int] = {}
    arrays: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _resolve(_split_key(header.group(2)), arrays)
            if header.group(1) == "[[":
                arrays[table] = arrays.get(table, -1) + 1
                table = (*table, arrays[table])
            found.setdefault(table, number)
            continue
        for path in _keys_on_line(line, table):
            found.setdefault(path, number)
    return found


def _keys_on_line(line: str, table: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    match = _KEY.match(line)
    if not match or line.lstrip().startswith("#"):
        return
    key = (*table, *_split_key(match.group(1)))
    yield key
    value = match.group(2)
    if value.startswith("{"):
        for inner in _INLINE_KEY.findall(value):
            yield (*key, inner.strip("\"'"))


def _split_key(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in dotted.split(".")]


def _resolve(
    parts: list[str], arrays: Mapping[tuple[str | int, ...], int]
) -> tuple[str | int, ...]:
    path: tuple[str | int, ...] = ()
    for index, part in enumerate(parts):
        path = (*path, part)
        if path in arrays and index < len(parts) - 1:
            path = (*path, arrays[path])
    return path
