"""The local tracker: one markdown file per issue under ``<logs_dir>/issues/``.

Same lifecycle as GitHub (numbers increase, the marker dedupes, close and reopen with a comment)
so a team without a token — and the demo — sees exactly what would be filed. Every write goes
through a temporary file and ``os.replace``; a new issue claims its number with ``os.link``,
which fails rather than overwrite when two writers race.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from deployloop.atomic import temp_beside, write_atomic
from deployloop.errors import TrackerError
from deployloop.issues.tracker import Issue, by_fingerprint, marker_of, remark
from deployloop.redact import Redactor

_NAME = re.compile(r"^(\d{4,})-[a-z0-9-]*\.md$")
_FIELD = re.compile(r"^- (\w+): (.*)$")
_SLUG = re.compile(r"[^a-z0-9]+")
_COMMENT_START = "---\n\n**Comment** "


class LocalTracker:
    """The Tracker protocol over markdown files in ``directory`` (see the module docstring)."""

    name = "local"

    def __init__(self, directory: str | Path, redactor: Redactor | None = None) -> None:
        self.directory = Path(directory)
        self.redactor = redactor or Redactor()
        self._cache: dict[str, Issue] | None = None

    # reading --------------------------------------------------------------------------------
    def existing(self) -> dict[str, Issue]:
        if self._cache is None:
            self._cache = by_fingerprint([self._read(path) for path in self._files().values()])
        return dict(self._cache)

    def refresh(self) -> None:
        self._cache = None

    def issue(self, number: int) -> Issue:
        return self._read(self._path(number))

    def text(self, number: int) -> str:
        """The whole markdown file of issue ``number``."""
        return self._path(number).read_text(encoding="utf-8")

    def _files(self) -> dict[int, Path]:
        if not self.directory.is_dir():
            return {}
        found = (_NAME.match(p.name) for p in self.directory.iterdir())
        return {int(m.group(1)): self.directory / m.group(0) for m in found if m}

    def _path(self, number: int) -> Path:
        path = self._files().get(number)
        if path is None:
            raise TrackerError(f"local tracker: no issue #{number} in {self.directory}")
        return path

    def _read(self, path: Path) -> Issue:
        text = path.read_text(encoding="utf-8")
        head, _, _ = text.partition("\n\n---\n")
        fields = {m[1]: m[2] for line in head.splitlines() if (m := _FIELD.match(line))}
        title = head.splitlines()[0].removeprefix("# ") if head else ""
        labels = tuple(x.strip() for x in fields.get("labels", "").split(",") if x.strip())
        closed = fields.get("closed", "—")
        # The head is deployloop's alone; older files keep the marker at the end of the body.
        body = text.partition("\n\n---\n\n")[2].split(_COMMENT_START, 1)[0]
        return Issue(
            number=int(path.name.split("-", 1)[0]),
            title=title,
            state="closed" if fields.get("state") == "closed" else "open",
            fingerprint=fields.get("fingerprint") or marker_of(body),
            labels=labels,
            url=path.resolve().as_uri(),
            closed_at=None if closed == "—" else closed,
        )

    # writing --------------------------------------------------------------------------------
    def create(self, title: str, body: str, labels: tuple[str, ...]) -> Issue:
        self.directory.mkdir(parents=True, exist_ok=True)
        title, body = self.redactor.redact(title), self.redactor.redact(body)
        text = _render(title, labels, body, marker_of(body))
        number = max(self._files(), default=0) + 1
        while not self._claim(number, title, text):
            number += 1
        issue = self._read(self._path(number))
        if self._cache is not None and issue.fingerprint:
            self._cache[issue.fingerprint] = issue
        return issue

    def comment(self, number: int, body: str, *, verify: bool = False) -> None:
        path = self._path(number)
        body = self.redactor.redact(body).rstrip()
        text = path.read_text(encoding="utf-8").rstrip("\n")
        if verify and f"\n{body}\n" in f"{text}\n":
            return
        _write(path, f"{text}\n\n{_comment(body)}")

    def close(self, number: int, comment: str, *, verify: bool = False) -> None:
        self._set_state(number, "closed", _now())
        self.comment(number, comment, verify=verify)

    def reopen(self, number: int, comment: str, *, verify: bool = False) -> None:
        self._set_state(number, "open", "—")
        self.comment(number, comment, verify=verify)

    def rekey(self, number: int, old: str, new: str) -> None:
        """Re-mark the head's ``fingerprint`` field and the body's marker line."""
        path = self._path(number)
        head, sep, rest = path.read_text(encoding="utf-8").partition("\n\n---\n\n")
        body, cut, comments = rest.partition(_COMMENT_START)
        body = remark(body, old, new) or body
        field = re.compile(rf"(?m)^- fingerprint: {re.escape(old)}$")
        _write(
            path, field.sub(f"- fingerprint: {new}", head, count=1) + sep + body + cut + comments
        )
        if self._cache is not None:
            self._cache.pop(old, None)
            self._cache[new] = self._read(path)

    def dispose(self) -> None:
        self._cache = None

    def warnings(self) -> list[str]:
        """Nothing to warn about: files take every label."""
        return []

    def _claim(self, number: int, title: str, text: str) -> bool:
        """Write issue ``number`` unless another writer took that number first."""
        final = self.directory / f"{number:04d}-{_slug(title)}.md"
        if number in self._files():
            return False
        tmp = temp_beside(final, text, mode=0o600)
        try:
            os.link(tmp, final)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    def _set_state(self, number: int, state: str, closed: str) -> None:
        path = self._path(number)
        head, sep, rest = path.read_text(encoding="utf-8").partition("\n\n---\n")
        head = re.sub(r"(?m)^- state: .*$", f"- state: {state}", head, count=1)
        head = re.sub(r"(?m)^- closed: .*$", f"- closed: {closed}", head, count=1)
        _write(path, head + sep + rest)
        if self._cache is not None:
            issue = self._read(path)
            if issue.fingerprint:
                self._cache[issue.fingerprint] = issue


def _render(title: str, labels: tuple[str, ...], body: str, fingerprint: str | None) -> str:
    head = [
        f"# {title.replace(chr(10), ' ')}",
        "",
        "- state: open",
        f"- labels: {', '.join(labels)}",
        f"- created: {_now()}",
        "- closed: —",
        *([f"- fingerprint: {fingerprint}"] if fingerprint else []),
    ]
    return "\n".join(head) + "\n\n---\n\n" + body.rstrip("\n") + "\n"


def _comment(body: str) -> str:
    return f"{_COMMENT_START}({_now()}):\n\n{body.rstrip()}\n"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _slug(title: str) -> str:
    words = title.removeprefix("[deployloop]").rsplit(" — ", 1)[0]  # the count changes: drop it
    words = _SLUG.sub("-", words.lower()).strip("-")
    return words[:50].rstrip("-") or "issue"


def _write(path: Path, text: str) -> None:
    write_atomic(path, text, mode=0o600)
