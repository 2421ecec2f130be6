"""Shared helpers for dataset parsers: folder checks and image listing."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from genreid.core.text import listing
from genreid.data.errors import DatasetLayoutError, describe_found

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in a folder, sorted by name so every run sees the same order."""
    it: Iterable[Path] = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and is_image(p))


def require_root(root: str | Path, dataset: str) -> Path:
    """The dataset root as a Path, or a layout error that says how to point at it."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetLayoutError(
            f"{dataset}: root {path} is not a folder. Pass --root pointing at the folder that "
            f"holds the dataset (see README, 'Dataset layouts')."
        )
    return path


def require_dir(root: Path, name: str, dataset: str, example: str) -> Path:
    """``root/name`` must be a folder holding images named like ``example``."""
    folder = root / name
    if not folder.is_dir():
        raise DatasetLayoutError(
            f"{dataset}: expected {name}/ with files like {example} under {root}, "
            f"found {describe_found(root)}. Point --root at the dataset's top folder."
        )
    return folder


def parse_names(
    files: Iterable[Path], pattern: re.Pattern[str], dataset: str, folder: Path, example: str
) -> list[tuple[Path, re.Match[str]]]:
    """Match every file name against the dataset's naming scheme; misnamed files are an error."""
    out: list[tuple[Path, re.Match[str]]] = []
    bad: list[str] = []
    for f in files:
        m = pattern.fullmatch(f.name)
        if m is None:
            bad.append(f.name)
        else:
            out.append((f, m))
    if bad:
        shown = listing(bad)
        raise DatasetLayoutError(
            f"{dataset}: {len(bad)} file(s) in {folder} do not follow the naming scheme "
            f"(expected names like {example}): {shown}. Remove or rename them."
        )
    if not out:
        raise DatasetLayoutError(
            f"{dataset}: expected images named like {example} in {folder}, found none."
        )
    return out
