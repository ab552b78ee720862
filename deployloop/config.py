"""The config file: found, read, interpolated and validated once into frozen typed objects.

Every problem is reported at once as ``FILE:LINE: message`` so a user fixes a config in one pass:
bad values (``config_values`` states every bound), keys that moved (``[issues] flaky`` is now
``[retest] flaky``), unset variables. Every relative path in it (``logs_dir``, a suite's ``cwd``
and ``junit``, ``[issues] dir``, ``[redeploy] cwd``) is anchored at the config file's directory
when it is loaded, so any command run with ``-c /abs/deployloop.toml`` from any directory sees
the same files, state and lock.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from deployloop.config_paths import finished
from deployloop.config_text import (
    deep_line,
    describe,
    error_message,
    interpolate,
    locate_keys,
    located,
    take_moved,
)
from deployloop.config_values import (
    MAX_COUNT,
    MAX_DURATION_S,
    Budget,
    Clock,
    Command,
    Duration,
    EnvName,
    HeaderName,
    HeaderValue,
    HttpUrl,
    Label,
    Name,
    PathOrUrl,
    PathText,
    ProxyUrl,
    Regex,
    Seconds,
    Text,
    Wait,
    WsUrl,
)
from deployloop.errors import ConfigError, UsageError

ENV_VAR = "DEPLOYLOOP_CONFIG"
SEARCH_PATH = ("deployloop.toml", "config/deployloop.toml")
MAX_ITERATIONS = 1_000_000


class _Model(BaseModel):
    # No populate_by_name: the file's spelling (``phase``, ``suite``, ``json``) is the only one.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _refuse(data: Any, derived: tuple[str, ...]) -> None:
    """Keys load() derives (``run_template``, ``secrets``...) cannot be written in the file."""
    if isinstance(data, dict):
        for key in derived:
            if key in data:
                raise ValueError(f"unknown key {key!r}")


class SessionConfig(_Model):
    name: Name = "deployloop"
    budget: Budget | None = None
    until: Clock | None = None
    max_iterations: int = Field(100, ge=1, le=MAX_ITERATIONS)
    logs_dir: PathText = "logs"  # relative: to the config file's directory
    interval: Wait = 60.0  # between iterations when there is no [redeploy] section


class VersionSource(_Model):
    url: PathOrUrl | None = None
    json_path: str | None = Field(None, alias="json")
    header: HeaderName | None = None
    command: Command | None = None

    @model_validator(mode="after")
    def _one_source(self) -> VersionSource:
        if (self.url is None) == (self.command is None):
            raise ValueError("give either url (with json or header) or command")
        if self.command is not None and (self.json_path or self.header):
            raise ValueError("json and header go with url, not command")
        return self


class TargetConfig(_Model):
    base_url: HttpUrl
    health: PathOrUrl | None = None
    version: VersionSource | None = None
    websocket: WsUrl | None = None
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    subprotocols: list[str] = Field(default_factory=list)
    proxy: ProxyUrl | None = None
    request_timeout: Wait = 10.0
    # How long staging may stay unreachable before the run gives up with exit 3.
    unreachable_timeout: Duration = 600.0


class Gates(_Model):
    pass_rate: float = Field(1.0, ge=0.0, le=1.0)
    p95_s: float | None = Field(None, gt=0, le=MAX_DURATION_S)
    max_failures: int | None = Field(None, ge=0, le=MAX_COUNT)


class SuiteConfig(_Model):
    """One suite. ``run`` is interpolated; ``run_template`` is the line as written, with
    ``${NAME}`` unexpanded: what people are shown (equal to ``run`` when built in code).
    ``cwd`` and ``junit`` are absolute after load() (``junit`` is relative to ``cwd``)."""

    name: Name
    run: Command
    run_template: str = ""
    junit: PathText | None = None
    cwd: PathText | None = None
    env: dict[EnvName, Text] = Field(default_factory=dict)
    expect_tests: int | None = Field(None, ge=1, le=MAX_COUNT)
    min_seconds: Seconds | None = None
    timeout: Wait = 1800.0

    @model_validator(mode="before")
    @classmethod
    def _template(cls, data: Any) -> Any:
        _refuse(data, ("run_template",))
        if isinstance(data, dict) and isinstance(data.get("run"), str):
            return {**data, "run_template": data["run"]}
        return data


class ProbeConfig(_Model):
    kind: Literal["http", "websocket"]
    name: Name | None = None
    # http: a path on base_url or a full URL; websocket: a path or ws(s) URL, default
    # target.websocket
    url: PathOrUrl | None = None
    method: str = Field("GET", pattern=r"^[A-Za-z]+$", max_length=20)
    expect_status: int = Field(200, ge=100, le=599)
    samples: int = Field(1, ge=1, le=1000)
    send: str | None = None
    expect_events: list[str] = Field(default_factory=list)
    event_key: str = "type"
    ordered: bool = False
    timeout: Wait = 30.0

    @model_validator(mode="after")
    def _url_fits_kind(self) -> ProbeConfig:
        scheme = (self.url or "").partition("://")[0] if "://" in (self.url or "") else ""
        if scheme and (scheme in ("ws", "wss")) != (self.kind == "websocket"):
            raise ValueError(f"a {self.kind} probe cannot use a {scheme}:// url")
        if self.kind == "websocket" and self.url and not scheme and not self.url.startswith("/"):
            raise ValueError("a websocket probe's url is a ws(s):// URL or a path starting with /")
        return self

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
    token: HeaderValue | None = None
    api_url: HttpUrl = "https://api.github.com"
    labels: list[Label] = Field(default_factory=lambda: ["deployloop"])
    max_new_per_iteration: int = Field(5, ge=0, le=1000)
    broken_threshold: float = Field(0.5, gt=0.0, le=1.0)
    close_on_fix: bool = True
    reopen_days: float = Field(14.0, ge=0, le=3650)
    dir: PathText | None = None  # local tracker: default <logs_dir>/issues
    write_interval: Duration = 1.0  # GitHub asks integrations to space writes by at least 1 s
    retry_backoff: Wait = 2.0  # first wait after a 5xx or a lost answer; doubles each time
    retry_max_wait: Duration = 300.0  # all retries of one GitHub call together

    @model_validator(mode="after")
    def _github_needs(self) -> IssuesConfig:
        if self.tracker == "github" and not (self.repo and self.token):
            raise ValueError("tracker = 'github' needs repo and token")
        return self


class RetestConfig(_Model):
    """How failures are retested within an iteration (moved from ``[issues]``)."""

    rerun_failed: bool = True  # run each failed test once more; passing now = flaky
    flaky: Literal["pass", "fail"] = "pass"  # a flaky test counts as passed, or as failed


class ClustersConfig(_Model):
    """How failures are grouped into root causes."""

    mask: list[Regex] = Field(default_factory=list)  # masked out of messages before grouping


class RedeployConfig(_Model):
    """Waiting for (and optionally triggering) a redeploy. ``trigger_template`` is the trigger
    as written (``${NAME}`` unexpanded), for display; ``cwd`` (where the trigger runs) is
    absolute after load(), by default the config file's directory."""

    trigger: Command | None = None
    trigger_template: str | None = None
    cwd: PathText | None = None
    trigger_timeout: Wait = 1800.0
    poll: Wait = 30.0
    settle: Duration = 60.0
    timeout: Wait = 7200.0
    on_timeout: Literal["retest", "stop"] = "retest"

    @model_validator(mode="before")
    @classmethod
    def _template(cls, data: Any) -> Any:
        _refuse(data, ("trigger_template",))
        if isinstance(data, dict) and isinstance(data.get("trigger"), str):
            return {**data, "trigger_template": data["trigger"]}
        return data


