"""The Hyperscan screen: the same masks as the pure-Python path, found in one pass."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deployloop import screen
from deployloop.redact import MASK, Redactor
from deployloop.scrub import scrub_file

KNOWN = ("staging-db-pass-7731", 'pa"ss<wo>rd&42', "kéy-välue-ünicode-9")
GH = "ghp_" + "A1b2" * 9
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n  Zm9v\n-----END RSA PRIVATE KEY-----"

# Every shape tests/test_redact.py checks, the known values in each spelling and wrapped,
# and the texts that make the screen send everything to the Python path.
CORPUS = (
    f"token {GH} used",
    "Authorization: Bearer abc.def-123",
    "{'Authorization': 'token s3cr3t-value'}",
    "curl -H 'authorization: Basic dXNlcjpwYXNz'",
    "jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end",
    "key AKIAIOSFODNN7EXAMPLE here",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    PEM,
    "GET https://deploy:Hunter2pw@staging.example.com/api",
    "connect postgres://app:pw@db:5432/orders failed",
    "password=Tr0ub4dor&3 rejected\npasswd: correcthorse",
    '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG"}',
    "secret_key = 'django-insecure-abc123'\napi_key=9f8e7d6c5b4a",
    "DB_PASSWORD=letmein99 psql\nPASSWORD=Upper9Case",
    "slack xoxb-1234567890-0987654321-AbCdEfGhIjKl xoxp-11111-22222-33333-abcdef",
    '"private_key_id": "0123456789abcdef0123456789abcdef01234567"',
    "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc rk_live_51Habcdefghijklmnopq",
    "twilio SK" + "0123456789abcdef" * 2 + " AC" + "fedcba9876543210" * 2,
    "npm_" + "a1B2c3D4e5" * 4 + " pypi-AgEIcHlwaS5vcmc" + "Zz9_" * 15,
    "glpat-" + "xY7_" * 6 + " AIza" + "SyD-1234567890abcdefghijklmnopqrstu",
    "SG.abcdEFGH1234ijkl.mnopQRST5678uvwxYZ90ab sk-proj-" + "Ab1" * 10,
    "hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
    "max_tokens=512 passed\ntests/test_login.py::test_password_reset PASSED",
    "see https://docs.example.com:8443/path for details\nKeyError: 'id'",
    "echo staging-db-pass-7731 and staging-db-pass-7731x",
    '<x a=\'pa&quot;ss&lt;wo&gt;rd&amp;42\'/>\n{"id": "pa\\"ss<wo>rd&42"}',
    "value staging-db-pa\n    ss-7731 end",  # wrapped: the whole text goes to Python
    "value staging-db-pass-7731 then staging-db\n-pass-7731",
    "kéy-välue-ünicode-9 in ünïcödé text, ✓ passed",
    "\u212aey=kelvin-sign-value",  # lower() makes "key=" of it
    "\u0130stanbul PASSWORD=hunter2x",  # lower() makes two chars of İ
    "crlf line password=abc123def\r\nnext\r\n",
    "GET / Cookie: sessionid=Sess10nV4lue77\n< Set-Cookie: auth=AuthC00kie55; Path=/",
    '{"auths": {"r.io": {"auth": "dXNlcjpEb2NrZXJQdzk5"}}}',
    f"GITHUB_TOKEN={GH[:20]}\n{GH[20:]}\nAKIA" + "IOSFODN\r\n  N7EXAMPLE end",  # cut tokens
    "log cut: -----BEGIN PRIVATE KEY-----\nMIIEvQ truncated\nnext line",  # masks to the end
)


def _both(text: str, secrets: tuple[str, ...] = KNOWN) -> tuple[str, str]:
    return Redactor(secrets).redact(text), Redactor(secrets, fast=False).redact(text)


def test_the_screen_is_in_use() -> None:
    """Hyperscan is a dependency: the fast path is what runs here, not the fallback."""
    assert Redactor(KNOWN)._screen is not None
    assert Redactor(KNOWN, fast=False)._screen is None


@pytest.mark.parametrize("text", CORPUS)
def test_screen_and_python_mask_the_same(text: str) -> None:
    """Each corpus text comes out of both paths the same, and masked where it holds a secret."""
    fast, python = _both(text)
    assert fast == python


def test_the_corpus_as_one_text_masks_the_same() -> None:
    """All of the corpus in one text (the screen then names some lines, not others)."""
    text = "\n".join(f"line {i}: {t}" for i, t in enumerate(CORPUS))
    fast, python = _both(text)
    assert fast == python
    assert fast.count(MASK) >= 40


def test_byte_spans_match_for_undecodable_bytes() -> None:
    """Byte offsets come out the same with bad bytes and multi-byte characters in the lines."""
    data = "ünï ".encode() + b"\xff\xfe password=s3cret99 " + "kéy".encode()
    data += f" {GH}\n".encode() + "✓ staging-db-pass-7731 ✓\n".encode()
    fast = Redactor(KNOWN).byte_spans(data)
    assert fast == Redactor(KNOWN, fast=False).byte_spans(data)
    assert [data[mask:end] for _, mask, end in fast] == [
        b"s3cret99",
        GH.encode(),
        b"staging-db-pass-7731",
    ]


def test_lines_that_need_the_whole_text_send_it_whole() -> None:
    """A key block, a wrapped known value, a Kelvin sign: no line list, the whole text."""
    screen = Redactor(KNOWN)._screen
    assert screen is not None
    assert screen.lines(b"a\nb password=x1y2z3\nc") == [(2, 19)]
    assert screen.lines(b"plain\nlines\n") == []
    for whole in (PEM, "staging-db-pa\nss-7731", "\u212aey=abc", "x staging-d\n"):
        assert screen.lines(whole.encode()) is None, whole


def test_without_hyperscan_the_python_path_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the wheel cannot be imported the Redactor falls back, with the same result."""
    monkeypatch.setitem(sys.modules, "hyperscan", None)  # `import hyperscan` raises ImportError
    screen.load.cache_clear()
    try:
        redactor = Redactor(KNOWN)
        assert redactor._screen is None
        text = "\n".join(CORPUS)
        assert redactor.redact(text) == Redactor(KNOWN, fast=False).redact(text)
    finally:
        screen.load.cache_clear()  # the next Redactor finds the wheel again


