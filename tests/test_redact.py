"""Redaction: no token, credential or key in anything deployloop posts or logs."""

from __future__ import annotations

import re

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
        # the kinds issue 17 found leaking (fake values)
        ("GET https://deploy:Hunter2pw@staging.example.com/api", "Hunter2pw"),
        ("connect postgres://app:pw@db:5432/orders failed", ":pw@"),
        ("password=Tr0ub4dor&3 rejected", "Tr0ub4dor"),
        ("passwd: correcthorse", "correcthorse"),
        ('{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG"}', "wJalrXUtnFEMI"),
        ("secret_key = 'django-insecure-abc123'", "django-insecure"),
        ("api_key=9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        ("{'client_secret': 'cs-live-0000aaaa'}", "cs-live-0000aaaa"),
        ("DB_PASSWORD=letmein99 psql", "letmein99"),
        ("slack xoxb-1234567890-0987654321-AbCdEfGhIjKl", "xoxb-1234567890"),
        ("user token xoxp-11111-22222-33333-abcdef", "xoxp-11111"),
        ('"private_key_id": "0123456789abcdef0123456789abcdef01234567"', "0123456789abcdef"),
        (
            '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvgIBADAN\\n'
            '-----END PRIVATE KEY-----\\n"',
            "MIIEvgIBADAN",
        ),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
        ("restricted rk_live_51Habcdefghijklmnopq", "51Habcdefghijklmnopq"),
        ("twilio SK" + "0123456789abcdef" * 2 + " ok", "0123456789abcdef"),
        ("account AC" + "fedcba9876543210" * 2, "fedcba9876543210"),
        ("npm_" + "a1B2c3D4e5" * 4 + " in .npmrc", "a1B2c3D4e5"),
        ("pypi-AgEIcHlwaS5vcmc" + "Zz9_" * 15, "AgEIcHlwaS5vcmc"),
        ("glpat-" + "xY7_" * 6, "xY7_xY7_"),
        ("maps AIza" + "SyD-1234567890abcdefghijklmnopqrstu", "SyD-1234567890"),
        ("SG." + "abcdEFGH1234ijkl" + "." + "mnopQRST5678uvwxYZ90ab", "abcdEFGH1234ijkl"),
        ("sk-proj-" + "Ab1" * 10, "Ab1Ab1Ab1"),
        ("hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX", "XXXXXXXXXXXXXXXX"),
        # the kinds the review found missed (issue 17)
        ("GET / Cookie: sessionid=Sess10nV4lue77; csrftoken=abc", "Sess10nV4lue77"),
        ("< Set-Cookie: auth=AuthC00kie55; Path=/; HttpOnly", "AuthC00kie55"),
        (f"GITHUB_TOKEN={GH_TOKEN[:20]}\n{GH_TOKEN[20:]}", GH_TOKEN[20:]),
        ("{'cookie': 'sessionid=Sess10nV4lue77'}", "Sess10nV4lue77"),
        ('{"auths": {"r.io": {"auth": "dXNlcjpEb2NrZXJQdzk5"}}}', "dXNlcjpEb2NrZXJQdzk5"),
        ('config=\'{\\"auth\\":\\"dXNlcjpEb2NrZXJQdzk5\\"}\'', "dXNlcjpEb2NrZXJQdzk5"),
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


def test_known_values_are_masked_escaped_and_split() -> None:
    """A known value is masked raw, XML- and JSON-escaped, and wrapped onto the next line."""
    secret = 'pa"ss<wo>rd&42'
    redactor = Redactor([secret])
    texts = [
        f"echo {secret}",
        "<x a='pa&quot;ss&lt;wo&gt;rd&amp;42'/>",
        '{"id": "pa\\"ss<wo>rd&42"}',
        'value pa"ss<w\n    o>rd&42 end',
    ]
    for text in texts:
        out = redactor.redact(text)
        assert "rd&42" not in out.replace("\n    ", "") and "rd&amp;42" not in out, text
        assert MASK in out


def test_short_known_values_are_not_masked() -> None:
    """Values under MIN_SECRET (6) characters stay: "true" or "8080" would wreck the text."""
    assert Redactor(["12345", "true"]).redact("port 12345 is true") == "port 12345 is true"


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=512 passed",
        "tests/test_login.py::test_password_reset PASSED",
        "assert password == expected",
        "see https://docs.example.com:8443/path for details",
        "KeyError: 'id'",
    ],
)
def test_ordinary_log_lines_are_left_alone(text: str) -> None:
    """Names, comparisons and URLs without credentials are not mistaken for secrets."""
    assert Redactor().redact(text) == text


def test_spans_keep_the_context_in_front() -> None:
    """spans() says where a match starts, so a caller never cuts `password=` from its value."""
    text = "x password=hunter22 y"
    [(start, mask, end)] = Redactor().spans(text)
    assert (text[start:mask], text[mask:end]) == ("password=", "hunter22")


