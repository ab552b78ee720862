"""Streaming scrubber: suite output reaches the disk masked, whatever pieces it comes in."""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import time
from json.encoder import encode_basestring_ascii
from pathlib import Path
from xml.etree import ElementTree

import pytest

from deployloop import progress
from deployloop.progress import ScrubbedRecords
from deployloop.redact import MASK, Redactor
from deployloop.scrub import Cap, ScrubbingWriter, scrub_file

GH = "ghp_" + "Q7w8" * 9
KNOWN = "db-pass-from-env-77"
LINES = (
    f"token {GH} sent\n",
    f"password={KNOWN} ok\n",
    "connect postgres://app:pw@db/orders\n",
    "plain line\n",
)


def _written(path: Path, pieces: list[bytes], hold: int = 1 << 20) -> str:
    with ScrubbingWriter(path, Redactor([KNOWN]), hold=hold) as writer:
        for piece in pieces:
            writer.write(piece)
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("size", [1, 3, 7, 64, 1000])
def test_secrets_split_across_chunks_are_masked(tmp_path: Path, size: int) -> None:
    """Whatever the chunk size, no raw value reaches the file and every line arrives."""
    data = "".join(LINES * 3).encode()
    out = _written(tmp_path / "s.log", [data[i : i + size] for i in range(0, len(data), size)])
    assert GH not in out and KNOWN not in out and ":pw@" not in out
    assert out.count("plain line\n") == 3
    assert out.count(MASK) == 9


def test_a_value_wrapped_onto_the_next_line_is_masked(tmp_path: Path) -> None:
    """A known value split by a line break, arriving line by line, is masked whole."""
    out = _written(tmp_path / "w.log", [b"assert db-pass-fr\n", b"om-env-77 == x\n"])
    assert "db-pass-fr" not in out and "om-env-77" not in out
    assert MASK in out


def test_a_key_block_arriving_line_by_line_is_masked(tmp_path: Path) -> None:
    """A PEM block written one line per chunk never shows its body."""
    block = (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nZm9vYmFy\n"
        "-----END RSA PRIVATE KEY-----\n"
    )
    out = _written(tmp_path / "k.log", [line.encode() + b"\n" for line in block.splitlines()])
    assert "MIIEpAIBAAKCAQEA" not in out and "Zm9vYmFy" not in out


def test_nothing_raw_is_on_disk_between_writes(tmp_path: Path) -> None:
    """After every write the file holds no raw value, only masked text (the kill -9 promise)."""
    path = tmp_path / "live.log"
    writer = ScrubbingWriter(path, Redactor([KNOWN]), hold=8192)
    data = "".join(LINES * 400).encode()
    for i in range(0, len(data), 997):
        writer.write(data[i : i + 997])
        on_disk = path.read_text(encoding="utf-8")
        assert GH not in on_disk and KNOWN not in on_disk
    assert os.path.getsize(path) > 0  # text was written while the stream was still going
    writer.close()


def test_an_endless_line_is_written_within_the_hold(tmp_path: Path) -> None:
    """A line with no end is written out once it passes the hold, masked, memory bounded."""
    path = tmp_path / "long.log"
    writer = ScrubbingWriter(path, Redactor(), hold=16384)
    for _ in range(100):
        writer.write(("." * 900 + f" {GH} ").encode())
    assert path.stat().st_size > 50_000
    assert len(writer._pending) <= 16384
    writer.close()
    assert GH not in path.read_text(encoding="utf-8")


def test_bad_bytes_pass_through_unchanged(tmp_path: Path) -> None:
    """Undecodable bytes and a UTF-8 character cut between chunks come out as they went in."""
    data = "héllo wörld\n".encode() + b"\xff\xfe raw\n"
    with ScrubbingWriter(tmp_path / "b.log", Redactor()) as writer:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
    assert (tmp_path / "b.log").read_bytes() == data


def test_xml_character_references_are_decoded_then_masked(tmp_path: Path) -> None:
    """A token spelled with &#x..; in a JUnit file is found; markup references stay."""
    spelled = "".join(f"&#x{ord(c):x};" for c in GH)
    xml = f'<testcase name="t"><failure message="a &lt; b &#38; {spelled}"/></testcase>\n'
    path = tmp_path / "r.xml"
    path.write_text(xml, encoding="utf-8")
    assert scrub_file(path, Redactor(), xml=True) == 1
    out = path.read_text(encoding="utf-8")
    assert GH not in html.unescape(out) and "&#x" not in out
    assert 'message="a &lt; b &#38; [REDACTED]"' in out


