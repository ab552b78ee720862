"""Bounded by design: what JUnit reading keeps of huge element texts, and of the kept file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from deployloop.junit import read_cases
from deployloop.junit_caps import TEXT_HEAD, TEXT_TAIL, CappedText, cap_kept

MB = 1 << 20


def huge_junit(path: Path, failure_mb: int, system_out_mb: int) -> Path:
    """A JUnit file with one failure of ``failure_mb`` MB and a ``system_out_mb`` MB
    <system-out>, written in blocks (the test never holds it either)."""
    block = ("x" * 1023 + "\n") * 1024  # 1 MB
    with open(path, "w", encoding="utf-8") as out:
        out.write('<testsuite name="big" tests="2" failures="1">\n')
        out.write('<testcase classname="t" name="test_big"><failure message="boom">HEAD-MARK\n')
        for _ in range(failure_mb):
            out.write(block)
        out.write("ValueError: TAIL-MARK</failure></testcase>\n")
        out.write('<testcase classname="t" name="test_ok"/>\n<system-out>')
        for _ in range(system_out_mb):
            out.write(block)
        out.write("</system-out></testsuite>\n")
    return path


READ_AND_MEASURE = """
import json, sys
def peak_mb():  # VmHWM: this process's own peak (ru_maxrss keeps the forking parent's)
    with open("/proc/self/status") as status:
        line = next(l for l in status if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
from pathlib import Path
from deployloop.junit import read_cases
cases = read_cases(Path(sys.argv[1]))
bad = next(c for c in cases if c.name == "test_big")
print(json.dumps({
    "rss_mb": peak_mb(),
    "count": len(cases), "details": bad.details, "error_type": bad.error_type,
}))
"""


def test_capped_text_keeps_head_tail_and_says_what_was_cut() -> None:
    """Past TEXT_HEAD + TEXT_TAIL characters: the head, the tail, and the count cut between."""
    text = CappedText()
    for n in range(100):
        text.append(f"{n:03d}" + "y" * 9997)
    kept = text.text()
    assert kept.startswith("000yyy") and kept.endswith("y" * 100)
    assert f"[... {1_000_000 - TEXT_HEAD - TEXT_TAIL} characters cut by deployloop ...]" in kept
    assert len(kept) < TEXT_HEAD + TEXT_TAIL + 100


def test_short_text_is_kept_whole() -> None:
    """A text within the caps reads back exactly."""
    text = CappedText()
    text.append("a" * 10)
    text.append("b" * 10)
    assert text.text() == "a" * 10 + "b" * 10


def test_huge_failure_and_system_out_read_in_bounded_memory(tmp_path: Path) -> None:
    """A 100 MB <failure> and a 200 MB <system-out>: peak RSS well under the text's size,
    and the failure keeps its head and its tail (where the error type is)."""
    path = huge_junit(tmp_path / "big.xml", failure_mb=100, system_out_mb=200)
    done = subprocess.run(
        [sys.executable, "-c", READ_AND_MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    found = json.loads(done.stdout)
    assert found["count"] == 2
    assert found["rss_mb"] < 90, found["rss_mb"]
    assert found["details"].startswith("HEAD-MARK") and found["details"].endswith("TAIL-MARK")
    assert "characters cut by deployloop" in found["details"]
    assert found["error_type"] == "ValueError"


def test_cap_kept_cuts_a_big_file_to_head_and_tail(tmp_path: Path) -> None:
    """A kept file over the limit becomes its head and tail with a note; a small one is left."""
    path = huge_junit(tmp_path / "big.xml", failure_mb=3, system_out_mb=3)
    size = path.stat().st_size
    assert cap_kept(path, limit=MB)
    data = path.read_bytes()
    assert len(data) < MB + 100
    assert data.startswith(b"<testsuite") and data.endswith(b"</testsuite>\n")
    assert f"deployloop: {size - MB} bytes cut here".encode() in data
    small = tmp_path / "small.xml"
    small.write_text('<testsuite><testcase name="a"/></testsuite>')
    assert not cap_kept(small, limit=MB)
    assert read_cases(small)[0].name == "a"
