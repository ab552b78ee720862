"""Text from tests, suite output or the target made inert before GitHub renders it.

GitHub turns ``@user`` and ``@org/team`` into notifications, ``#123``, ``org/repo#9`` and
``GH-9`` into cross-references (a back-link on someone else's issue), and renders raw HTML
and HTML comments. Untrusted text therefore goes out either inside code (``code_span``,
``issuetext.fenced``), where none of that happens, or through ``defang``, which breaks each
of these constructs with an invisible U+200B ZERO WIDTH SPACE: the text reads the same, but
no mention, reference or tag is recognised (the same device Renovate uses for mentions).

``defuse_markers`` breaks anything shaped like deployloop's hidden marker, so only the one line
deployloop itself writes at the very end of an issue body can ever carry an identity.
Rules from GitHub's "Basic writing and formatting syntax" and "Autolinked references" pages
and from CommonMark 0.31 (raw HTML needs ``<`` directly followed by a tag name, ``!`` or ``?``).
"""

from __future__ import annotations

import re

ZWSP = "\u200b"

_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_REFERENCE = re.compile(r"(#|\bGH-)(?=\d)", re.IGNORECASE)
_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_MARKER_PARTS = (("<!--", f"<!-{ZWSP}-"), ("-->", f"-{ZWSP}->"))
_MARKER_WORD = re.compile(r"deployloop\s*:\s*fingerprint", re.IGNORECASE)


def defang(text: str) -> str:
    """``text`` with no live mention, issue reference or HTML tag, for use outside code
    (titles, list items). Visible characters are unchanged."""
    text = _MENTION.sub(f"@{ZWSP}", text)
    text = _REFERENCE.sub(lambda m: m.group(1) + ZWSP, text)
    return _TAG.sub(f"<{ZWSP}", defuse_markers(text))


def defuse_markers(text: str) -> str:
    """``text`` with every HTML-comment delimiter and marker-shaped word broken."""
    for live, dead in _MARKER_PARTS:
        text = text.replace(live, dead)
    return _MARKER_WORD.sub(lambda m: m.group(0).replace(":", f":{ZWSP}", 1), text)


def code_span(text: str) -> str:
    """``text`` as one inline code span it cannot break out of, whatever backticks it holds
    (CommonMark: a fence longer than any backtick run inside; a space pads a text that starts
    or ends with a backtick). Newlines become spaces: a span lives on one line."""
    flat = " ".join(text.splitlines()) or " "
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat[0] == "`" or flat[-1] == "`" else ""
    return f"{fence}{pad}{flat}{pad}{fence}"
