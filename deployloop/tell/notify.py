"""Notifications through apprise on the night's transitions, never per iteration.

A message goes out when the night first turns red, turns green again, files a new cause, finds
staging unreachable, or ends (the kinds ``[notify] on`` lists). It carries the verdict, the
failing gates with their measured values, the new and fixed causes with their issue links, the
version and the report's path; its text is scrubbed (the session's Redactor) and made inert for
chat services (no mention, no markup). A receiver that fails is reported and its message kept in
the outbox (``NoticeOutbox``), retried at every iteration's end and at the session's once its
backoff has passed (``Notice.due``), reported once (at its first failure, not per try): never
fatal. One held over from an earlier session goes out labelled with that session and the time
it was queued. A dry run sends nothing and leaves the outbox as it is: it says what it would send
(``DryRun``). apprise (https://github.com/caronc/apprise) is imported only here, on first send.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from deployloop.config_schema import NotifyConfig
from deployloop.events import (
    DryRun,
    Event,
    Health,
    IterationEnd,
    IterationStart,
    NotificationSent,
    Reporter,
    ReportWritten,
    SessionEnd,
)
from deployloop.issues.neutralize import ZWSP, defang
from deployloop.tell.night import Cause, Light, Night
from deployloop.tell.outbox import Notice, NoticeOutbox

MAX_CAUSES = 10  # per list in one message; the rest is "… and N more"
MAX_LINE = 300
MAX_BODY = 3500  # below every chat service's limit (Slack 40 000, Discord 2 000 per part)


@dataclass(frozen=True, slots=True)
class Message:
    notice: str  # red, green, new_cause, session_end, unreachable
    title: str
    body: str


class ApprisePost:
    """Sends one message to one apprise URL; the real receiver behind ``Notifier``."""

    def via(self, url: str) -> str:
        """The URL as apprise shows it with its secrets hidden (``privacy``)."""
        import apprise

        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            return url.partition("://")[0] + "://…"
        shown = str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
        return shown.partition("?")[0]  # apprise's options, not where it went

    def __call__(self, url: str, title: str, body: str) -> str | None:
        """None when the receiver took it, else why not (apprise's own warnings)."""
        import apprise

        capture = apprise.LogCapture(level=apprise.logging.WARNING)  # type: ignore[no-untyped-call]
        with capture as log:
            sender = apprise.Apprise()
            if not sender.add(url):
                return "apprise does not understand this URL"
            if sender.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT):
                return None
            said = [line for line in log.getvalue().splitlines() if line.strip()]
        return (said[-1] if said else "the receiver did not take it")[-MAX_LINE:]


