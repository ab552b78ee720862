"""The JUnit files a suite run left: found (the report deployloop's plugin had pytest write,
else each fresh file matching the suite's ``junit`` glob), read with every repair noted in the
suite's log and kept (bounded) for the run's story, and kept beside the log, scrubbed and
capped (``junit_caps``)."""

from __future__ import annotations

import contextlib
import glob
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from deployloop.errors import JUnitError
from deployloop.models import CaseResult
from deployloop.pytestline import ADDOPTS_HINT, drops_addopts
from deployloop.scrub import scrub_copy

if TYPE_CHECKING:
    from deployloop.config import SuiteConfig
    from deployloop.redact import Redactor


@dataclass(frozen=True, slots=True)
class Found:
    """What a run left to read: its tests, the files they came from, whether pytest wrote them
    through deployloop's plugin (``ours``), why they cannot be read (``error``), and what was
    repaired to read them (``repairs``: "FILE: what" notes, at most ``MAX_REPAIR_NOTES``)."""

    cases: list[CaseResult]
    files: list[Path]
    ours: bool
    error: str | None = None
    repairs: tuple[str, ...] = ()


R = TypeVar("R")  # what a clean early read becomes (runner: the kept copy and scrubbed cases)
MAX_REPAIR_NOTES = 10  # notes kept for the run's story; the rest counted in one more line


def read(junit_path: Path, suite: SuiteConfig, log_path: Path | None, started_wall: float) -> Found:
    """Every result file of the run: the report deployloop's plugin had pytest write, else
    each fresh file matching ``junit``. Repairs are noted in the suite's log (``log_path``;
    None for a read that may be thrown away) and kept (bounded) for the run's story; an
    unreadable file among several is named in the error."""
    from deployloop import junit

    ours = junit_path.exists()
    paths = [junit_path] if ours else _fresh_matches(suite, started_wall)
    if not paths:
        where = suite.junit or "no junit = set, and no pytest report was written"
        hint = f"; {ADDOPTS_HINT}" if drops_addopts(suite.run) else ""
        return Found([], [], ours, f"no JUnit file written ({where}){hint}")
    cases: list[CaseResult] = []
    repairs: list[str] = []
    try:
        for path in paths:
            notes: list[str] = []
            try:
                cases.extend(junit.read_cases(path, notes))
            finally:
                repairs.extend(
                    f"{_shown(junit_path, suite, path)}: {n.split(': ', 1)[1]}" for n in notes
                )
    except JUnitError as exc:
        named = f"{_shown(junit_path, suite, path)}: " if len(paths) > 1 else ""
        error = f"JUnit file unreadable: {named}{exc.problem}"
        return Found(cases, paths, ours, error, _bounded(repairs))
    finally:
        if log_path is not None:
            _note(log_path, [f"JUnit repaired: {note}" for note in repairs])
    return Found(cases, paths, ours, repairs=_bounded(repairs))


def _shown(junit_path: Path, suite: SuiteConfig, path: Path) -> str:
    """A result file as people know it: the plugin's report by its kept name, a matched file
    relative to the suite's directory (never deployloop's private scratch path)."""
    if path == junit_path:
        return path.name
    try:
        return str(path.relative_to(Path(suite.cwd or ".")))
    except ValueError:
        return str(path)


def _bounded(notes: Sequence[str]) -> tuple[str, ...]:
    """At most ``MAX_REPAIR_NOTES`` notes, and a line counting those left out."""
    if len(notes) <= MAX_REPAIR_NOTES:
        return tuple(notes)
    left = len(notes) - MAX_REPAIR_NOTES
    return (*notes[:MAX_REPAIR_NOTES], f"{left} more repair note(s) in the suite's log")


def _note(log_path: Path, lines: Sequence[str]) -> None:
    """Append deployloop's own notes to a suite's log, marked as such."""
    if lines:
        with open(log_path, "a", encoding="utf-8") as log:
            log.writelines(f"[deployloop] {line}\n" for line in lines)


def kept_dir(junit_path: Path) -> Path:
    """Where several result files of one run are kept together."""
    return junit_path.with_suffix(".junit")


def keep(junit_path: Path, files: Sequence[Path], redactor: Redactor | None) -> Path | None:
    """Keep the run's result files beside its log, scrubbed: one file as ``<suite>.xml``,
    several all together in ``<suite>.junit/`` (``deployloop results`` reads either), in place
    of what an earlier keep of the run left (a report read early, then written again)."""
    junit_path.unlink(missing_ok=True)
    shutil.rmtree(kept_dir(junit_path), ignore_errors=True)
    if len(files) <= 1:
        if files:
            _keep_one(files[0], junit_path, redactor)
        return junit_path if files else None
    folder = kept_dir(junit_path)
    folder.mkdir()
    for index, path in enumerate(files):
        _keep_one(path, folder / f"{index:03d}-{path.name}", redactor)
    return folder


def _keep_one(raw: Path, kept: Path, redactor: Redactor | None) -> None:
    """A scrubbed copy, cut to head and tail past ``junit_caps.MAX_KEPT_BYTES`` (read first)."""
    from deployloop.junit_caps import cap_kept

    scrub_copy(raw, kept, redactor, xml=True)
    cap_kept(kept)


def _fresh_matches(suite: SuiteConfig, started_wall: float) -> list[Path]:
    """Files matching ``junit`` written by this run (a stale file from last night is no result)."""
    if not suite.junit:
        return []
    base = Path(suite.cwd or ".")
    matches = sorted(Path(p) for p in glob.glob(str(base / suite.junit), recursive=True))
    return [p for p in matches if p.is_file() and p.stat().st_mtime >= started_wall - 1.0]


class EarlyRead(Generic[R]):
    """The plugin's report (``path``) read while pytest still exits: ``runner.run_suite``
    calls it as ``process.run``'s ``meanwhile``, and ``finish`` (keep it, scrub its cases:
    ``R``) a clean read.

    pytest writes the report at its session's end, then prints its summary, unconfigures its
    plugins and tears its interpreter down: 30-70 ms for 1000 tests here, while reading,
    keeping and scrubbing the report takes some 12 ms that the pass would otherwise wait
    for after the exit. The early read is taken only when it was clean (deployloop's own
    report, so no behave hook errors to attach from a log still being written; nothing
    repaired: a report caught half written is repaired) and the file is the same one at the
    exit (inode, size, modification time): a second pytest run of the same command, or a
    report that changed while it was read, is read again after the exit. Only a clean read is
    kept beside the log (``finish``): a half-written report may end inside a secret, which
    its scrubbed copy would not mask.
    """

    def __init__(
        self,
        path: Path,
        read: Callable[[], Found],
        finish: Callable[[Found], R],
    ) -> None:
        self.path = path
        self.read = read
        self.finish = finish
        self.tried: tuple[int, int, int] | None = None  # the file as it was when last read
        self.results: R | None = None

    def __call__(self) -> None:
        now = _signature(self.path)
        if self.results is not None or now is None or now == self.tried:
            return
        self.tried = now
        found = self.read()  # repairs not noted: only the read after the exit notes them
        if found.ours and found.error is None and not found.repairs:
            # logs/ unwritable: the read after the exit meets it again, with pytest done
            with contextlib.suppress(OSError):
                self.results = self.finish(found)

    def taken(self) -> R | None:
        """The early read, when it still holds for the file at hand."""
        if self.results is None or _signature(self.path) != self.tried:
            return None
        return self.results


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns
