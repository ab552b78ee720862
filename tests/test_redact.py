"""Redaction: no token, credential or key in anything deployloop posts or logs."""

from __future__ import annotations

import pytest

from deployloop.issues.tracker import marker
from deployloop.redact import MASK, Redactor, truncate_body

GH_TOKEN = "ghp_" + "A1b2" * 9


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"token {GH_TOKEN} used", GH_TOKEN),
        ("gho_" + "x" * 36, "gho_"),
        ("ghs_" + "Z9" * 18, "ghs_"),
        ("github_pat_11ABCDEFG0_" + "q" * 40, "github_pat_"),
        ("Authorization: Bearer abc.def-123", "abc.def-123"),
        ("{'Authorization': 'token s3cr3t-value'}", "s3cr3t-value"),
        ("curl -H 'authorization: Basic dXNlcjpwYXNz'", "dXNlcjpwYXNz"),
        ("sent Bearer Zm9vYmFyYmF6cXV4", "Zm9vYmFyYmF6cXV4"),
        ("jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end", "eyJzdWIiOiIxIn0"),
        ("key AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
        ("log cut: -----BEGIN PRIVATE KEY-----\nMIIEvQ truncated", "MIIEvQ"),
    ],
)
def test_known_secret_shapes_are_masked(text: str, secret: str) -> None:
    """Each secret shape is replaced by the mask wherever it appears."""
    out = Redactor().redact(text)
    assert secret not in out
    assert MASK in out


def test_header_names_and_schemes_stay_readable() -> None:
    """Only the value goes: a reader still sees which header and scheme leaked."""
    out = Redactor().redact("Authorization: Bearer abc.def-123")
    assert out == f"Authorization: Bearer {MASK}"


def test_env_secrets_are_masked_by_value() -> None:
    """Values of env vars named like TOKEN/SECRET/KEY/PASSWORD (≥ 6 chars) are masked."""
    environ = {
        "STAGING_TOKEN": "staging-token-value",
        "DB_PASSWORD": "correct-horse",
        "API_KEY": "abc",  # too short to mask safely
        "HOME": "/home/runner",  # not a secret name
    }
    redactor = Redactor.from_env(environ, extra=["from-the-config-42"])
    out = redactor.redact("staging-token-value correct-horse abc /home/runner from-the-config-42")
    assert out == f"{MASK} {MASK} abc /home/runner {MASK}"


def test_prose_is_left_alone() -> None:
    """Ordinary words after Basic/Bearer are not mistaken for credentials."""
    text = "basic functionality works; Bearer authentication is configured. Basic Auth"
    assert Redactor().redact(text) == text


def test_redaction_is_idempotent() -> None:
    """Redacting redacted text changes nothing (the tracker redacts again to be safe)."""
    redactor = Redactor(["supersecret"])
    once = redactor.redact(f"Authorization: token {GH_TOKEN} supersecret AKIAIOSFODNN7EXAMPLE")
    assert redactor.redact(once) == once


def test_with_secrets_adds_values() -> None:
    """with_secrets extends a Redactor without losing what it had."""
    redactor = Redactor(["first-secret"]).with_secrets(["second-secret", None])
    assert redactor.redact("first-secret second-secret") == f"{MASK} {MASK}"


def test_truncate_body_keeps_the_marker_and_the_limit() -> None:
    """A huge body is cut under the limit, says so, closes its code fence, keeps its marker."""
    fp_marker = marker("v1-0123456789ab")
    body = "intro\n```\n" + "x" * 100_000 + "\n```\n" + fp_marker + "\n"
    out = truncate_body(body)
    assert len(out) <= 65_000
    assert "truncated by deployloop" in out
    assert out.rstrip().endswith(fp_marker)
    assert out.count("```") % 2 == 0


def test_short_bodies_are_untouched() -> None:
    """Bodies under the limit come back as they were."""
    assert truncate_body("hello") == "hello"