def test_scrub_file_rewrites_in_place_or_leaves_alone(tmp_path: Path) -> None:
    """A leftover log is rewritten masked with its mode kept; a clean one is not touched."""
    dirty, clean = tmp_path / "dirty.log", tmp_path / "clean.log"
    dirty.write_text("".join(LINES), encoding="utf-8")
    dirty.chmod(0o600)
    clean.write_text("nothing here\n", encoding="utf-8")
    before = clean.stat().st_ino
    assert scrub_file(dirty, Redactor([KNOWN])) == 3
    assert scrub_file(clean, Redactor([KNOWN])) == 0
    assert scrub_file(tmp_path / "missing.log", Redactor()) == 0
    assert KNOWN not in dirty.read_text(encoding="utf-8")
    assert dirty.stat().st_mode & 0o777 == 0o600
    assert clean.stat().st_ino == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.log", "dirty.log"]


PUMP = """
import os, sys
from pathlib import Path
from deployloop.redact import Redactor
from deployloop.scrub import ScrubbingWriter
writer = ScrubbingWriter(Path(sys.argv[1]), Redactor([sys.argv[2]]), hold=4096)
while chunk := os.read(0, 4096):
    writer.write(chunk)
    writer.flush()
"""


def test_kill_9_mid_stream_leaves_no_raw_value(tmp_path: Path) -> None:
    """A real pump process killed with SIGKILL mid-suite leaves only masked text on disk."""
    log = tmp_path / "suite.log"
    pump = subprocess.Popen(
        [sys.executable, "-c", PUMP, str(log), KNOWN], stdin=subprocess.PIPE, cwd=Path.cwd()
    )
    assert pump.stdin is not None
    try:
        deadline = time.monotonic() + 20
        while (not log.exists() or log.stat().st_size < 20_000) and time.monotonic() < deadline:
            pump.stdin.write("".join(LINES).encode())
            pump.stdin.flush()
        pump.stdin.write(b"half of a secret: db-pass-fr")  # the kill lands with it unfinished
        pump.stdin.flush()
    finally:
        pump.send_signal(signal.SIGKILL)
        pump.wait(timeout=10)
        pump.stdin.close()
    on_disk = log.read_text(encoding="utf-8")
    assert log.stat().st_size >= 20_000
    assert GH not in on_disk and KNOWN not in on_disk and "db-pass-fr" not in on_disk


def test_cap_holds_after_every_write(tmp_path: Path) -> None:
    """The log never passes the cap, not even for a moment: cut back to its start, then on."""
    path = tmp_path / "capped.log"
    cap = Cap(limit=50_000, keep=10_000, note=b"\n[capped]\n")
    with ScrubbingWriter(path, Redactor([KNOWN]), cap=cap) as writer:
        writer.write(b"FIRST\n")
        for n in range(400):
            writer.write(f"line {n} password={KNOWN} ".encode() + b"x" * 900 + b"\n")
            assert path.stat().st_size <= cap.limit
    text = path.read_text(encoding="utf-8")
    assert path.stat().st_size <= cap.limit and text.startswith("FIRST") and "[capped]" in text
    assert "line 399 " in text and KNOWN not in text


def test_json_keys_in_xml_attributes_are_masked(tmp_path: Path) -> None:
    """`&quot;password&quot;: &quot;v&quot;` in a JUnit message attribute (why kept .xml files
    held raw secrets) is read decoded; the mask covers the value and the file stays XML."""
    value = "Js0n-Pass-77881"
    message = html.escape(f'{{"password": "{value}", "private_key_id": "{"ab12" * 10}"}}')
    xml = f'<testsuite><testcase name="t"><failure message="{message}">x</failure></testcase>'
    path = tmp_path / "r.xml"
    path.write_text(xml + "</testsuite>\n", encoding="utf-8")
    assert scrub_file(path, Redactor(), xml=True) == 2
    out = path.read_text(encoding="utf-8")
    assert value not in out and "ab12" * 10 not in out
    assert ElementTree.fromstring(out).find("testcase/failure") is not None


def test_a_mask_in_xml_stops_at_markup(tmp_path: Path) -> None:
    """A key block cut off inside an attribute masks up to the attribute's end, not past it."""
    xml = '<t><f message="-----BEGIN PRIVATE KEY-----&#10;MIIEvQIBADANBg" type="E">y</f></t>\n'
    path = tmp_path / "k.xml"
    path.write_text(xml, encoding="utf-8")
    scrub_file(path, Redactor(), xml=True)
    out = path.read_text(encoding="utf-8")
    assert "MIIEvQIBADANBg" not in out and ElementTree.fromstring(out).find("f") is not None


# The kept progress stream (ScrubbedRecords): live-plugin lines, spelled as the plugin spells
# them (ids JSON-escaped by encode_basestring_ascii), scrubbed once decoded.
KEY = b"k" * 32


def plugin_line(test_id: str) -> bytes:
    quoted = encode_basestring_ascii(test_id)
    return f'{{"event": "done", "id": {quoted}, "outcome": "passed", "ts": 1.0}}\n'.encode()


