"""Whether the programs a config's commands name can be found, looked up as the run will.

``validate`` reports a missing one as a problem line, before a night is lost to it: cron starts
deployloop with ``PATH=/usr/bin:/bin``, where a virtualenv's ``pytest`` is not. A suite runs
with its ``env`` PATH if it sets one, else deployloop's own; a program written with a ``/`` is
looked up from the suite's ``cwd`` (or the directory a leading ``cd`` moves to).

Shell lines are read the way ``/bin/sh`` would start them: every simple command after ``&&``,
``||``, ``;``, ``|`` or ``(`` names a program, after its ``NAME=value`` assignments; shell
builtins and words with ``$`` or a backquote (known only when the shell runs) are not checked.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from deployloop.config import Config
from deployloop.config_text import Loc

SEPARATORS = frozenset({"&&", "||", ";", "|", "&", "|&", ";;", "(", ")"})
# Words that start a command without being its program: the program is the next word.
PREFIXES = frozenset(
    {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time", "exec", "command"}
    | {"nohup", "env"}
)
# Shell builtins and words that end a construct: nothing to find on PATH.
_BUILTIN_WORDS = (
    "cd . : [ [[ true false echo printf export set unset test exit return read wait "
    "trap source alias ulimit umask shift eval fi done esac } for case function"
)
BUILTINS = frozenset(_BUILTIN_WORDS.split())
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_REDIRECT = re.compile(r"^[<>&]+$")

Finding = tuple[Loc, str]  # (where in the config, message)


def missing_programs(config: Config, environ: Mapping[str, str]) -> list[Finding]:
    """Every suite ``cwd`` that is not a directory and every program not found, with its key."""
    path_var = environ.get("PATH", os.defpath)
    found: list[Finding] = []
    for i, phase in enumerate(config.phases):
        for j, suite in enumerate(phase.suites):
            loc: Loc = ("phase", i, "suite", j)
            cwd = Path(suite.cwd or ".")
            if not cwd.is_dir():
                found.append(((*loc, "cwd"), f"directory {cwd} does not exist"))
                continue
            search = suite.env.get("PATH", path_var)
            found += [((*loc, "run"), m) for m in _unfound(suite.run, cwd, search)]
    redeploy = config.redeploy
    if redeploy is not None and redeploy.trigger:
        cwd = Path(redeploy.cwd or ".")
        found += [(("redeploy", "trigger"), m) for m in _unfound(redeploy.trigger, cwd, path_var)]
    version = config.target.version
    if version is not None and version.command:
        # The version command runs where deployloop was started.
        where = ("target", "version", "command")
        found += [(where, m) for m in _unfound(version.command, Path.cwd(), path_var)]
    return found


def _unfound(command: str, cwd: Path, path_var: str) -> Iterator[str]:
    for program, moved_to in programs(command):
        base = cwd / moved_to if moved_to else cwd
        if "/" not in program:
            if shutil.which(program, path=path_var) is None:
                yield (
                    f"`{program}` not found on PATH ({path_var}): install it there, write its"
                    " full path in the command, or start deployloop with a PATH that has it"
                )
        elif not _executable(base / os.path.expanduser(program)):
            yield f"`{program}` not found (or not executable) in {base}"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def programs(command: str) -> Iterator[tuple[str, str | None]]:
    """Each program ``command`` starts, with the directory a ``cd`` before it moved to."""
    moved_to: str | None = None
    for words in _simple_commands(command):
        program, rest = _program(words)
        if program == "cd":
            moved_to = os.path.expanduser(rest[0]) if rest and "$" not in rest[0] else None
        elif program and program not in BUILTINS and not re.search(r"[$`]", program):
            yield program, moved_to


def _simple_commands(command: str) -> Iterator[list[str]]:
    """The words of each simple command, redirections (``> file``) dropped."""
    lexer = shlex.shlex(command.replace("\n", " ; "), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: the config check already refused the line
        return
    words: list[str] = []
    skip = False
    for token in tokens:
        if token in SEPARATORS:
            yield words
            words = []
        elif _REDIRECT.match(token):
            skip = True  # the next word is the redirection's file
        elif skip:
            skip = False
        else:
            words.append(token)
    yield words


def _program(words: list[str]) -> tuple[str | None, list[str]]:
    """The program of one simple command and the words after it."""
    for index, word in enumerate(words):
        if _ASSIGNMENT.match(word) or word in PREFIXES or word.startswith("-"):
            continue
        return word, words[index + 1 :]
    return None, []
