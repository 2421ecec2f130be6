"""Config changes as typed values: a dotted key and a Python value, not ``key=value`` text.

A user's ``key=value`` (a command line, a pipeline's ``overrides:`` list) is read once into a
:class:`Change` (:meth:`Change.parse`, its value read as YAML); code makes them from values
(``Change("seed", 3)``). :func:`apply_changes` sets them in a config's mapping, which
``genreid.core.config`` then reads with its types and did-you-mean errors. ``str(change)`` is
the text a job's params carry: the text it was read from, or the value as YAML that reads back
to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from genreid.core.errors import ConfigError


def parse_override(item: str) -> tuple[list[str], Any]:
    """``train.epochs=5`` -> (["train", "epochs"], 5), the value read as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value (e.g. train.epochs=5)")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} has an empty key")
    return key.split("."), yaml.safe_load(raw) if raw.strip() else ""


def value_text(value: Any) -> str:
    """``value`` as text that reads back to it (types included): Python's ``str`` where it
    does (a name, a path, ``3``, ``[1, 2]``: the texts plans always wrote), else YAML's flow
    style (``false``, ``null``, ``1.0e-05``, ``'on'``)."""
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, bool) and value is not None:  # str() gives True, None: not YAML's
        text = str(value)
        if _same(parse_override(f"k={text}")[1], value):
            return text
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 30)
    return text.removesuffix("\n...\n").removesuffix("\n")


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types, all the way down (``1`` is not ``True`` nor ``1.0``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@dataclass(frozen=True)
class Change:
    """One config change: ``key`` (dotted, e.g. ``data.options.split``) set to ``value``."""

    key: str
    value: Any
    text: str = field(default="", compare=False)  # the key=value it was read from, as written

    def __post_init__(self) -> None:
        if not self.key or any(not part for part in self.key.split(".")):
            raise ConfigError(f"config change {self.key!r}={self.value!r} has an empty key")

    @classmethod
    def parse(cls, item: str) -> Change:
        """A user's ``key=value``, the value read as YAML (the text is kept as written)."""
        path, value = parse_override(item)
        return cls(".".join(path), value, item)

    def __str__(self) -> str:
        return self.text or f"{self.key}={value_text(self.value)}"


def parse_changes(items: Iterable[str | Change]) -> tuple[Change, ...]:
    """``key=value`` texts read into changes (changes pass as they are)."""
    return tuple(i if isinstance(i, Change) else Change.parse(i) for i in items)


def apply_changes(data: dict[str, Any], changes: Iterable[Change]) -> dict[str, Any]:
    """Set each change's dotted key in a nested mapping, in order (in place and returned)."""
    for change in changes:
        *sections, last = change.key.split(".")
        node = data
        for part in sections:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {str(change)!r}: {part!r} is a value, not a section")
            node = child
        node[last] = change.value
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``key=value`` texts in a nested mapping (in place and returned)."""
    return apply_changes(data, parse_changes(overrides))