def kept_records(
    tmp_path: Path, redactor: Redactor, data: bytes, chunk: int | None = None
) -> bytes:
    path = tmp_path / "e2e.progress.jsonl"
    with ScrubbedRecords(path, redactor, interval_s=0.0) as writer:
        step = chunk or len(data)
        for at in range(0, len(data), step):
            writer.write(data[at : at + step])
    return path.read_bytes()


@pytest.mark.parametrize(
    ("value", "test_id"),
    [
        ("hunter2222", 't.py::test_login[password="hunter2222"]'),
        ("k3y8888888", 't.py::test_login[api_key="k3y8888888"]'),
        ("hunter2222", 't.py::test_login[{"password": "hunter2222"}]'),
    ],
)
def test_a_quoted_value_in_an_id_never_reaches_the_progress_file(
    tmp_path: Path, value: str, test_id: str
) -> None:
    """pytest keeps a quote in a parametrize id and the plugin writes it escaped: scrubbing
    the escaped bytes left the value raw (and broke the line); the decoded id masks it."""
    redactor = Redactor().with_id_key(KEY)
    kept = kept_records(tmp_path, redactor, plugin_line(test_id))
    assert value.encode() not in kept
    assert json.loads(kept)["id"] == redactor.redact_id(test_id)


def test_a_known_value_with_backslashes_never_reaches_the_progress_file(tmp_path: Path) -> None:
    """pytest escapes a backslash in an id and the plugin escapes it again: the value, which
    the results find, is found in the decoded id too."""
    secret = "C:\\vault\\pw1x"
    redactor = Redactor([secret]).with_id_key(KEY)
    node_id = "t.py::test_v[" + secret.encode("unicode_escape").decode() + "]"
    assert "vault" not in redactor.redact_id(node_id)
    assert b"vault" not in kept_records(tmp_path, redactor, plugin_line(node_id))


@pytest.mark.parametrize(
    "test_id",
    ['t.py::test_v[tok"quoted9]', "t.py::test_v[password=p\\xe4sswort99]"],
)
def test_a_progress_line_names_its_test_by_the_results_id(tmp_path: Path, test_id: str) -> None:
    """The tag is taken over the secret as the id spells it, not as JSON spells it: the
    early verdict (retest.FirstVerdict) finds the test."""
    redactor = Redactor(['tok"quoted9']).with_id_key(KEY)
    kept = kept_records(tmp_path, redactor, plugin_line(test_id))
    assert json.loads(kept)["id"] == redactor.redact_id(test_id)


def test_remembered_scrubs_are_the_redactors_and_stay_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each id comes three times (start, test, done) and is scrubbed once: every kept id is
    still the redactor's own answer, past the memo's bound too, and the memo stays bounded
    (long texts are never kept in it)."""
    monkeypatch.setattr(progress, "MEMO", 8)
    redactor = Redactor([KNOWN]).with_id_key(KEY)
    ids = [f"t.py::test_{n}[{KNOWN if n % 2 else 'x'}]" for n in range(20)]
    ids.append("t.py::test_long[" + "y" * (progress.MEMO_CHARS + 1) + KNOWN + "]")
    path = tmp_path / "e2e.progress.jsonl"
    with ScrubbedRecords(path, redactor, interval_s=0.0) as writer:
        for test_id in ids:
            for _ in range(3):
                writer.write(plugin_line(test_id))
            assert len(writer._memo) <= progress.MEMO
    kept = [json.loads(line)["id"] for line in path.read_bytes().splitlines()]
    assert kept == [redactor.redact_id(test_id) for test_id in ids for _ in range(3)]
    assert KNOWN not in "".join(kept)


def test_no_part_of_a_value_survives_an_over_long_line(tmp_path: Path) -> None:
    """A line past the hold is dropped whole, in whatever pieces it comes; the lines around
    it are kept."""
    secret = "hunter2222secretvalue"
    redactor = Redactor([secret]).with_id_key(KEY)
    long = b'{"event": "done", "id": "t[' + b"a" * (2 << 20) + secret.encode() + b'"}\n'
    data = plugin_line("t.py::before") + long + plugin_line("t.py::after")
    kept = kept_records(tmp_path, redactor, data, chunk=1 << 16)
    assert secret[1:].encode() not in kept and b"aaaa" not in kept
    assert [json.loads(line)["id"] for line in kept.splitlines()] == ["t.py::before", "t.py::after"]


def test_torn_and_foreign_lines_are_dropped(tmp_path: Path) -> None:
    """Only JSON objects are kept (a torn line could hide a secret's spelling); the rest of
    the stream goes on, and a last line without its line break is kept when whole."""
    data = b'{"event": "st' + b"\n[1, 2]\n\xff\xfe\n" + plugin_line("t.py::a").rstrip(b"\n")
    kept = kept_records(tmp_path, Redactor().with_id_key(KEY), data)
    assert [json.loads(line)["id"] for line in kept.splitlines()] == ["t.py::a"]
