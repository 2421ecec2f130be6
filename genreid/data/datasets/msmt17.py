"""MSMT17 (V1 and the face-blurred V2) from its list files.

Layout (V1): ``train/``, ``test/``, ``list_train.txt``, ``list_val.txt``, ``list_query.txt``,
``list_gallery.txt``; V2 names the image folders ``mask_train_v2/`` and ``mask_test_v2/``.
Each list line is ``0000/0000_000_01_0303morning_0015_0.jpg 0``: a path relative to the image
folder and the identity; the third ``_`` field of the file name is the 1-based camera.

The lists number training identities 0..1040 and test identities 0..3059 separately, and 0
is a real person. genreid shifts them so that every identity has its own number across the
dataset and none is 0 (the Market-1501 distractor code): training pid = list pid + 1, test
pid = list pid + 1 + (largest training list pid + 1).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from genreid.core.text import listing
from genreid.data.datasets.base import require_root
from genreid.data.errors import DatasetLayoutError, describe_found
from genreid.data.records import ImageRecord, ReIDDataset, Role

DATASET = "msmt17"
EXAMPLE_LINE = "0000/0000_000_01_0303morning_0015_0.jpg 0"
FOLDERS = {"v1": ("train", "test"), "v2": ("mask_train_v2", "mask_test_v2")}
LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")


def _has_version(base: Path, version: str) -> bool:
    return all((base / name).is_dir() for name in FOLDERS[version])


def _locate(root: Path, version: str | None) -> tuple[Path, str]:
    """The folder holding the lists and image folders, and its version (``v1``/``v2``)."""
    versions = [version] if version else ["v1", "v2"]
    candidates = [root] + [root / f"MSMT17_{v.upper()}" for v in versions]
    for base in candidates:
        for v in versions:
            if _has_version(base, v):
                return base, v
    wanted = " or ".join(f"{FOLDERS[v][0]}/ and {FOLDERS[v][1]}/ ({v.upper()})" for v in versions)
    raise DatasetLayoutError(
        f"{DATASET}: expected {wanted} with {', '.join(LISTS)} under {root} "
        f"(or under {root}/MSMT17_V1 or MSMT17_V2), found {describe_found(root)}. "
        "Point --root at the unpacked MSMT17_V1 or MSMT17_V2 folder."
    )


def _existing_files(folder: Path) -> set[str]:
    """Paths (relative, '/'-separated) of every file under ``folder``: one scan, not a stat each."""
    out: set[str] = set()
    for dirpath, _dirs, files in os.walk(folder):
        rel = os.path.relpath(dirpath, folder)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        out.update(prefix + f for f in files)
    return out


def _camera(rel: str) -> int:
    return int(Path(rel).name.split("_")[2])


def read_list(list_path: Path, image_dir: Path, role: Role, present: set[str]) -> list[ImageRecord]:
    """Records of one list file; every line must be ``relpath pid`` naming a file that exists."""
    if not list_path.is_file():
        raise DatasetLayoutError(
            f"{DATASET}: expected {list_path.name} (lines like '{EXAMPLE_LINE}') under "
            f"{list_path.parent}, found {describe_found(list_path.parent)}. "
            "Restore the list files shipped with the dataset."
        )
    records: list[ImageRecord] = []
    missing: list[str] = []
    for lineno, line in enumerate(list_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rel, pid_text = line.split()
            pid, cam = int(pid_text), _camera(rel)
        except (ValueError, IndexError):
            raise DatasetLayoutError(
                f"{DATASET}: {list_path}:{lineno}: expected a line like '{EXAMPLE_LINE}' "
                f"(path, identity; camera = third '_' field of the name), found {line!r}. "
                "Restore the original list file."
            ) from None
        if rel not in present:
            missing.append(rel)
        records.append(ImageRecord(str(image_dir / rel), pid, cam, role))
    if missing:
        shown = listing(missing)
        raise DatasetLayoutError(
            f"{DATASET}: {len(missing)} image(s) listed in {list_path.name} are missing under "
            f"{image_dir}: {shown}. Re-extract the dataset archive."
        )
    return records


def _shift(records: list[ImageRecord], offset: int) -> list[ImageRecord]:
    """The same records with ``offset`` added to every identity (see the module docstring)."""
    return [replace(r, pid=r.pid + offset) for r in records]


def parse_msmt17(root: str | Path, version: str | None = None, use_val: bool = True) -> ReIDDataset:
    """MSMT17: train = list_train (+ list_val when ``use_val``), query/gallery from their lists.

    ``version`` ("v1"/"v2") forces a layout; by default it is detected from the folder names.
    The standard 32,621-image training set is list_train + list_val, hence ``use_val=True``.
    """
    if version is not None:
        version = version.lower()
        if version not in FOLDERS:
            raise ValueError(f"{DATASET}: version must be 'v1' or 'v2', got {version!r}")
    base, version = _locate(require_root(root, DATASET), version)
    train_dir, test_dir = (base / name for name in FOLDERS[version])
    in_train, in_test = _existing_files(train_dir), _existing_files(test_dir)
    train = read_list(base / "list_train.txt", train_dir, Role.TRAIN, in_train)
    if use_val:
        train += read_list(base / "list_val.txt", train_dir, Role.TRAIN, in_train)
    query = read_list(base / "list_query.txt", test_dir, Role.QUERY, in_test)
    gallery = read_list(base / "list_gallery.txt", test_dir, Role.GALLERY, in_test)
    test_offset = 1 + max((r.pid for r in train), default=-1) + 1
    train = _shift(train, 1)
    query, gallery = _shift(query, test_offset), _shift(gallery, test_offset)
    notes = {"version": version, "train_lists": "train+val" if use_val else "train"}
    return ReIDDataset(DATASET, str(base), train, query, gallery, notes=notes)
