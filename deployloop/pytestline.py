"""Whether a suite's run line starts pytest: directly, behind shell syntax (``cd e2e && VAR=x
pytest``) or behind a wrapper (``timeout 600 pytest``, ``env VAR=1 pytest``, ``bash -c '…'``).

Such a line gets deployloop's plugins through ``PYTEST_ADDOPTS``, which pytest reads however it
is started, so its failed tests can be rerun alone (issue 15 item 7).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence

from deployloop import process

# pytest behind a shell line: "cd e2e && VAR=x pytest …", "venv/bin/py.test", "python3 -m pytest".
# Where one command of a shell line ends and the next begins (``&&``, ``||``, ``;``, a pipe,
# ``&``, a newline, a subshell's parentheses): a best-effort split, quotes not honoured.
COMMAND_BREAK = re.compile(r"&&|\|\||[;|&\n()]")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")  # "VAR=x" before a command
# Project runners that run the rest of the line in the project's environment ("uv run pytest").
RUNNERS = frozenset({"uv", "poetry", "pipenv", "pdm", "hatch", "rye"})
# Programs that run their arguments as a command, and shells that run a ``-c`` line.
WRAPPERS = frozenset(
    {
        "timeout",
        "env",
        "nice",
        "ionice",
        "nohup",
        "stdbuf",
        "time",
        "setsid",
        "xvfb-run",
        "chrt",
        "exec",
    }
)
SHELLS = frozenset({"sh", "bash", "dash", "zsh"})
WRAPPER_ARG = re.compile(r"-|\w+=|\d+(\.\d+)?[smhd]?$")  # an option, VAR=x, a duration or number
# PYTEST_ADDOPTS assigned by the line itself ("PYTEST_ADDOPTS=… pytest", "export …", "env …").
ADDOPTS_SET = re.compile(r"(?:^|[\s;&|('\"])PYTEST_ADDOPTS=")
ADDOPTS_KEPT = re.compile(r"\$\{?PYTEST_ADDOPTS\b")  # "…=\"$PYTEST_ADDOPTS -x\"" keeps ours
# pytest-xdist's "--dist each" ("--dist=each", "--dist each"), refused (``DIST_EACH``).
DIST_EACH_OPTION = re.compile(r"(?:^|[\s'\"])--dist(?:=|\s+)['\"]?each(?![\w-])")
DIST_EACH = (
    "--dist each runs every test on every xdist worker, and deployloop would read one test's "
    "runs as retries (a failure on one worker hidden by a pass on another): run one suite per "
    "environment instead (its run plugin refuses it too)"
)
ADDOPTS_HINT = (
    "the run line sets PYTEST_ADDOPTS, which replaces the options deployloop gives pytest "
    'there: set it in the suite\'s env = { PYTEST_ADDOPTS = "…" } instead (deployloop adds '
    "its own to that)"
)


def is_pytest(argv: Sequence[str]) -> bool:
    """``pytest …``, ``py.test …`` or ``python [options] -m pytest …`` (``-X dev``, ``-W x``:
    the interpreter's options before ``-m``)."""
    if not argv:
        return False
    exe = os.path.basename(argv[0])
    if exe in ("pytest", "py.test"):
        return True
    if not exe.startswith("python"):
        return False
    at = 1
    while at < len(argv) and argv[at].startswith("-") and argv[at] != "-m":
        at += 2 if argv[at] in ("-X", "-W", "-c") else 1  # options that take a value
    return list(argv[at : at + 2]) == ["-m", "pytest"]


def runs_pytest(command: str | Sequence[str]) -> bool:
    """Does this run line start pytest, directly or behind shell syntax (``cd … && pytest``)?

    Such a line gets deployloop's plugins through ``PYTEST_ADDOPTS``, which pytest reads however
    it is started, and can rerun a selection of its tests.
    """
    argv = _unwrapped(process.split_command(command))
    if len(argv) >= 3 and os.path.basename(argv[0]) in SHELLS and argv[1] == "-c":
        return any(_starts_pytest(part) for part in COMMAND_BREAK.split(argv[2]))
    return _launches_pytest(argv)


def _starts_pytest(command: str) -> bool:
    """Does one simple shell command start pytest (after ``VAR=x`` assignments, wrappers and
    a project runner)? A word that only mentions pytest (``pip install pytest``) does not."""
    try:
        words = shlex.split(command)
    except ValueError:  # an unbalanced quote: the split cut through a quoted string
        return False
    while words and ASSIGNMENT.match(words[0]):
        words = words[1:]
    return _launches_pytest(_unwrapped(words))


def _launches_pytest(argv: Sequence[str]) -> bool:
    """pytest itself, or behind a project runner (``uv run pytest``, ``poetry run pytest``)."""
    if len(argv) >= 2 and os.path.basename(argv[0]) in RUNNERS and argv[1] == "run":
        argv = _unwrapped(argv[2:])
    return is_pytest(argv)


def drops_addopts(command: str | Sequence[str]) -> bool:
    """Does this run line set ``PYTEST_ADDOPTS`` itself, without ``$PYTEST_ADDOPTS`` in it?
    pytest then never sees deployloop's plugins (``ADDOPTS_HINT`` says what to do instead)."""
    text = command if isinstance(command, str) else " ".join(command)
    return bool(ADDOPTS_SET.search(text)) and not ADDOPTS_KEPT.search(text)


def _unwrapped(argv: Sequence[str]) -> list[str]:
    """``argv`` without the programs that only run their arguments (``timeout 600 …``,
    ``env VAR=1 …``, ``nice -n 10 …``): their options, durations and assignments go too."""
    rest = list(argv)
    while rest and os.path.basename(rest[0]) in WRAPPERS:
        rest = rest[1:]
        while rest and WRAPPER_ARG.match(rest[0]):
            rest = rest[1:]
    return rest
