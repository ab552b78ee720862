"""Atomic file replacement: whole old or whole new content, the mode asked for, no debris."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from deployloop.atomic import replacing, write_atomic


def test_replaces_whole_file_with_mode(tmp_path: Path) -> None:
    """The new text replaces the old; the folder is made; the mode is the one asked for."""
    target = tmp_path / "sub" / "f.txt"
    write_atomic(target, "old")
    write_atomic(target, "new", mode=0o600)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_failed_write_leaves_old_content_and_no_temp(tmp_path: Path) -> None:
    """Text that cannot be encoded fails the write: the old file stands, no temporary is left."""
    target = tmp_path / "f.txt"
    write_atomic(target, "old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "bad \udcff")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    write_atomic(target, "raw \udcff", errors="surrogateescape")
    assert target.read_bytes() == b"raw \xff"


def test_replacing_streams_in_or_leaves_the_old_file(tmp_path: Path) -> None:
    """A streamed write replaces the file once its block ends; a block that raises leaves the
    old file and no temporary."""
    target = tmp_path / "f.xml"
    with replacing(target) as handle:
        handle.write(b"<a>")
        assert not target.exists()  # nothing in place until the block ends
        handle.write(b"</a>")
    assert target.read_bytes() == b"<a></a>"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(ValueError, match="half"):
        _write_then_fail(target)
    assert target.read_bytes() == b"<a></a>"
    assert [p.name for p in tmp_path.iterdir()] == ["f.xml"]


def _write_then_fail(target: Path) -> None:
    with replacing(target) as handle:
        handle.write(b"<b>")
        raise ValueError("half written")
