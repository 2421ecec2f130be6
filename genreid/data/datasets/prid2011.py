"""PRID2011 single-shot: ``single_shot/cam_a|cam_b/person_NNNN.png``.

Persons 0001-0200 appear in both cameras; the others in one camera only, and camera A's
person_0201 is not camera B's person_0201. Identities are numbered 1..934: the 200 shared
persons keep their number, camera-A-only persons 201..385 keep theirs, camera-B-only
persons 201..749 become 386..934. Protocol (README, Datasets): 10 random splits of the 200 shared
persons into 100 train / 100 test; query = camera A test persons; gallery = camera B test
persons plus the 549 camera-B-only persons as distractors. Camera-A-only persons are unused.
"""

from __future__ import annotations

import re
from pathlib import Path

from genreid.data.datasets.base import list_images, parse_names, require_dir, require_root
from genreid.data.datasets.splits import check_split_index, load_or_create_splits
from genreid.data.records import ImageRecord, ReIDDataset, Role

PATTERN = re.compile(r"person_(\d{4})\.(?:png|jpg|bmp)", re.IGNORECASE)
EXAMPLE = "person_0001.png"
NUM_SHARED = 200
NUM_SPLITS = 10
NUM_TRAIN = 100


def _camera_folder(root: str | Path) -> Path:
    """Accept the dataset root, or its ``single_shot`` folder."""
    base = require_root(root, "prid2011")
    return base / "single_shot" if (base / "single_shot").is_dir() else base


def scan_prid2011(root: str | Path) -> tuple[dict[int, str], dict[int, str]]:
    """Camera A and camera B images by person number as printed in the file names."""
    base = _camera_folder(root)
    cams = []
    for name in ("cam_a", "cam_b"):
        folder = require_dir(base, name, "prid2011", f"single_shot/{name}/{EXAMPLE}")
        matches = parse_names(list_images(folder), PATTERN, "prid2011", folder, EXAMPLE)
        cams.append({int(m.group(1)): str(path) for path, m in matches})
    return cams[0], cams[1]


def parse_prid2011(
    root: str | Path, split: int = 0, seed: int = 0, splits_file: str | Path | None = None
) -> ReIDDataset:
    """One of the 10 fixed random 100/100 splits of the persons seen by both cameras."""
    cam_a, cam_b = scan_prid2011(root)
    shared = sorted(n for n in cam_a if n in cam_b and n <= NUM_SHARED)
    in_shared = set(shared)
    a_only = sorted(n for n in cam_a if n not in in_shared)
    b_only = sorted(n for n in cam_b if n not in in_shared)
    first_b_only_pid = max(cam_a) + 1
    splits, path = load_or_create_splits(
        "prid2011",
        _camera_folder(root),
        shared,
        min(NUM_TRAIN, len(shared) // 2),
        NUM_SPLITS,
        seed,
        splits_file,
    )
    check_split_index("prid2011", split, len(splits))
    chosen = splits[split]
    train = [
        ImageRecord(cams[pid], pid, cam, Role.TRAIN)
        for pid in chosen["train"]
        for cam, cams in ((1, cam_a), (2, cam_b))
    ]
    query = [ImageRecord(cam_a[pid], pid, 1, Role.QUERY) for pid in chosen["test"]]
    gallery = [ImageRecord(cam_b[pid], pid, 2, Role.GALLERY) for pid in chosen["test"]]
    gallery += [
        ImageRecord(cam_b[n], first_b_only_pid + i, 2, Role.GALLERY) for i, n in enumerate(b_only)
    ]
    unused = [ImageRecord(cam_a[n], n, 1, Role.TRAIN) for n in a_only]
    return ReIDDataset(
        "prid2011",
        str(Path(root).expanduser()),
        train,
        query,
        gallery,
        unused=unused,
        split=split,
        num_splits=len(splits),
        notes={"splits_file": str(path), "seed": str(seed)},
    )
