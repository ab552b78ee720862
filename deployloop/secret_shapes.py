"""The secret shapes the Redactor masks (:mod:`deployloop.redact`): one ``Rule`` per kind, each
with a test in ``tests/test_redact.py``. Vendor prefixes follow the vendors' documented token
formats (GitHub, Slack, Stripe, Twilio, npm, PyPI, GitLab, Google, AWS, SendGrid, OpenAI,
Anthropic) and the kinds detect-secrets 1.5 ships plugins for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = r"[A-Za-z0-9._~+/=-]"
# A credential, not an English word: it has a digit or symbol, or a capital after its first letter.
_SECRETISH = rf"{_TOKEN}*[0-9_~+/=-]|[A-Za-z]*\.[A-Za-z0-9]|[A-Za-z][a-z]*[A-Z]"
# Not a mask already (plain, or a test id's tagged one), in any case: rules marked folded
# match on lower-cased text, and a mask scrubbed again must stay as it is.
_NOT_MASKED = r"(?!\[(?i:REDACTED)(?::[0-9a-f]{6})?\])"
# Names whose value is a secret in `name=value`, `name: value`, `"name": "value"` forms. Each
# must end the name (so `max_tokens=5` is left alone); anything may come before (`DB_PASSWORD`).
_SECRET_KEYS = (
    r"passw(?:or)?d|pwd|secret|token|credentials?"
    r"|(?:api|access|secret|private|account|signing|encryption|master)[_-]?key(?:[_-]?id)?"
    r"|apikey|secret[_-]?access[_-]?key|client[_-]?secret"
)
_SPLIT_PREFIX = r"gh[pousr]_|AKIA|ASIA|AIza"  # shapes of one known length (GitHub, AWS, Google)
_SEPARATOR = r"[\"']?[ \t]*(?:=(?!=)|:(?![:=/]))[ \t]*(?P<q>[\"'])?"
_QUOTED_OR_BARE = r"(?(q)[^\"'\n]+|[^\s\"'`,;&<>(){}\[\]]+)"


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of secret. ``pattern`` finds it; its group ``keep``, when present, is context kept
    in front of the mask (a header name, ``password=``). ``probes`` are plain substrings, one of
    which every match contains (in lower case when ``folded``): the text is searched for them
    first, and ``pattern`` runs only on the lines they occur in (from there to the end of the
    text when ``multiline``). Searching for a substring is many times faster than a pattern
    that starts with a word boundary or a choice. ``screen``, for a rule without probes, is a
    regex (PCRE syntax, over UTF-8 bytes, never matching a line break) that the Hyperscan
    screen uses instead: every match of ``pattern`` lies on a line where it matches. A
    ``multiline`` rule's ``screen`` may match a line break: where it matches, the whole text is
    scanned (its probes alone would send nearly every text whole)."""

    kind: str
    pattern: re.Pattern[str]
    probes: tuple[str, ...]
    folded: bool = False  # probes looked for in the lower-cased text
    multiline: bool = False
    match_folded: bool = False  # the pattern, too, runs on the lower-cased text
    lead: int = 1  # how far before a probe a match can start (1: the char a \\b looks at)
    screen: str | None = None


def _rule(
    kind: str,
    pattern: str,
    *probes: str,
    folded: bool = False,
    match_folded: bool = False,
    multiline: bool = False,
    lead: int = 1,
    flags: int = 0,
    screen: str | None = None,
) -> Rule:
    compiled = re.compile(pattern, flags)
    return Rule(kind, compiled, probes, folded, multiline, match_folded, lead, screen)


