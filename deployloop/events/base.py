"""The shape every event shares, and its JSON: ``{"ts", "event": <kind>, ...fields}``.

Field names are the journal's keys except ``pass_name``, written ``pass`` (a Python keyword).
``from_json`` checks every value against the field's type hint: the journal and the state are
files on disk, read back by later runs.
"""

from __future__ import annotations

import dataclasses
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, Union, get_args, get_origin, get_type_hints

# Field names that are Python keywords are spelled differently in the journal.
_JSON_KEYS = {"pass_name": "pass"}


class EventShapeError(ValueError):
    """A journal or state record that does not have the shape of its kind."""


@dataclass(frozen=True, slots=True)
class EventBase:
    """What every event has: ``kind`` (its name in the journal) and ``ts`` (wall time, s)."""

    kind: ClassVar[str]
    ts: float = field(default_factory=time.time, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        """``{"ts", "event", ...fields}``, tuples as lists; ``from_json`` reads it back equal."""
        record: dict[str, Any] = {"ts": self.ts, "event": self.kind}
        for item in dataclasses.fields(self):
            if item.name != "ts":
                record[_JSON_KEYS.get(item.name, item.name)] = _plain(getattr(self, item.name))
        return record

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Self:
        """The event ``to_json`` wrote; raises EventShapeError on a missing or mistyped field."""
        values = _fields_from(cls, record, cls.kind)
        return cls(ts=_coerce(float, record.get("ts", 0.0), f"{cls.kind}.ts"), **values)


def _plain(value: Any) -> Any:
    """A field's value as JSON: dataclasses as objects, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _fields_from(cls: type, record: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The init arguments of dataclass ``cls`` from ``record``, each checked against its hint."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        key = _JSON_KEYS.get(item.name, item.name)
        if item.name == "ts" or (key not in record and _has_default(item)):
            continue
        if key not in record:
            raise EventShapeError(f"{where}: missing {key!r}")
        values[item.name] = _coerce(hints[item.name], record[key], f"{where}.{key}")
    return values


def _has_default(item: dataclasses.Field[Any]) -> bool:
    return (
        item.default is not dataclasses.MISSING or item.default_factory is not dataclasses.MISSING
    )


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """``value`` as type ``hint`` (scalars, ``X | None``, tuples, mappings, dataclasses)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, where)
    if origin is tuple and isinstance(value, list):
        return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is Mapping and isinstance(value, dict):
        return {str(k): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return hint(**_fields_from(hint, value, where))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, bool) and type(value) is hint:
        return value
    raise EventShapeError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r:.60}")
