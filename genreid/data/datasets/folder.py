"""A user's own data: ``train/<id>/*.jpg``, ``query/<id>/*.jpg``, ``gallery/<id>/*.jpg``.

Identity folders may have any name: numeric names keep their number (so ``-1`` is junk and
``0`` a distractor, as in Market: neither is used for training), other names get numbers
after the largest numeric one in sorted order. Images lying directly in a split folder take
their identity from ``pid_regex``. The camera comes from ``cam_regex`` searched in the file
name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from genreid.core.text import listing
from genreid.data.datasets.base import is_image, list_images, require_root
from genreid.data.errors import DatasetLayoutError, describe_found
from genreid.data.records import DISTRACTOR_PID, JUNK_PID, ImageRecord, ReIDDataset, Role

DATASET = "folder"
LAYOUT = (
    "train/<id>/*.jpg, query/<id>/*.jpg and gallery/<id>/*.jpg (or images directly in "
    "query/ and gallery/ with the identity in the file name, see pid_regex)"
)
SPLITS = (("train", Role.TRAIN), ("query", Role.QUERY), ("gallery", Role.GALLERY))
NUMERIC = re.compile(r"-?\d+")


def stable_ids(names: Iterable[str]) -> dict[str, int]:
    """Numbers for identity (or camera) names: numeric names keep theirs, others follow sorted."""
    names = set(names)
    numeric = {n: int(n) for n in names if NUMERIC.fullmatch(n)}
    others = sorted(names - set(numeric))
    start = max([0, *numeric.values()]) + 1
    return numeric | {n: start + i for i, n in enumerate(others)}


def _capture(pattern: re.Pattern[str], name: str) -> str | None:
    m = pattern.search(name)
    if m is None:
        return None
    return m.group(1) if pattern.groups else m.group(0)


def _scan_split(folder: Path, pid_pattern: re.Pattern[str]) -> list[tuple[Path, str]]:
    """(image, identity name) of one split folder: ``<id>/`` sub-folders and loose images."""
    items: list[tuple[Path, str]] = []
    unnamed: list[str] = []
    for child in sorted(folder.iterdir()):
        if child.is_dir():
            items += [(p, child.name) for p in list_images(child)]
        elif child.is_file() and is_image(child):
            pid = _capture(pid_pattern, child.name)
            if pid is None:
                unnamed.append(child.name)
            else:
                items.append((child, pid))
    if unnamed:
        shown = listing(unnamed)
        raise DatasetLayoutError(
            f"{DATASET}: {len(unnamed)} image(s) directly in {folder} have no identity matching "
            f"pid_regex={pid_pattern.pattern!r}: {shown}. Move them into <id>/ sub-folders or "
            "pass a pid_regex whose first group captures the identity."
        )
    if not items:
        raise DatasetLayoutError(
            f"{DATASET}: expected {LAYOUT} under {folder.parent}, found no images in {folder} "
            f"({describe_found(folder)})."
        )
    return items


def _cameras(items: list[tuple[Path, str, Role]], cam_pattern: re.Pattern[str]) -> dict[Path, int]:
    """Camera number per image; training images without a match get camera 0."""
    found = {path: _capture(cam_pattern, path.name) for path, _, _ in items}
    unmatched = [p for p, _, role in items if found[p] is None and role is not Role.TRAIN]
    if unmatched:
        shown = listing(unmatched, limit=3)
        raise DatasetLayoutError(
            f"{DATASET}: expected a camera in every query/gallery file name matching "
            f"cam_regex={cam_pattern.pattern!r}, found none in {shown}. Rename the files "
            "(e.g. 0001_c2_000.jpg) or pass a cam_regex whose first group captures the camera."
        )
    numbers = stable_ids(c for c in found.values() if c is not None)
    return {p: 0 if c is None else numbers[c] for p, c in found.items()}


def parse_folder(
    root: str | Path,
    cam_regex: str = r"c(\d+)",
    pid_regex: str = r"^(-?\d+)",
    require_train: bool = True,
) -> ReIDDataset:
    """Images in ``train/``, ``query/``, ``gallery/``; ``train/`` may be absent if not required."""
    base = require_root(root, DATASET)
    cam_pattern, pid_pattern = re.compile(cam_regex), re.compile(pid_regex)
    items: list[tuple[Path, str, Role]] = []
    for name, role in SPLITS:
        folder = base / name
        if not folder.is_dir():
            if role is Role.TRAIN and not require_train:
                continue
            raise DatasetLayoutError(
                f"{DATASET}: expected {name}/ under {base} in the layout {LAYOUT}, found "
                f"{describe_found(base)}. Arrange the images in that layout."
            )
        items += [(p, pid, role) for p, pid in _scan_split(folder, pid_pattern)]
    pids = stable_ids(pid for _, pid, _ in items)
    cams = _cameras(items, cam_pattern)
    by_role: dict[Role, list[ImageRecord]] = {role: [] for _, role in SPLITS}
    for path, pid, role in items:
        if role is Role.TRAIN and pids[pid] in (JUNK_PID, DISTRACTOR_PID):
            continue  # junk and distractors never train, as in Market-1501
        by_role[role].append(ImageRecord(str(path), pids[pid], cams[path], role))
    notes = {"cam_regex": cam_regex, "pid_regex": pid_regex}
    return ReIDDataset(
        DATASET,
        str(base),
        by_role[Role.TRAIN],
        by_role[Role.QUERY],
        by_role[Role.GALLERY],
        notes=notes,
    )
