"""Issue 19's broken machines, played on the soak's own project at a daemon restart.

Each fault runs one real deployloop start against the broken file system and restores the
project afterwards, so the soak's invariants keep judging one unbroken night:

- ``corrupt_state``: state.db replaced by random bytes or an empty file; ``status`` must say in
  one line that it moved the file aside and exit 0. The real state is put back afterwards.
- ``readonly_logs`` / ``disk_full``: a read-only or full tmpfs mounted over ``logs/`` (hiding
  it, untouched); ``run`` must exit 2 or 3 with one line on stderr, no traceback, never 70.
  Mounting needs root: otherwise the fault is skipped, with the reason (``fsfaults``).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.fsfaults import Unavailable, fill, full_disk, readonly_dir
from tests.soak.project import Project

START_TIMEOUT_S = 60.0
REFUSED = (2, 3)  # a broken machine is a usage or environment error, never a crash (70)


def play(
    kind: str, project: Project, argv: Sequence[str], env: Mapping[str, str], rng: random.Random
) -> tuple[bool, str]:
    """Play ``kind``: whether deployloop answered as promised, and what it said (or why the
    fault was skipped). Raises Unavailable when this machine cannot make the fault."""
    if kind == "corrupt_state":
        status = [sys.executable, "-m", "deployloop", "status", "-c", str(project.config)]
        return _corrupt_state(project, status, env, rng)
    with _broken_logs(kind, project.logs):
        done = _start(argv, project.root, env)
    lines = done.stderr.strip().splitlines()
    ok = done.returncode in REFUSED and len(lines) == 1 and "Traceback" not in done.stdout
    return ok, f"exit {done.returncode}: {done.stderr.strip()[:300]}"


@contextmanager
def _broken_logs(kind: str, logs: Path) -> Iterator[None]:
    if os.geteuid() != 0:  # a chmod'ed logs/ keeps its subfolders writable: not the fault
        raise Unavailable("needs root to mount a tmpfs over logs/")
    if kind == "readonly_logs":
        with readonly_dir(logs):
            yield
        return
    with full_disk(logs, size_kib=64) as full:
        fill(full)
        yield


def _corrupt_state(
    project: Project, argv: Sequence[str], env: Mapping[str, str], rng: random.Random
) -> tuple[bool, str]:
    state = project.state_db
    kept = _set_aside(state)
    try:
        state.write_bytes(rng.randbytes(8192) if rng.random() < 0.5 else b"")
        done = _start(argv, project.root, env)
        moved = list(state.parent.glob(f"{state.name}.corrupt-*"))
    finally:
        _restore(state, kept)
    said = done.stderr.strip()
    ok = done.returncode == 0 and len(moved) == 1 and str(moved[0]) in said and "\n" not in said
    return ok, f"exit {done.returncode}: {said[:300]}"


def _set_aside(state: Path) -> list[tuple[Path, Path]]:
    """Move the database and its WAL files away (the daemon is dead: nothing holds them)."""
    kept = []
    for suffix in ("", "-wal", "-shm"):
        path = state.with_name(state.name + suffix)
        if path.exists():
            aside = path.with_name(path.name + ".soak-kept")
            os.replace(path, aside)
            kept.append((path, aside))
    return kept


def _restore(state: Path, kept: list[tuple[Path, Path]]) -> None:
    """Remove what the fault and the recovery left, and put the real state back."""
    for left in state.parent.glob(f"{state.name}*"):
        if not left.name.endswith(".soak-kept"):
            left.unlink()
    for path, aside in kept:
        os.replace(aside, path)


def _start(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=cwd, env=dict(env), capture_output=True, text=True,
        timeout=START_TIMEOUT_S, check=False,
    )  # fmt: skip