def test_scrub_file_writes_the_same_bytes_either_way(tmp_path: Path) -> None:
    """A log of several chunks, scrubbed with and without the screen: the same file."""
    lines = [f"{i:06d} {CORPUS[i % (len(CORPUS) - 1)]} ✓\n" for i in range(6000)]  # no cut key
    data = "".join(lines).encode() + b"\xff\xfe tail without a newline"
    fast, python = tmp_path / "fast.log", tmp_path / "python.log"
    fast.write_bytes(data)
    python.write_bytes(data)
    masks = scrub_file(fast, Redactor(KNOWN))
    assert masks == scrub_file(python, Redactor(KNOWN, fast=False)) > 6000
    assert fast.read_bytes() == python.read_bytes()
    assert GH.encode() not in fast.read_bytes()


FRAGMENTS = (
    *KNOWN,
    GH,
    "password=",
    "Bearer ",
    "token: ",
    "://u:",
    "@host",
    "-----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----",
    "staging-db",
    "-pass-7731",
    "xoxb-",
    "sk_live_",
    "ghp_A1b2",
    "Cookie: ",
    "\n",
    "\n  ",
    "\r\n",
    " ",
    "é",
    "\u212a",
    "\u0130",
    "\udcff",
)


FAST, PYTHON = Redactor(KNOWN), Redactor(KNOWN, fast=False)  # compiled once, not per example


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet="aZ9_-=:/. \n", max_size=12)),
        max_size=24,
    )
)
def test_random_texts_mask_the_same(pieces: list[str]) -> None:
    """Texts made of secret fragments, markers and noise: both paths give the same bytes."""
    data = "".join(pieces).encode("utf-8", "surrogateescape")
    assert FAST.byte_spans(data) == PYTHON.byte_spans(data)


KEYED = (Redactor(KNOWN, id_key=b"k" * 32), Redactor(KNOWN, fast=False, id_key=b"k" * 32))


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet="aZ9_-=:/.[] \n", max_size=12)),
        max_size=16,
    )
)
def test_random_test_ids_tag_the_same(pieces: list[str]) -> None:
    """A test id (tagged masks, issue 15): the screen's quick "nothing here" and its line
    search give what the rules give on the whole id, lone surrogates and non-ASCII included."""
    test_id = "t.py::test_x[" + "".join(pieces) + "]"
    fast, python = KEYED
    assert fast.redact_id(test_id) == python.redact_id(test_id)
