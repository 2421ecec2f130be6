"""One small registry for everything chosen by name: datasets, strategies, architectures, ...

Entries are objects or ``"module:attribute"`` strings imported on first use, so that naming
a registry entry (e.g. in ``--help``) does not import torch. An unknown name is an error that
lists the known ones and suggests the closest.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from genreid.core.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind; ``get`` imports lazy entries once."""

    def __init__(self, kind: str, entries: dict[str, T | str] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = dict(entries or {})
        self._aliases: dict[str, str] = {}
        self._normalize: Callable[[str], str] = lambda s: s

    def register(self, name: str, entry: T | str) -> None:
        """Add (or replace) an entry: an object, or ``"module:attribute"`` to import lazily."""
        self._entries[name] = entry

    def alias(self, **aliases: str) -> None:
        """Other spellings of registered names (``market="market1501"``)."""
        self._aliases.update(aliases)

    def normalize_with(self, fn: Callable[[str], str]) -> None:
        """Map user spellings before lookup (e.g. lower-case, no dashes)."""
        self._normalize = fn

    def key(self, name: str) -> str:
        """The registered key a user's name refers to; unknown names raise RegistryError."""
        key = self._normalize(str(name))
        key = self._aliases.get(key, key)
        if key not in self._entries:
            close = difflib.get_close_matches(key, list(self._entries), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RegistryError(
                f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(self._entries)}"
            )
        return key

    def get(self, name: str) -> T:
        """The entry of a name, importing it on first use."""
        key = self.key(name)
        entry = self._entries[key]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[key] = entry
        return entry  # type: ignore[return-value]

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        try:
            self.key(str(name))
        except RegistryError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def items(self) -> Iterator[tuple[str, Any]]:
        """(name, entry) pairs, importing every lazy entry."""
        for name in list(self._entries):
            yield name, self.get(name)
