"""What the JUnit reader keeps of big things: an element's text cut to its head and tail
(``CappedText``), and a kept JUnit file cut to its head and tail (``cap_kept``).

Both stream: neither ever holds more than their caps, whatever the size of what they read.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import IO

CHUNK = 1 << 18  # bytes read (and characters delivered by expat) at a time
# What is kept of one element's text: its head and tail (where a traceback names its error),
# with a note of what was cut between. Together within MAX_DETAILS, so nothing cuts it again.
TEXT_HEAD = 32000
TEXT_TAIL = 32000
# A kept JUnit file larger than this is cut to its head and tail (``cap_kept``).
MAX_KEPT_BYTES = 16 << 20


class CappedText:
    """One element's text as expat delivers it (chunks of up to CHUNK characters), keeping at
    most TEXT_HEAD characters of its head and TEXT_TAIL of its tail: a 1 GB ``<failure>`` costs
    a few hundred KB, never its size."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.head: list[str] = []
        self.head_len = 0
        self.tail: deque[str] = deque()
        self.tail_len = 0
        self.cut = 0

    def append(self, chunk: str) -> None:
        if self.head_len < TEXT_HEAD:
            taken = chunk[: TEXT_HEAD - self.head_len]
            self.head.append(taken)
            self.head_len += len(taken)
            chunk = chunk[len(taken) :]
        if not chunk:
            return
        self.tail.append(chunk)
        self.tail_len += len(chunk)
        while self.tail_len - len(self.tail[0]) >= TEXT_TAIL:  # whole chunks past the tail
            dropped = self.tail.popleft()
            self.tail_len -= len(dropped)
            self.cut += len(dropped)

    def text(self) -> str:
        """The text kept: all of it when short, else head, a note of the cut, and tail."""
        tail = "".join(self.tail)
        cut = self.cut + max(0, len(tail) - TEXT_TAIL)
        if len(tail) > TEXT_TAIL:
            tail = tail[-TEXT_TAIL:]
        head = "".join(self.head)
        if not cut:
            return head + tail
        return f"{head}\n[... {cut} characters cut by deployloop ...]\n{tail}"


def cap_kept(path: Path, limit: int = MAX_KEPT_BYTES) -> bool:
    """Cut a kept JUnit file larger than ``limit`` bytes to its head and tail, in place, with
    an XML comment saying how much was cut; True when it was cut.

    The cut copy is for people (results are read from the whole file before): it is no longer
    well-formed XML when the cut falls inside an element. Streams; never holds the file.
    """
    size = path.stat().st_size
    if size <= limit:
        return False
    half = limit // 2
    cut = path.with_name(path.name + ".cut")
    with open(path, "rb") as source, open(cut, "wb") as out:
        _copy(source, out, half)
        out.write(f"\n<!-- deployloop: {size - 2 * half} bytes cut here -->\n".encode())
        source.seek(size - half)
        _copy(source, out, half)
    os.replace(cut, path)
    return True


def _copy(source: IO[bytes], out: IO[bytes], count: int) -> None:
    while count > 0 and (block := source.read(min(CHUNK, count))):
        out.write(block)
        count -= len(block)