RULES: tuple[Rule, ...] = (
    _rule(
        "pem private key",
        r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY-----"
        r"(?:.*?-----END (?P=kind)PRIVATE KEY-----|.*\Z)",
        "PRIVATE KEY-----",
        multiline=True,
        lead=64,
        flags=re.DOTALL,
    ),
    _rule(
        "authorization header",
        r"(?P<keep>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
        rf"(?:(?:bearer|basic|token|digest)\s+)?+){_NOT_MASKED}[^\s\"',;]+",
        "authorization",
        folded=True,
        lead=8,
        flags=re.IGNORECASE,
    ),
    _rule(
        "bearer",
        rf"(?P<keep>\b(?i:bearer)\s+)(?={_SECRETISH}){_TOKEN}{{8,}}",
        "bearer",
        folded=True,
    ),
    _rule(
        "cookie header",
        rf"(?P<keep>\b(?:set-)?cookie[\"']?[ \t]*:[ \t]*[\"']?){_NOT_MASKED}[^\s\"'][^\r\n\"']*",
        "cookie",
        folded=True,
        lead=8,
        flags=re.IGNORECASE,
    ),
    _rule(
        "docker config auth",
        r"(?P<keep>\\?\"auth\\?\"[ \t]*:[ \t]*\\?\")[A-Za-z0-9+/]{8,}={0,2}(?=\\?\")",
        '"auth',
    ),
    _rule("basic", rf"(?P<keep>\bBasic\s+)(?={_SECRETISH})[A-Za-z0-9+/]{{8,}}={{0,2}}", "Basic"),
    _rule(
        "keyword assignment",
        rf"(?P<keep>(?:{_SECRET_KEYS}){_SEPARATOR}){_NOT_MASKED}{_QUOTED_OR_BARE}",
        *("passw", "pwd", "secret", "token", "credential", "key"),
        folded=True,
        match_folded=True,  # a case-blind choice of names is many times slower
        lead=24,
    ),
    _rule(
        "url credentials",
        rf"(?P<keep>://[^\s/@:\"'<>]*:){_NOT_MASKED}[^\s/@\"'<>]+(?=@)",
        # not the probe "://": every other log line names a URL
        screen=r"://[^\s/@:\"'<>]*:[^\s/@\"'<>]+@",
    ),
    _rule("github token", r"\bgh[pousr]_[A-Za-z0-9]{20,255}\b", "gh"),
    _rule(
        "token split by a line break",
        # A fixed-length shape cut short at a line's end goes on at the next line's start
        # (a test printing it in two pieces): both pieces are masked, as one.
        rf"(?P<keep>\b(?={_SPLIT_PREFIX})[A-Za-z_]{{4}})"
        r"(?:(?<=gh[pousr]_)[A-Za-z0-9]{0,35}|(?<=AKIA|ASIA)[0-9A-Z]{0,15}"
        r"|(?<=AIza)[0-9A-Za-z_-]{0,34})\r?\n[ \t]*[A-Za-z0-9_-]+",
        *("gh", "AKIA", "ASIA", "AIza"),
        multiline=True,
        screen=rf"(?:{_SPLIT_PREFIX})[0-9A-Za-z_-]{{0,35}}\r?\n",
    ),
    _rule("github fine-grained token", r"\bgithub_pat_[A-Za-z0-9_]{20,255}\b", "github_pat_"),
    _rule("jwt", r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", "eyJ"),
    _rule("aws access key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "AKIA", "ASIA"),
    _rule("slack token", r"\bxox[abposre]-[A-Za-z0-9-]{10,}", "xox"),
    _rule(
        "slack webhook",
        r"(?P<keep>hooks\.slack\.com/services/)[A-Za-z0-9/_-]{10,}",
        "hooks.slack.com/services/",
    ),
    _rule("stripe key", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}", "k_live_", "k_test_"),
    _rule("stripe webhook secret", r"\bwhsec_[A-Za-z0-9]{20,}", "whsec_"),
    _rule("twilio key or account", r"\b(?:SK|AC)[0-9a-fA-F]{32}\b", "SK", "AC"),
    _rule("npm token", r"\bnpm_[A-Za-z0-9]{30,}", "npm_"),
    _rule("pypi token", r"\bpypi-[A-Za-z0-9_-]{40,}", "pypi-"),
    _rule(
        "gitlab token",
        r"\bgl(?:pat|dt|rt|ptt|cbt|soat|ft|imt|oas|agent)-[A-Za-z0-9_-]{20,}",
        "gl",
    ),
    _rule("google api key", r"\bAIza[0-9A-Za-z_-]{35}", "AIza"),
    _rule("sendgrid key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", "SG."),
    _rule("openai or anthropic key", r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}", "sk-"),
)