def test_a_dotted_capital_i_does_not_blind_the_case_blind_rules() -> None:
    """İ lower-cases to two characters; the keywords elsewhere in the text are still found."""
    out = Redactor().redact("İstanbul office\nAuthorization: Bearer abc.def-123 PASSWORD=hunter2x")
    assert out == f"İstanbul office\nAuthorization: Bearer {MASK} PASSWORD={MASK}"


@pytest.mark.parametrize(
    "token",
    [GH_TOKEN, "AKIA" + "IOSFODNN7EXAMPLE", "AIza" + "SyD-1234567890abcdefghijklmnopqrstu"],
)
@pytest.mark.parametrize("cut", [4, 9, 14])
def test_a_token_split_by_a_line_break_is_masked_on_both_lines(token: str, cut: int) -> None:
    """A fixed-length shape printed in two pieces: neither piece is left on either line."""
    text = f"out: {token[:cut]}\n  {token[cut:]} tail\nnext"
    out = Redactor().redact(text)
    assert token[cut:] not in out
    assert token[4:cut] not in out or cut == 4
    assert out.endswith(" tail\nnext")
    assert Redactor().redact(out) == out


def test_a_whole_token_at_a_line_end_leaves_the_next_line_alone() -> None:
    """A token of full length ends there: the next line's first word is not masked."""
    out = Redactor().redact(f"{GH_TOKEN}\nplain words")
    assert out == f"{MASK}\nplain words"
    assert Redactor().redact("read the ghp_ docs\nplain words") == "read the ghp_ docs\nplain words"


def test_cookie_names_stay_readable_and_masking_is_idempotent() -> None:
    """Only the cookie value goes, and masking the masked text changes nothing."""
    out = Redactor().redact("Set-Cookie: auth=AuthC00kie55; Path=/")
    assert out == f"Set-Cookie: {MASK}"
    assert Redactor().redact(out) == out


def test_redact_id_tags_each_secret_by_its_keyed_hash() -> None:
    """redact_id: distinct secrets get distinct stable tags, keyed, idempotent; texts stay plain."""
    one, two = "ghp_" + "a1" * 18, "AKIA" + "Q7" * 8
    tagged = Redactor(id_key=b"k" * 32)
    ids = [tagged.redact_id(f"t.py::test_token[{s}]") for s in (one, two)]
    assert all(re.fullmatch(r"t\.py::test_token\[\[REDACTED:[0-9a-f]{6}\]\]", i) for i in ids)
    assert ids[0] != ids[1] and ids[0] == tagged.redact_id(f"t.py::test_token[{one}]")
    assert tagged.redact_id(f"x[{one}]") != Redactor(id_key=b"j" * 32).redact_id(f"x[{one}]")
    assert tagged.with_secrets(["other-value"]).redact_id(ids[0]) == ids[0]
    assert tagged.redact(ids[1]) == ids[1]
    keyed = tagged.redact_id("t[password=hunter2x9]")
    assert (
        re.fullmatch(r"t\[password=\[REDACTED:[0-9a-f]{6}\]\]", keyed)
        and tagged.redact(keyed) == keyed
    )
    assert tagged.redact(f"[{one}]") == f"[{MASK}]"
    assert Redactor().redact_id(f"[{one}]") == f"[{MASK}]"
    assert not any(s in "".join(ids) for s in (one, two))


@pytest.mark.parametrize(
    ("secret", "test_id"),
    [
        # cut by two breaks into pieces shorter than the split probes, a whole copy beside it
        ("staging-db-pass-7731", "t.py::test[staging-db-pass-7731 stagin\ng-db-pa\nss-7731]"),
        # one break, a periodic value: the rules' split match starts before the break
        ("zzzzzzzz", "t.py::test[azzz\nzzzzzzzzzzzzz]"),
    ],
)
def test_ids_with_line_breaks_tag_as_the_rules_do(secret: str, test_id: str) -> None:
    """An id with a line break (another runner's, or pytest's escaping turned off) skips the
    screen, which may see less there than the rules: tags come out as the rules give them."""
    key = b"k" * 32
    fast = Redactor([secret], id_key=key).redact_id(test_id)
    assert fast == Redactor([secret], fast=False, id_key=key).redact_id(test_id)


@pytest.mark.parametrize("test_id", ["t[token: 'tok99999x']", 't[password="hunter2222"]'])
def test_a_tagged_id_scrubbed_again_keeps_its_tag(test_id: str) -> None:
    """A mask is no secret, in any case: the keyword rule matches on lower-cased text, where
    an upper-case lookahead never saw the mask, and tagged it again (a Dask job's ids are
    scrubbed on the worker and again here)."""
    redactor = Redactor().with_id_key(b"k" * 32)
    once = redactor.redact_id(test_id)
    assert once != test_id and redactor.redact_id(once) == once and redactor.redact(once) == once