class Notifier:
    """The notification teller: decides on transitions, sends, keeps failures in the outbox."""

    def __init__(
        self,
        config: NotifyConfig,
        name: str,
        outbox: NoticeOutbox,
        reporter: Reporter,
        redact: Callable[[str], str],
        light: Light | None = None,
        post: ApprisePost | None = None,
        dry_run: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.dry_run = dry_run
        self.clock = clock
        self.name = name
        self.outbox = outbox
        self.reporter = reporter
        self.redact = redact
        self.post = post or ApprisePost()
        self._light = light  # the last state a message (or the state) told
        self._fixed: list[Cause] = []  # closed since the last message
        self._told_unreachable = False
        self._end: SessionEnd | None = None
        self._receivers = {NoticeOutbox.receiver(url): url for url in config.urls}

    def on(self, event: Event, night: Night) -> None:
        """Send what ``event`` (already folded into ``night``) calls for."""
        match event:
            case IterationStart():
                self._told_unreachable = False
            case IterationEnd():
                self._fixed += night.fixed_causes
                self.retry(night)
                self._send(self._transition(night), night)
            case Health(ok=False) if not self._told_unreachable:
                self._told_unreachable = True
                self._send(self._unreachable(event, night), night)
            case SessionEnd():
                self._end = event
            case ReportWritten():
                self.close(night)
            case _:
                pass

    def close(self, night: Night) -> None:
        """The session's end message (once), then whatever the outbox still holds."""
        end, self._end = self._end, None
        if end is not None:
            self._send(self._ended(end, night), night)
        self.retry(night)

    # deciding ------------------------------------------------------------------------------
    def _transition(self, night: Night) -> Message | None:
        """First red, green again, or a new cause: the first of these ``on`` asks for."""
        became = night.light if night.light is not self._light else None
        self._light = night.light
        candidates = [became.value] if became else []
        candidates += ["new_cause"] if night.new_causes else []
        notice = next((c for c in candidates if c in self.config.on), None)
        if notice is None:
            return None
        return Message(notice, self._title(notice, night), self._body(night, self._verdict(night)))

    def _title(self, notice: str, night: Night) -> str:
        version = night.version or "an unknown version"
        what = {
            "red": f"RED on {version}",
            "green": f"GREEN on {version}",
            "new_cause": f"new cause on {version}",
        }[notice]
        return f"deployloop {self.name}: {what} (iteration {night.iteration})"

    def _verdict(self, night: Night) -> str:
        if night.light is Light.GREEN:
            return "every gate passed"
        phases = dict.fromkeys(g.phase for g in night.failing_gates)
        return f"gates failing in {', '.join(phases) or 'this iteration'}"

    def _unreachable(self, event: Health, night: Night) -> Message | None:
        if "unreachable" not in self.config.on:
            return None
        title = f"deployloop {self.name}: staging unreachable"
        return Message("unreachable", title, self._lines([f"health check: {event.detail}"], night))

    def _ended(self, end: SessionEnd, night: Night) -> Message | None:
        if "session_end" not in self.config.on:
            return None
        what = f"session ended {end.status} after {end.iterations} iteration(s)"
        title = f"deployloop {self.name}: {what}"
        return Message("session_end", title, self._body(night, f"{end.status}: {end.reason}"))

    # wording -------------------------------------------------------------------------------
    def _body(self, night: Night, verdict: str) -> str:
        lines = [f"verdict: {verdict}"]
        if night.light is not Light.GREEN and night.failing_gates:
            lines += ["failing gates:", *(f"- {g.describe()}" for g in night.failing_gates)]
        lines += _causes("new causes", night.new_causes)
        lines += _causes("fixed causes", self._fixed)
        return self._lines(lines, night)

    def _lines(self, lines: list[str], night: Night) -> str:
        head = [f"version: {night.version or 'unknown'} (iteration {night.iteration})"]
        tail = [f"report: {night.reports[1]}"]
        return "\n".join(_inert(line) for line in [*head, *lines, *tail])[:MAX_BODY]

    # sending -------------------------------------------------------------------------------
    def _send(self, message: Message | None, night: Night) -> None:
        if message is None:
            return
        self._fixed = []
        title, body = self.redact(_inert(message.title)), self.redact(message.body)
        for url in self.config.urls:
            receiver = NoticeOutbox.receiver(url)
            notice = Notice(receiver, message.notice, title, body, session=night.session)
            self._deliver(url, notice, night)

    def retry(self, night: Night) -> None:
        """Send what the outbox holds for this config's receivers and is due, oldest first."""
        pending = [] if self.dry_run else self.outbox.pending()
        now = self.clock()
        due = [notice for notice in pending if notice.due(now)]
        if not due:
            return
        self.outbox.save([notice for notice in pending if not notice.due(now)])
        for notice in due:
            url = self._receivers.get(notice.receiver)
            if url is not None:  # a receiver no longer configured: its messages go with it
                self._deliver(url, notice, night)

    def _deliver(self, url: str, notice: Notice, night: Night) -> None:
        title = _held_over(notice) if notice.session not in ("", night.session) else notice.title
        if self.dry_run:
            via = self.redact(self.post.via(url))
            self.reporter.emit(DryRun(detail=f"would notify {via}: {title}"))
            return
        error = self.post(url, title, notice.body)
        if error is not None:
            error = self.redact(error)
            self.outbox.add(notice.failed(error, self.clock()))
            if notice.attempts:
                return  # reported at its first failure: one line per notice, not per try
        self.reporter.emit(
            NotificationSent(
                notice=notice.notice,
                via=self.redact(self.post.via(url)),
                ok=error is None,
                title=title,
                error=error,
            )
        )


def _held_over(notice: Notice) -> str:
    """The title of a notice from an earlier session, labelled with it and its time."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(notice.queued_at))
    return f"[from session {notice.session}, {when}] {notice.title}"


def _causes(heading: str, causes: Sequence[Cause]) -> list[str]:
    if not causes:
        return []
    lines = [f"{heading}:"]
    for cause in causes[:MAX_CAUSES]:
        number = f"#{cause.number} " if cause.number is not None else ""
        lines.append(f"- {number}{cause.title} {cause.link}".rstrip())
    if len(causes) > MAX_CAUSES:
        lines.append(f"- … and {len(causes) - MAX_CAUSES} more")
    return lines


def _inert(text: str) -> str:
    """One line of untrusted text no chat service turns into a mention, a link or markup:
    GitHub-style mentions and tags are broken (``defang``), and Slack's ``<@U…>`` too."""
    flat = " ".join(text.split())[:MAX_LINE]
    return defang(flat).replace("<@", f"<{ZWSP}@")
