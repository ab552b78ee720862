"""The schema of ``deployloop.toml``: one frozen pydantic model per table, every value checked.

``config_values`` holds the bounded value types these models use; ``config`` loads a file into
them (interpolation, moved keys, paths anchored at the config's directory).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

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
    Integer,
    Label,
    Name,
    PathOrUrl,
    PathText,
    ProxyUrl,
    Regex,
    Seconds,
    Text,
    V2Print,
    Wait,
    WsUrl,
)
from deployloop.errors import UsageError
from deployloop.pytestline import DIST_EACH, DIST_EACH_OPTION, runs_pytest

MAX_ITERATIONS = 1_000_000
MAX_RULES = 1000  # merge rules, and prints per rule: far beyond what a person edits
MAX_SHARDS = 256  # pytest runs per suite
MAX_PARALLEL = 64  # suites of one phase at once


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
    max_iterations: Integer = Field(100, ge=1, le=MAX_ITERATIONS)
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
    # The repository the deployed code lives in: commit statuses on tested SHAs (issue 23).
    source_repo: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$", max_length=200)
    # Where the logs directory is published (a commit status links <report_url>/<session>/...).
    report_url: HttpUrl | None = None


class Gates(_Model):
    pass_rate: float = Field(1.0, ge=0.0, le=1.0)
    p95_s: float | None = Field(None, gt=0, le=MAX_DURATION_S)
    max_failures: Integer | None = Field(None, ge=0, le=MAX_COUNT)


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
    expect_tests: Integer | None = Field(None, ge=1, le=MAX_COUNT)
    min_seconds: Seconds | None = None
    timeout: Wait = 1800.0
    # Split into this many pytest runs side by side, by earlier durations (deployloop/shards.py).
    shards: Integer = Field(1, ge=1, le=MAX_SHARDS)

    @field_validator("run", "env")
    @classmethod
    def _not_dist_each(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        """The run line and the suite's ``PYTEST_ADDOPTS`` never ask for ``--dist each``
        (``pytestline.DIST_EACH``): refused here with the config's line, before a night of
        harness errors; the run plugin refuses it however else pytest got it (an ini file)."""
        text = value if isinstance(value, str) else value.get("PYTEST_ADDOPTS", "")
        if DIST_EACH_OPTION.search(text):
            raise ValueError(DIST_EACH)
        return value

    @field_validator("shards")
    @classmethod
    def _shards_need_pytest(cls, shards: int, info: ValidationInfo) -> int:
        """Shards select their tests through deployloop's plugin, which only a run line that
        starts pytest loads (``pytestline.runs_pytest``): any other would run the whole suite
        once per shard, and the counts would add up."""
        run = info.data.get("run")  # absent when ``run`` itself was refused
        if shards > 1 and run is not None and not runs_pytest(run):
            raise ValueError(
                "shards need a run line that starts pytest (its plugin picks each shard's "
                "tests); this one does not, so each shard would run the whole suite"
            )
        return shards

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
    expect_status: Integer = Field(200, ge=100, le=599)
    samples: Integer = Field(1, ge=1, le=1000)
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
    parallel: Integer = Field(1, ge=1, le=MAX_PARALLEL)  # suites run side by side (dispatch.py)
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
    max_new_per_iteration: Integer = Field(5, ge=0, le=1000)
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
    # "These fingerprints are one cause" (as LUCI Analysis lets people edit a cluster's rule):
    # each rule lists two or more v2 prints; clustering.merge joins their clusters.
    merge: list[Annotated[list[V2Print], Field(min_length=2, max_length=MAX_RULES)]] = Field(
        default_factory=list, max_length=MAX_RULES
    )


NoticeKind = Literal["red", "green", "new_cause", "session_end", "unreachable"]


class NotifyConfig(_Model):
    """Notifications through apprise (https://github.com/caronc/apprise/wiki): one URL per
    receiver, sent on the transitions in ``on`` only (deployloop/tell/notify.py)."""

    urls: list[Annotated[str, Field(min_length=3, max_length=2000, pattern=r"^[a-z0-9+]+://")]] = (
        Field(min_length=1, max_length=50)
    )
    on: list[NoticeKind] = Field(default_factory=lambda: list(get_args(NoticeKind)))


class HooksConfig(_Model):
    """Commands run on events, the event's journal JSON on stdin (deployloop/tell/hooks.py)."""

    on_issue: Command | None = None
    on_red: Command | None = None
    on_green: Command | None = None
    on_session_end: Command | None = None
    timeout: Wait = 60.0


class MetricsConfig(_Model):
    """A Prometheus textfile rewritten after every iteration (deployloop/tell/metrics.py);
    relative to the config file's directory."""

    textfile: PathText


class ExecutorConfig(_Model):
    """Where suites and shards run (deployloop/executors/): subprocesses on this machine, or
    tasks on an existing Dask distributed cluster (https://distributed.dask.org). ``ca``,
    ``cert`` and ``key`` (PEM files, for a ``tls://`` scheduler) are absolute after load()."""

    kind: Literal["local", "dask"] = "local"
    scheduler: str | None = Field(None, pattern=r"^(tcp|tls)://[^\s/]+:\d{1,5}$", max_length=300)
    ca: PathText | None = None
    cert: PathText | None = None
    key: PathText | None = None

    @model_validator(mode="after")
    def _fits_kind(self) -> ExecutorConfig:
        tls = (self.ca, self.cert, self.key)
        if self.kind == "local" and (self.scheduler or any(tls)):
            raise ValueError("scheduler, ca, cert and key go with kind = 'dask'")
        if self.kind == "dask" and not self.scheduler:
            raise ValueError("kind = 'dask' needs scheduler = 'tcp://host:port' or 'tls://…'")
        is_tls = bool(self.scheduler and self.scheduler.startswith("tls://"))
        if is_tls and not all(tls):
            raise ValueError("a tls:// scheduler needs ca, cert and key")
        if not is_tls and any(tls):
            raise ValueError("ca, cert and key go with a tls:// scheduler")
        return self


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
    # consecutive reads (spread over ``settle``) that must all answer the new version, healthy,
    # before retesting: a gradual rollout answers old and new side by side (issue 22)
    converge: Integer = Field(1, ge=1, le=100)
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
    to be masked wherever it appears; ``unset``: the variables a lenient load found unset.
    All are set by load(), never by the file."""

    session: SessionConfig = Field(default_factory=SessionConfig)
    target: TargetConfig
    phases: list[PhaseConfig] = Field(alias="phase", min_length=1)
    issues: IssuesConfig = Field(default_factory=IssuesConfig)
    retest: RetestConfig = Field(default_factory=RetestConfig)
    clusters: ClustersConfig = Field(default_factory=ClustersConfig)
    redeploy: RedeployConfig | None = None
    notify: NotifyConfig | None = None
    hooks: HooksConfig | None = None
    metrics: MetricsConfig | None = None
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    path: str = Field("", exclude=True)
    secrets: tuple[str, ...] = Field((), exclude=True)
    unset: tuple[str, ...] = Field((), exclude=True)  # a lenient load's unset variables

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, data: Any) -> Any:
        _refuse(data, ("path", "secrets", "unset"))
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

    @model_validator(mode="after")
    def _statuses_need_a_token(self) -> Config:
        if self.target.source_repo and not self.issues.token:
            raise ValueError(
                "[target] source_repo needs [issues] token: commit statuses are set through the "
                "GitHub API (with [issues] api_url)"
            )
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
    max_iterations: Integer | None = Field(None, ge=1, le=MAX_ITERATIONS)
