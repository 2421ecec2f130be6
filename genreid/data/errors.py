"""Errors for bad dataset input, worded as 'expected ..., found ..., fix: ...'."""

from __future__ import annotations

from pathlib import Path

from genreid.core.errors import GenreidError
from genreid.core.text import listing


class DatasetError(GenreidError, ValueError):
    """A dataset root that cannot be used; the message says what was expected and found."""


class DatasetLayoutError(DatasetError):
    """Folders or files missing or misnamed under a dataset root."""


class CorruptImageError(DatasetError):
    """An image file that cannot be decoded."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"cannot read image {self.path}: {reason}. Re-extract or delete this file "
            "(`genreid data check` lists every unreadable image)."
        )


def describe_found(folder: Path, limit: int = 5) -> str:
    """A short listing of what a folder holds, for error messages."""
    if not folder.exists():
        return f"{folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    if not names:
        return f"{folder} is empty"
    return listing(names, limit)
