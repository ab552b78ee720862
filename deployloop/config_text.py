"""The config file as text: where each key sits, ``${NAME}`` interpolation, keys that moved.

tomllib keeps no positions, so the line of every key is found by scanning the text; every
problem found here is a ``(line, message)`` pair that ``config.parse`` prefixes with the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from deployloop.config_values import SHOWN
from deployloop.redact import MIN_SECRET

Loc = tuple[str | int, ...]
Problem = tuple[int, str]  # (line, message without the file)

# Keys that steered the loop from the wrong table (issue 14.5): their new home.
MOVED: Mapping[tuple[str, str], tuple[str, str]] = {
    ("issues", "rerun_failed"): ("retest", "rerun_failed"),
    ("issues", "flaky"): ("retest", "flaky"),
    ("issues", "mask"): ("clusters", "mask"),
}
DEEP = 50  # brackets open at once past which a line is blamed for tomllib's RecursionError


def take_moved(
    raw: dict[str, Any], lines: Mapping[Loc, int]
) -> tuple[dict[str, Any], list[Problem]]:
    """``raw`` without keys that moved, and one problem naming each one's new place."""
    problems: list[Problem] = []
    kept = dict(raw)
    for old, new in MOVED.items():
        table, key = old
        section = kept.get(table)
        if isinstance(section, dict) and key in section:
            kept[table] = {k: v for k, v in section.items() if k != key}
            message = f"`[{table}] {key}` moved to `[{new[0]}] {new[1]}`"
            problems.append((line_of(old, lines), message))
    return kept, problems


