"""What the tellers (notifications, hooks, commit statuses, metrics) know of the night so far,
folded from the event stream: the session, the iteration under way, its failing gates and the
causes it filed or closed, how the last iteration ended.

Plain data, no side effect: ``Night.fold`` is called with every event before any teller sees it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from deployloop.config import IssuesConfig
from deployloop.events import (
    Event,
    IssueDone,
    IterationEnd,
    IterationStart,
    PhaseEnd,
    SessionStart,
    Waiting,
)
from deployloop.models import Verdict

NEW_ACTIONS = frozenset({"created", "reopened"})  # a cause that needs someone (again)


class Light(enum.Enum):
    """How the last finished iteration ended."""

    RED = "red"
    GREEN = "green"


@dataclass(frozen=True, slots=True)
class Cause:
    """A root cause's issue as the tellers show it: its number, title and a link to it."""

    number: int | None
    title: str
    fingerprint: str
    link: str


@dataclass(frozen=True, slots=True)
class FailingGate:
    phase: str
    verdict: Verdict

    def describe(self) -> str:
        """``phase gate: measured (threshold …)``, e.g.
        ``api pass_rate: 50.0% (1/2) (threshold ≥ 100%)``."""
        v = self.verdict
        text = f"{self.phase} {v.gate}: {v.measured}"
        return f"{text} (threshold {v.threshold})" if v.threshold else text


@dataclass
class Night:
    """The night so far; ``fold`` keeps it current. Times are wall seconds (``time.time``)."""

    issues: IssuesConfig
    logs_dir: Path  # [session] logs_dir: the local tracker's default home
    session: str = ""
    directory: Path = Path()
    started: float = 0.0
    deadline: float | None = None
    max_iterations: int = 0
    iteration: int = 0
    version: str | None = None
    phases: list[PhaseEnd] = field(default_factory=list)  # this iteration's judged phases
    new_causes: list[Cause] = field(default_factory=list)  # filed or reopened this iteration
    fixed_causes: list[Cause] = field(default_factory=list)  # closed this iteration
    light: Light | None = None  # the last finished iteration's
    last_green: float | None = None
    filed: int = 0  # issues created this run
    closed: int = 0
    waiting_since: float | None = None
    last_wait_s: float | None = None  # the last redeploy wait, in seconds

    @property
    def failing_gates(self) -> list[FailingGate]:
        """This iteration's failing gates, phase by phase."""
        return [FailingGate(p.phase, v) for p in self.phases for v in p.gates if not v.passed]

    @property
    def reports(self) -> tuple[Path, Path]:
        """Where the morning report is written at the end (markdown, HTML)."""
        return self.directory / "report.md", self.directory / "report.html"

    def fold(self, event: Event) -> None:
        """Take ``event`` into account."""
        match event:
            case SessionStart():
                self.session, self.directory = event.session, Path(event.logs_dir)
                self.started, self.deadline = event.ts, event.deadline
                self.max_iterations = event.max_iterations
            case IterationStart():
                self._begin(event)
            case PhaseEnd():
                self.phases.append(event)
            case IssueDone(dry_run=False):
                self._issue(event)
            case IterationEnd():
                self.light = Light.GREEN if event.green else Light.RED
                self.last_green = event.ts if event.green else self.last_green
            case Waiting() if self.waiting_since is None:
                self.waiting_since = event.ts
            case _:
                pass

    def _begin(self, event: IterationStart) -> None:
        self.iteration, self.version = event.iteration, event.version
        self.phases, self.new_causes, self.fixed_causes = [], [], []
        if self.waiting_since is not None:
            self.last_wait_s = max(0.0, event.ts - self.waiting_since)
            self.waiting_since = None

    def _issue(self, event: IssueDone) -> None:
        cause = Cause(event.number, event.title, event.fingerprint, self.link(event.number))
        if event.action in NEW_ACTIONS:
            self.new_causes.append(cause)
            self.filed += event.action == "created"
        elif event.action == "closed":
            self.fixed_causes.append(cause)
            self.closed += 1

    def link(self, number: int | None) -> str:
        """Where issue ``number`` is read: its GitHub page, or the local tracker's file."""
        if number is None:
            return ""
        return issue_link(self.issues, self.logs_dir, number)


def issue_link(issues: IssuesConfig, logs_dir: Path, number: int) -> str:
    """The web page of GitHub issue ``number`` (github.com, GitHub Enterprise's ``/api/v3``,
    or an API served at the web root), or the local tracker's markdown file for it."""
    if issues.tracker == "github":
        api = issues.api_url.rstrip("/")
        web = {"https://api.github.com": "https://github.com"}.get(api, api.removesuffix("/api/v3"))
        return f"{web}/{issues.repo}/issues/{number}"
    directory = Path(issues.dir) if issues.dir else logs_dir / "issues"
    found = sorted(directory.glob(f"{number:04d}-*.md"))
    return str(found[0] if found else directory)
