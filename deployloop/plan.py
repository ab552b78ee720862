"""What an iteration will run: the selected phases, and which tests to retest first."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from deployloop.config import Config, PhaseConfig
from deployloop.models import SuiteRun
from deployloop.pytestline import runs_pytest


@dataclass(frozen=True, slots=True)
class Plan:
    phases: tuple[PhaseConfig, ...]
    once: bool = False
    dry_run: bool = False


def build_plan(
    config: Config, phases: Sequence[str] = (), once: bool = False, dry_run: bool = False
) -> Plan:
    """Phases in config order; ``--phase`` narrows them (unknown names are a usage error)."""
    chosen = [config.phase(name) for name in phases]  # raises UsageError for an unknown name
    selected = tuple(p for p in config.phases if not phases or p in chosen)
    return Plan(selected, once=once, dry_run=dry_run)


def failed_tests(runs: Iterable[SuiteRun]) -> dict[str, tuple[str, ...]]:
    """Suite name → node ids of its broken tests, for suites that can rerun a selection; a
    module that failed to collect is its file's path (``junit_fields.collect_error_file``)."""
    out: dict[str, dict[str, None]] = {}  # an ordered set: first-seen order, each id once
    for run in runs:
        for case in run.cases:
            if case.broken and ("::" in case.id or case.id.endswith(".py")):
                out.setdefault(run.suite, {})[case.id] = None
    return {suite: tuple(ids) for suite, ids in out.items()}


def selectable(phase: PhaseConfig, suite_name: str) -> bool:
    """Only pytest suites can be told to run just some tests (behind shell syntax too: the
    selection reaches pytest through deployloop's plugin, not the command line)."""
    suite = next((s for s in phase.suites if s.name == suite_name), None)
    return suite is not None and runs_pytest(suite.run)