def deep_line(text: str) -> int:
    """The first line where more than DEEP brackets are open (1 when none is)."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for char in line:
            depth += char in "[{"
            depth -= char in "]}"
            if depth > DEEP:
                return number
    return 1


@dataclass
class Interpolation:
    """What interpolating the environment into a config found.

    ``secrets``: every non-empty value taken from the environment, at least MIN_SECRET
    (redact.MIN_SECRET, 6) characters long; shorter ones ("1", "true") would mask ordinary
    text everywhere. Variables named in ``public`` are no secrets (the demo's own addresses).
    """

    public: frozenset[str] = frozenset()
    problems: list[Problem] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    # Lenient (``fills`` not None): a variable that would be a problem is no problem; its key
    # gets ``fills[key]`` ("" unless given) in its place, and ``unset`` records key → names.
    fills: Mapping[Loc, str] | None = None
    unset: dict[Loc, set[str]] = field(default_factory=dict)
    # key → its string as written, for each string with a ``${NAME}`` in it: errors show that
    written: dict[Loc, str] = field(default_factory=dict)


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(
    value: Any,
    environ: Mapping[str, str],
    lines: Mapping[Loc, int],
    public: frozenset[str] = frozenset(),
    fills: Mapping[Loc, str] | None = None,
) -> tuple[Any, Interpolation]:
    """``value`` with every ``${NAME}`` / ``${NAME:-default}`` in its strings replaced.

    Shell semantics: ``${NAME:-default}`` gives the default when NAME is unset *or empty*;
    ``${NAME}`` unset is a problem. A credential (a ``[target] headers`` value, ``[issues]
    token``) left with an empty variable in it is a problem naming the variable. With ``fills``
    (a lenient load, see ``Interpolation``) neither is a problem.
    """
    found = Interpolation(public, fills=fills)
    return _walk(value, (), environ, lines, found), found


def _walk(
    value: Any, loc: Loc, environ: Mapping[str, str], lines: Mapping[Loc, int], found: Interpolation
) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, (*loc, k), environ, lines, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*loc, i), environ, lines, found) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        got = environ.get(name)
        if got:
            if len(got) >= MIN_SECRET and name not in found.public:
                found.secrets.add(got)
            return got
        text = default if default is not None else got
        if text is None:
            problem = f"environment variable ${{{name}}} is not set"
        elif not text and _is_credential(loc):
            problem = f"${{{name}}} is empty, so this credential would go out incomplete"
            problem += f" (set {name}, or remove the key)"
        else:
            return text
        if found.fills is not None:
            found.unset.setdefault(loc, set()).add(name)
            return found.fills.get(loc, "")
        found.problems.append((line_of(loc, lines), f"{dotted(loc)}: {problem}"))
        return ""

    if _VAR.search(value):
        found.written[loc] = value
    return _VAR.sub(substitute, value)


def _is_credential(loc: Loc) -> bool:
    return (len(loc) == 3 and loc[:2] == ("target", "headers")) or loc == ("issues", "token")


def dotted(loc: Loc) -> str:
    """``("phase", 0, "suite", 1, "run")`` → ``phase[0].suite[1].run``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_of(loc: Loc, lines: Mapping[Loc, int]) -> int:
    """The line of ``loc``, else of its nearest located parent, else 1."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def located(source: str, problems: list[Problem]) -> list[str]:
    """``FILE:LINE: message`` lines, in line order, each once."""
    return [f"{source}:{line}: {message}" for line, message in sorted(set(problems))]


def problem_at(loc: Loc, message: str, lines: Mapping[Loc, int]) -> Problem:
    """A problem about the key at ``loc``, on its line and naming it."""
    return line_of(loc, lines), f"{dotted(loc)}: {message}"


def describe(
    error: Any, lines: Mapping[Loc, int], written: Mapping[Loc, str] | None = None
) -> Problem:
    """One pydantic error as a problem on the line of the key it is about. ``written``
    (``Interpolation.written``): a key's value that came from the environment is shown as
    written (``${NAME}``), never as the value (it may hold a credential)."""
    loc = tuple(error["loc"])
    message = error_message(error)
    if written and loc in written and isinstance(error.get("input"), str):
        message = as_written(message, error["input"], written[loc])
    derived = re.fullmatch(r"unknown key '(\w+)'", message)  # config._refuse: at the model's loc
    if derived and loc[-1:] != (derived.group(1),):
        loc = (*loc, derived.group(1))
    where = dotted(loc)
    return line_of(loc, lines), f"{where}: {message}" if where else message


def as_written(message: str, value: str, written: str) -> str:
    """``message`` with ``value`` (whole, or cut to ``SHOWN`` characters and quoted, as the
    validators in ``config_values`` show it) replaced by the key's text as ``written``."""
    for shown, instead in ((value[:SHOWN], written[:SHOWN]), (value, written)):
        message = message.replace(repr(shown), repr(instead))
    return message.replace(value, written)


def error_message(error: Any) -> str:
    """A pydantic error's message in the config's words (``unknown key 'x'``)."""
    if error["type"] == "missing":
        return f"missing required key {error['loc'][-1]!r}"
    if error["type"] == "extra_forbidden":
        return f"unknown key {error['loc'][-1]!r}"
    return str(error["msg"]).removeprefix("Value error, ")


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\"'-]+)\s*=\s*(.*)$")
_INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_\"'-]+)\s*=")


def locate_keys(text: str) -> dict[Loc, int]:
    """Map each key path (as pydantic reports it, list indices included) to its line number.

    tomllib keeps no positions, so this scans the few TOML forms a config uses: table and
    array-of-table headers, ``key = value`` lines, and one level of inline table.
    """
    found: dict[Loc, int] = {}
    arrays: dict[Loc, int] = {}
    table: Loc = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _resolve(_split_key(header.group(2)), arrays)
            if header.group(1) == "[[":
                arrays[table] = arrays.get(table, -1) + 1
                table = (*table, arrays[table])
            found.setdefault(table, number)
            continue
        for path in _keys_on_line(line, table):
            found.setdefault(path, number)
    return found


def _keys_on_line(line: str, table: Loc) -> Iterator[Loc]:
    match = _KEY.match(line)
    if not match or line.lstrip().startswith("#"):
        return
    key = (*table, *_split_key(match.group(1)))
    yield key
    value = match.group(2)
    if value.startswith("{"):
        for inner in _INLINE_KEY.findall(value):
            yield (*key, inner.strip("\"'"))


def _split_key(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in dotted.split(".")]


def _resolve(parts: list[str], arrays: Mapping[Loc, int]) -> Loc:
    path: Loc = ()
    for index, part in enumerate(parts):
        path = (*path, part)
        if path in arrays and index < len(parts) - 1:
            path = (*path, arrays[path])
    return path
