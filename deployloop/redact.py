"""No secret leaves: tokens, credentials and keys are replaced by ``[REDACTED]`` in any text.

One Redactor is built from the environment at start-up and used for everything that leaves the
process: issue titles, bodies and comments, logs and events. It is idempotent: redacting
redacted text changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "[REDACTED]"
BODY_LIMIT = 65_000  # GitHub refuses bodies over 65,536 characters
SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
MIN_SECRET = 6  # shorter values ("true", "1") are too common to mask without wrecking the text

_TOKEN = r"[A-Za-z0-9._~+/=-]"
# A credential, not an English word: it has a digit or symbol, or a capital after its first letter.
_SECRETISH = rf"{_TOKEN}*[0-9_~+/=-]|[A-Za-z]*\.[A-Za-z0-9]|[A-Za-z][a-z]*[A-Z]"
# Each pattern's group "keep" (when present) is text to keep in front of the mask.
PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY-----"
        r"(?:.*?-----END (?P=kind)PRIVATE KEY-----|.*\Z)",
        re.DOTALL,
    ),
    re.compile(
        r"(?P<keep>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
        r"(?:(?:bearer|basic|token|digest)\s+)?+)(?!\[REDACTED\])[^\s\"',;]+",
        re.IGNORECASE,
    ),
    re.compile(rf"(?P<keep>\b(?i:bearer)\s+)(?={_SECRETISH}){_TOKEN}{{8,}}"),
    re.compile(rf"(?P<keep>\bBasic\s+)(?={_SECRETISH})[A-Za-z0-9+/]{{8,}}={{0,2}}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,255}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,255}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(
        r"(?P<keep>\baws_secret_access_key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{16,}",
        re.IGNORECASE,
    ),
)


class Redactor:
    """Masks known secret shapes and the literal values of secret environment variables."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        kept = {s for s in secrets if len(s) >= MIN_SECRET and s not in MASK}
        self.secrets = tuple(sorted(kept, key=len, reverse=True))
        self._literal = (
            re.compile("|".join(re.escape(s) for s in self.secrets)) if self.secrets else None
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], extra: Iterable[str | None] = ()) -> Redactor:
        """Secrets: values of variables named like TOKEN/SECRET/KEY/PASSWORD, plus ``extra``."""
        values = [v for name, v in environ.items() if SECRET_NAME.search(name)]
        values.extend(v for v in extra if v)
        return cls(values)

    def with_secrets(self, extra: Iterable[str | None]) -> Redactor:
        """A Redactor that also masks ``extra`` (e.g. a token read from the config)."""
        return Redactor([*self.secrets, *(v for v in extra if v)])

    def redact(self, text: str) -> str:
        if self._literal is not None:
            text = self._literal.sub(MASK, text)
        for pattern in PATTERNS:
            text = pattern.sub(_masked, text)
        return text

    __call__ = redact


def _masked(match: re.Match[str]) -> str:
    keep = match.groupdict().get("keep")
    return f"{keep}{MASK}" if keep else MASK


_TRAILING_MARKERS = re.compile(r"(?:\s*<!-- deployloop:[^>]*-->)+\s*\Z")


def truncate_body(text: str, limit: int = BODY_LIMIT) -> str:
    """Keep ``text`` under ``limit`` characters, with a note, a closed code fence and the
    trailing hidden markers intact (the dedupe marker must survive truncation)."""
    if len(text) <= limit:
        return text
    found = _TRAILING_MARKERS.search(text)
    tail = found.group(0) if found else ""
    head = text[: len(text) - len(tail)]
    omitted = len(head)
    note = "\n\n… [truncated by deployloop: {} characters omitted]\n"
    room = limit - len(tail) - len(note) - 16
    head = head[: max(room, 0)]
    omitted -= len(head)
    fence = "\n```" if _open_fence(head) else ""
    return f"{head}{fence}{note.format(omitted)}{tail}"


def _open_fence(text: str) -> bool:
    """Whether ``text`` ends inside a ``` code block (an odd number of fence lines)."""
    fences = re.findall(r"^\s*```", text, flags=re.MULTILINE)
    return len(fences) % 2 == 1
