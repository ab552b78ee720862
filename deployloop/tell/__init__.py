"""Telling people and systems what the night did (issue 23): notifications (``notify``), hooks
(``hooks``), GitHub commit statuses (``statuses``) and a Prometheus textfile (``metrics``).

Each is a teller: ``on(event, night)`` after the event was folded into the ``Night``, and
``close(night)`` when the run ends. ``Tellers`` is the one sink the daemon adds; ``make_tellers``
builds only the tellers the config asks for and imports nothing heavy otherwise (apprise,
PyGithub and prometheus-client load on first use).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

from deployloop.config import Config
from deployloop.events import Event, Reporter
from deployloop.redact import Redactor
from deployloop.state import Store
from deployloop.tell.night import Light, Night


class Teller(Protocol):
    def on(self, event: Event, night: Night) -> None: ...

    def close(self, night: Night) -> None: ...


class Tellers:
    """The sink: folds each event into the night, then hands it to every teller in turn.

    Add it after the journal and the state's sinks: what a teller reports (``NotificationSent``,
    ``HookRan``...) then follows the event it answers in ``events.jsonl``.
    """

    def __init__(self, night: Night, tellers: list[Teller]) -> None:
        self.night = night
        self.tellers = tellers

    def __call__(self, event: Event) -> None:
        self.night.fold(event)
        for teller in self.tellers:
            teller.on(event, self.night)

    def close(self) -> None:
        for teller in self.tellers:
            teller.close(self.night)


def make_tellers(
    config: Config,
    store: Store,
    session_id: str,
    reporter: Reporter,
    redactor: Redactor,
    stop: threading.Event,
    key: str,
    dry_run: bool = False,
) -> Tellers | None:
    """The tellers ``config`` configures (None when it configures none); ``key`` scopes the
    notification outbox to this config (``session.config_key``). With ``dry_run`` nothing
    leaves the machine and no metrics file is written: each teller says what it would do."""
    tellers: list[Teller] = []
    if config.notify is not None:
        tellers.append(_notifier(config, store, session_id, reporter, redactor, key, dry_run))
    if config.hooks is not None:
        from deployloop.tell.hooks import Hooks

        cwd = Path(config.path).resolve().parent
        tellers.append(Hooks(config.hooks, cwd, reporter, redactor, stop, dry_run))
    if config.target.source_repo is not None:
        tellers.append(_statuses(config, reporter, redactor, stop, dry_run))
    if config.metrics is not None:
        from deployloop.tell.metrics import Metrics

        path = Path(config.metrics.textfile)
        tellers.append(Metrics(path, config.session.name, store, reporter, time.time, dry_run))
    if not tellers:
        return None
    return Tellers(Night(config.issues, Path(config.session.logs_dir)), tellers)


def _notifier(
    config: Config,
    store: Store,
    session_id: str,
    reporter: Reporter,
    redactor: Redactor,
    key: str,
    dry_run: bool,
) -> Teller:
    from deployloop.tell.notify import Notifier
    from deployloop.tell.outbox import NoticeOutbox

    assert config.notify is not None
    finished = [row for row in store.iterations(session_id) if row["ended"] is not None]
    light = None if not finished else (Light.GREEN if finished[-1]["green"] else Light.RED)
    outbox = NoticeOutbox(store.directory, key)
    name, redact = config.session.name, redactor.redact
    return Notifier(config.notify, name, outbox, reporter, redact, light, dry_run=dry_run)


def _statuses(
    config: Config, reporter: Reporter, redactor: Redactor, stop: threading.Event, dry_run: bool
) -> Teller:
    from deployloop.tell.statuses import CommitStatuses, GitHubStatuses

    assert config.target.source_repo is not None
    context = f"deployloop/{config.session.name}"
    clean = redactor.with_secrets([config.issues.token]).redact
    post = GitHubStatuses(config.target.source_repo, context, config, clean, stop)
    return CommitStatuses(post, reporter, config.target.report_url, dry_run)
