"""Wording shared by error messages."""

from __future__ import annotations

from collections.abc import Iterable


def listing(items: Iterable[object], limit: int = 5) -> str:
    """``a, b, c and 4 more``: the first ``limit`` items and how many were left out."""
    items = [str(x) for x in items]
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def first_line(exc: BaseException, limit: int | None = 300) -> str:
    """``TypeName: first line of the message`` (at most ``limit`` characters of it): enough of
    a library's exception to put inside one of genreid's one-line errors."""
    line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {line[:limit]}"