class Config(_Model):
    """A whole config. ``path``: where it was read from; ``secrets``: every value it took from
    the environment through ``${NAME}`` that is at least 6 characters long (redact.MIN_SECRET),
    to be masked wherever it appears. Both are set by load(), never by the file."""

    session: SessionConfig = Field(default_factory=SessionConfig)
    target: TargetConfig
    phases: list[PhaseConfig] = Field(alias="phase", min_length=1)
    issues: IssuesConfig = Field(default_factory=IssuesConfig)
    retest: RetestConfig = Field(default_factory=RetestConfig)
    clusters: ClustersConfig = Field(default_factory=ClustersConfig)
    redeploy: RedeployConfig | None = None
    path: str = Field("", exclude=True)
    secrets: tuple[str, ...] = Field((), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, data: Any) -> Any:
        _refuse(data, ("path", "secrets"))
        return data

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


class RunLimits(_Model):
    """The run's command-line limits, held to the same rules as the config's own keys."""

    budget: Budget | None = None
    until: Clock | None = None
    max_iterations: int | None = Field(None, ge=1, le=MAX_ITERATIONS)


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
) -> Config:
    """Read and validate ``path``; raise ConfigError listing every problem.

    Relative paths in it resolve against ``base``, by default the file's own directory. Values
    of the variables named in ``public`` are not recorded as secrets.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}:1: cannot read: {exc}"]) from None
    return parse(text, str(path), os.environ if environ is None else environ, base, public)


def parse(
    text: str,
    source: str,
    environ: Mapping[str, str],
    base: Path | None = None,
    public: frozenset[str] = frozenset(),
) -> Config:
    """The Config in ``text`` (read from ``source``); ConfigError with every problem."""
    try:
        return _parse(text, source, environ, base, public)
    except RecursionError:  # tomllib (or a later walk) on arrays nested thousands deep
        line = deep_line(text)
        raise ConfigError([f"{source}:{line}: invalid TOML: nested too deeply"]) from None


def _parse(
    text: str, source: str, environ: Mapping[str, str], base: Path | None, public: frozenset[str]
) -> Config:
    raw = _toml(text, source)
    lines = locate_keys(text)
    kept, problems = take_moved(raw, lines)
    data, found = interpolate(kept, environ, lines, public)
    problems += found.problems
    explained = {line for line, _ in problems}  # an unset variable explains its key's errors
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        described = (describe(err, lines) for err in exc.errors())
        problems.extend(p for p in described if p[0] not in explained)
        raise ConfigError(located(source, problems)) from None
    if problems:
        raise ConfigError(located(source, problems))
    anchor = Path(os.path.abspath(base if base is not None else Path(source).parent))
    return finished(config, raw, anchor).model_copy(
        update={"path": source, "secrets": tuple(sorted(found.secrets))}
    )


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = match.group(1) if match else "1"
        raise ConfigError([f"{source}:{line}: invalid TOML: {exc}"]) from None
