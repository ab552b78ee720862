"""No secret leaves: tokens, credentials and keys are replaced by ``[REDACTED]`` in any text.

One Redactor is built at start-up from the environment and the config's ``${NAME}`` values, and
used for everything that leaves the process: issue titles, bodies and comments, logs, events and
the suites' own output (streamed through :mod:`deployloop.scrub`). It is idempotent: redacting
redacted text changes nothing.

Two kinds of secret are masked:

- **known values** — every value passed in (environment variables named like
  TOKEN/SECRET/KEY/PASSWORD, everything the config interpolates), masked exactly wherever it
  appears, also XML- or JSON-escaped, and also when a line break splits it. Values shorter
  than ``MIN_SECRET`` (6) characters are not masked: "true" or "8080" would wreck the text.
- **shapes** — the ``RULES`` of :mod:`deployloop.secret_shapes`, one per kind, each with a
  test in ``tests/test_redact.py``.
  Vendor prefixes follow the vendors' documented token formats (GitHub, Slack, Stripe, Twilio,
  npm, PyPI, GitLab, Google, AWS, SendGrid, OpenAI, Anthropic) and the kinds detect-secrets
  1.5 ships plugins for. detect-secrets itself was measured at about 360 s for a 64 MB log on
  this machine (scan_line per line, with default plugins): far too slow to run on suite output,
  so the same kinds are matched by hand-written patterns, each behind a cheap substring check.

Speed: those checks are some 40 scans of the text. Where the ``hyperscan`` wheel is installed,
a :class:`~deployloop.screen.Screen` finds every probe and known value in one pass over the
bytes, and the patterns run only on the lines it names (``byte_spans``); the result is the same
as the pure-Python path (``fast=False``, or no wheel), which ``tests/test_screen.py`` checks
(one contrived case aside, stated in :mod:`deployloop.screen`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import AnyStr, TypeVar
from xml.sax.saxutils import escape as xml_escape

from deployloop import screen
from deployloop.screen import Screen, utf8
from deployloop.secret_shapes import RULES, Rule

MASK = "[REDACTED]"
MASK_BYTES = MASK.encode()
ID_TAG_HEX = 6  # hex digits of a test id's mask tag: ``[REDACTED:0a1b2c]``
ID_KEY_BYTES = 32  # HMAC-SHA256 key size (RFC 2104 §3: at least the hash's output length)
Cut = TypeVar("Cut", str, bytes, memoryview)
BODY_LIMIT = 65_000  # GitHub refuses bodies over 65,536 characters
SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
MIN_SECRET = 6  # shorter values ("true", "1") are too common to mask without wrecking the text
SPLIT_PROBE = 8  # a known value split by a line break is looked for where its ends appear

Span = tuple[int, int, int]  # (start of the match with its context, start of the mask, end)


class Redactor:
    """Masks known secret values and the shapes in ``RULES``.

    ``secrets``: exact values to mask (shorter than ``MIN_SECRET`` characters are ignored).
    ``redact(text)`` returns the text with each secret replaced by ``MASK``; ``spans(text)``
    says where, for callers that cut text into pieces, and ``byte_spans(data)`` the same for
    UTF-8 bytes (the streaming scrubber). ``fast=False`` never uses the Hyperscan screen.
    ``id_key`` (``ID_KEY_BYTES`` secret bytes, one per state directory) lets ``redact_id``
    give each secret in a test id its own tag; None masks ids plainly.
    """

    def __init__(
        self, secrets: Iterable[str] = (), *, fast: bool = True, id_key: bytes | None = None
    ) -> None:
        kept = {s for s in secrets if len(s) >= MIN_SECRET and s not in MASK}
        self.fast = fast
        self.id_key = id_key
        self.secrets = tuple(sorted(kept, key=len, reverse=True))
        self._literals = tuple(sorted({v for s in self.secrets for v in _spellings(s)}))
        self._split = tuple((s, _split_pattern(s)) for s in self.secrets)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], extra: Iterable[str | None] = ()) -> Redactor:
        """Secrets: values of variables named like TOKEN/SECRET/KEY/PASSWORD, plus ``extra``
        (the config's interpolated ``${NAME}`` values, a token read from the config)."""
        values = [v for name, v in environ.items() if SECRET_NAME.search(name)]
        values.extend(v for v in extra if v)
        return cls(values)

    def with_secrets(self, extra: Iterable[str | None]) -> Redactor:
        """A Redactor that also masks ``extra`` (e.g. a token read from the config)."""
        return Redactor(
            [*self.secrets, *(v for v in extra if v)], fast=self.fast, id_key=self.id_key
        )

    def with_id_key(self, id_key: bytes | None) -> Redactor:
        """This Redactor with ``id_key`` for ``redact_id`` (the state directory's key)."""
        return Redactor(self.secrets, fast=self.fast, id_key=id_key)

    def redact_id(self, test_id: str) -> str:
        """``test_id`` with each secret replaced by ``[REDACTED:xxxxxx]``: xxxxxx the first
        ``ID_TAG_HEX`` hex digits of HMAC-SHA256(``id_key``, the secret's text) (RFC 2104), so
        two tests whose ids differ only in their secrets keep distinct ids, the same secret
        gives the same tag in every run sharing the key, and the tag tells nothing of the
        secret without the key. Without ``id_key``: ``redact``."""
        if self.id_key is None:
            return self.redact(test_id)
        spans = self._char_spans(test_id)
        if not spans:
            return test_id
        parts = masked_parts(test_id, spans, MASK)
        for i, (_, start, end) in enumerate(spans):
            parts[2 * i + 1] = self.tag(test_id[start:end])
        return "".join(parts)

    def _char_spans(self, text: str) -> list[Span]:
        """``spans(text)``, with the screen deciding first where it can: most texts (a suite's
        thousands of test ids) hold no secret, and the screen says so far faster than the
        rules. Byte offsets are character offsets in ASCII; other text with a find takes the
        rules' own path, as does text with a line break (where the screen may see less than
        the rules: see ``screen``), so an id is tagged exactly as the rules alone tag it."""
        if self._screen is not None and "\n" not in text:
            try:
                found = self.byte_spans(text.encode("utf-8"))
            except UnicodeEncodeError:  # lone surrogates: the rules read the text itself
                return self.spans(text)
            if not found or text.isascii():
                return found
        return self.spans(text)

    def tag(self, secret: str) -> str:
        """The tagged mask of ``secret`` (see ``redact_id``)."""
        key = self.id_key or b""
        digest = hmac.new(key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"{MASK[:-1]}:{digest.hexdigest()[:ID_TAG_HEX]}{MASK[-1]}"

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``MASK``; overlapping finds become one mask."""
        if self._screen is not None:
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: bytes would not decode back the same
                pass
            else:
                spans = self.byte_spans(data)
                if text.isascii():  # byte offsets are character offsets: no decoding back
                    return apply_spans(text, spans)
                return apply_spans(data, spans).decode("utf-8")
        return apply_spans(text, self.spans(text))

    __call__ = redact

    def spans(self, text: str) -> list[Span]:
        """Every secret in ``text`` as ``(context_start, mask_start, end)``, sorted, merged where
        masks overlap or touch. ``context_start`` is where the match began (``password=``):
        a caller cutting the text must not cut between it and ``end``."""
        found = self._literal_spans(text)
        folded = _folded(text)
        for rule in RULES:
            found.extend(_rule_spans(rule, text, folded if rule.folded else text))
        return _merged(found)

    def byte_spans(self, data: bytes | bytearray) -> list[Span]:
        """``spans`` for UTF-8 ``data`` (undecodable bytes are no part of a secret), in byte
        offsets. With the screen, only the lines it names are decoded and searched."""
        lines = self._screen.lines(data) if self._screen is not None else None
        if lines is None:
            text = data.decode("utf-8", "surrogateescape")
            return _in_bytes(text, self.spans(text))
        if not lines:  # the screen saw nothing: most texts, and no rule need run on them
            return []
        # The lines searched as one text. The empty line between them keeps a known value
        # from being found across two lines that were not neighbours.
        texts = [data[start:end].decode("utf-8", "surrogateescape") for start, end in lines]
        starts, at = [], 0
        for text in texts:
            starts.append(at)
            at += len(text) + 2
        found: list[Span] = []
        for start, mask, end in self.spans("\n\n".join(texts)):  # none crosses a line break
            i = bisect_right(starts, start) - 1
            local = (start - starts[i], mask - starts[i], end - starts[i])
            found.extend(_in_bytes(texts[i], [local], lines[i][0]))
        return found

    @cached_property
    def _screen(self) -> Screen | None:
        """Built on first use (importing Hyperscan takes some 50 ms), shared by Redactors
        with the same secrets."""
        if not self.fast or any(not r.probes and not r.screen for r in RULES):
            return None
        probes = [(p, r.folded) for r in RULES if not (r.multiline or r.screen) for p in r.probes]
        probes += [(spelling, False) for spelling in self._literals if spelling not in self.secrets]
        screens = tuple(r.screen for r in RULES if r.screen and not r.multiline)
        whole = tuple(p for r in RULES if r.multiline and not r.screen for p in r.probes)
        crossing = tuple(r.screen for r in RULES if r.screen and r.multiline)
        values = tuple((s, _split_probe(s)) for s in self.secrets)
        return screen.load(tuple(probes), screens, whole, values, crossing)

    def _literal_spans(self, text: str) -> list[Span]:
        found = []
        for value in self._literals:
            at = text.find(value)
            while at >= 0:
                found.append((at, at, at + len(value)))
                at = text.find(value, at + len(value))
        for secret, pattern in self._split:
            # One break leaves half the value whole: its first or its last `probe` characters.
            probe = _split_probe(secret)
            if secret[:probe] in text or secret[-probe:] in text:
                found.extend((m.start(), m.start(), m.end()) for m in pattern.finditer(text))
        return found


def _rule_spans(rule: Rule, text: str, haystack: str) -> Iterable[Span]:
    """Matches of ``rule`` on the lines of ``text`` where ``haystack`` holds one of its probes
    (in all of ``text`` for a rule without probes: its pattern starts with a literal)."""
    if not rule.probes:
        yield from (_span(rule, match) for match in rule.pattern.finditer(text))
        return
    done = 0  # scanned up to here
    for probe in rule.probes:
        at = haystack.find(probe)
        while at >= 0:
            if at >= done:
                start = max(text.rfind("\n", 0, at) + 1, at - rule.lead, done)
                end = len(text) if rule.multiline else _line_end(text, at)
                subject = haystack if rule.match_folded else text
                yield from (_span(rule, m) for m in rule.pattern.finditer(subject, start, end))
                done = max(done, end)
            at = haystack.find(probe, max(at + 1, done))
        done = 0 if len(rule.probes) > 1 else done


def _folded(text: str) -> str:
    """``text`` lower-cased position for position: a letter that lower-cases to two (LATIN
    CAPITAL I WITH DOT) stays as it is, so the positions after it do not drift (and one such
    letter does not leave the whole text unfolded, its keywords in capitals unseen)."""
    folded = text.lower()
    if len(folded) == len(text):
        return folded
    return "".join(low if len(low := char.lower()) == 1 else char for char in text)


def _span(rule: Rule, match: re.Match[str]) -> Span:
    keep = match.end("keep") if "keep" in rule.pattern.groupindex else match.start()
    return match.start(), keep, match.end()


def _line_end(text: str, at: int) -> int:
    end = text.find("\n", at)
    return len(text) if end < 0 else end


def _spellings(secret: str) -> set[str]:
    """The value as written raw, in XML text and attributes, and inside a JSON string."""
    return {
        secret,
        xml_escape(secret, {'"': "&quot;", "'": "&apos;"}),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def _split_probe(secret: str) -> int:
    """How many of a known value's first and last characters are looked for (``SPLIT_PROBE``,
    or half the value when shorter): one break leaves one of the two whole."""
    return min(SPLIT_PROBE, len(secret) // 2)


def _split_pattern(secret: str) -> re.Pattern[str]:
    """The value with a line break (and the next line's indent) allowed between any two chars."""
    return re.compile(r"(?:\r?\n[ \t]*)?".join(re.escape(c) for c in secret))


def _merged(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, mask, end in sorted(spans, key=lambda s: (s[1], s[0])):
        if merged and mask <= merged[-1][2]:
            first, first_mask, last = merged[-1]
            merged[-1] = (min(first, start), first_mask, max(last, end))
        else:
            merged.append((start, mask, end))
    return merged


def _in_bytes(text: str, spans: list[Span], base: int = 0) -> list[Span]:
    """``spans`` of ``text`` as offsets into its UTF-8 bytes (surrogate escapes as the bytes
    they stand for), plus ``base``."""
    if text.isascii():
        return [(start + base, mask + base, end + base) for start, mask, end in spans]
    offsets, at, size = {}, 0, base
    for point in sorted({point for span in spans for point in span}):
        size += len(utf8(text[at:point]))
        offsets[point], at = size, point
    return [(offsets[start], offsets[mask], offsets[end]) for start, mask, end in spans]


def apply_spans(text: AnyStr, spans: Iterable[Span]) -> AnyStr:
    """``text`` (str, or bytes with byte spans) with each span's ``[mask_start, end)``
    replaced by ``MASK``."""
    parts = masked_parts(text, spans, MASK if isinstance(text, str) else MASK_BYTES)
    return text if len(parts) == 1 else text[:0].join(parts)


def masked_parts(text: Cut, spans: Iterable[Span], mask: Cut) -> list[Cut]:
    """The pieces of ``text`` between the spans, with ``mask`` for each span's
    ``[mask_start, end)``: to write out without joining (a memoryview's pieces copy nothing)."""
    parts: list[Cut] = []
    at = 0
    for _, start, end in spans:
        parts.extend((text[at:start], mask))
        at = end
    parts.append(text[at:])
    return parts


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
