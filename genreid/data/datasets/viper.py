"""VIPeR: 632 pedestrians, one image in each of two cameras (``cam_a/NNN_AAA.bmp``).

Protocol (README, Datasets): 10 random splits of 316 train / 316 test identities; query =
camera A, gallery = camera B. NNN is the identity index shared by both cameras and AAA the
viewpoint angle, which may differ between the cameras.
"""

from __future__ import annotations

import re
from pathlib import Path

from genreid.data.datasets.base import list_images, parse_names, require_dir, require_root
from genreid.data.datasets.splits import check_split_index, load_or_create_splits
from genreid.data.errors import DatasetLayoutError
from genreid.data.records import ImageRecord, ReIDDataset, Role

PATTERN = re.compile(r"(\d{3})_(\d+)\.(?:bmp|png|jpg)", re.IGNORECASE)
EXAMPLE = "000_45.bmp"
CAMERAS = {"cam_a": 1, "cam_b": 2}
NUM_SPLITS = 10
NUM_TRAIN = 316


def scan_viper(root: str | Path) -> dict[int, dict[int, str]]:
    """Identity -> camera -> image path, checking that every identity has both cameras."""
    base = require_root(root, "viper")
    found: dict[int, dict[int, str]] = {}
    for folder_name, cam in CAMERAS.items():
        folder = require_dir(base, folder_name, "viper", EXAMPLE)
        for path, m in parse_names(list_images(folder), PATTERN, "viper", folder, EXAMPLE):
            pid = int(m.group(1)) + 1  # 1-based like the other datasets
            if cam in found.setdefault(pid, {}):
                raise DatasetLayoutError(
                    f"viper: two images of identity {m.group(1)} in {folder} "
                    f"({Path(found[pid][cam]).name}, {path.name}); expected one per camera."
                )
            found[pid][cam] = str(path)
    unpaired = sorted(pid - 1 for pid, cams in found.items() if len(cams) != 2)
    if unpaired:
        raise DatasetLayoutError(
            f"viper: identities {unpaired[:10]} have an image in only one of cam_a/ and cam_b/ "
            f"under {base}; expected one image per camera for every identity."
        )
    return found


def parse_viper(
    root: str | Path, split: int = 0, seed: int = 0, splits_file: str | Path | None = None
) -> ReIDDataset:
    """One of the 10 fixed random 316/316 splits: train on both cameras, query A, gallery B."""
    images = scan_viper(root)
    base = Path(root).expanduser()
    num_train = min(NUM_TRAIN, len(images) // 2)
    splits, path = load_or_create_splits(
        "viper", base, sorted(images), num_train, NUM_SPLITS, seed, splits_file
    )
    check_split_index("viper", split, len(splits))
    chosen = splits[split]
    train = [
        ImageRecord(images[pid][cam], pid, cam, Role.TRAIN)
        for pid in chosen["train"]
        for cam in (1, 2)
    ]
    query = [ImageRecord(images[pid][1], pid, 1, Role.QUERY) for pid in chosen["test"]]
    gallery = [ImageRecord(images[pid][2], pid, 2, Role.GALLERY) for pid in chosen["test"]]
    return ReIDDataset(
        "viper",
        str(base),
        train,
        query,
        gallery,
        split=split,
        num_splits=len(splits),
        notes={"splits_file": str(path), "seed": str(seed)},
    )
