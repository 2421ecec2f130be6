"""CUHK03 from the released ``cuhk-03.mat`` (MATLAB v7.3 = HDF5), new and classic protocols.

The .mat holds ``detected`` and ``labeled`` (1x5 cells, one per camera pair; each pair is a
10 x persons cell of images, 1-5 from camera A and 6-10 from camera B, empty cells allowed)
and ``testsets`` (20 classic test sets of 100 ``[pair, person]`` rows, 1-based). Images are
stored column-major as (3, W, H) and are extracted once to PNG files named
``{pair}_{person:03d}_{view}_{img:02d}.png`` (the torchreid / new-protocol naming).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from genreid.core.cache import dataset_cache
from genreid.data.datasets.base import require_root
from genreid.data.errors import DatasetLayoutError, describe_found
from genreid.data.records import ImageRecord, ReIDDataset, Role

log = logging.getLogger(__name__)

DATASET = "cuhk03"
MAT_NAME = "cuhk-03.mat"
MAT_LOCATIONS = (MAT_NAME, f"cuhk03_release/{MAT_NAME}")
NEW_CONFIG = "cuhk03_new_protocol_config_{variant}.mat"
VARIANTS = ("detected", "labeled")
PROTOCOLS = ("new", "classic")
MARKER = ".extracted.json"
MARKER_FORMAT = 1
NAME_PATTERN = re.compile(r"(\d+)_(\d{3})_([12])_(\d{2})\.png")
NAME_EXAMPLE = "1_001_1_01.png"


@dataclass(frozen=True)
class Extracted:
    """The PNG images of one variant: folder, file names and persons per camera pair."""

    folder: Path
    files: list[str]
    persons_per_pair: list[int]

    def global_pid(self, pair: int, person: int) -> int:
        """1-based identity over all pairs (pair 1's persons first), as in the new protocol."""
        return sum(self.persons_per_pair[: pair - 1]) + person


def find_mat(root: Path) -> Path:
    """``cuhk-03.mat`` directly under the root or in ``cuhk03_release/``."""
    for rel in MAT_LOCATIONS:
        if (root / rel).is_file():
            return root / rel
    raise DatasetLayoutError(
        f"{DATASET}: expected {MAT_NAME} (or cuhk03_release/{MAT_NAME}) under {root}, "
        f"found {describe_found(root)}. Unpack cuhk03_release.zip into the root."
    )


def _open_mat(mat_path: Path) -> Any:
    import h5py  # lazy: only CUHK03's .mat files need h5py

    try:
        return h5py.File(mat_path, "r")
    except OSError as e:
        raise DatasetLayoutError(
            f"{DATASET}: expected {mat_path} to be a MATLAB v7.3 (HDF5) file, found one h5py "
            f"cannot open ({e}). Re-download cuhk03_release.zip."
        ) from None


def _cell(f: Any, name: str, mat_path: Path) -> np.ndarray:
    if name not in f:
        raise DatasetLayoutError(
            f"{DATASET}: expected a '{name}' cell in {mat_path}, found {sorted(f.keys())}. "
            "Use the original cuhk-03.mat."
        )
    return np.asarray(f[name][()]).ravel()


def _image(f: Any, ref: Any) -> np.ndarray | None:
    """One image as H x W x 3 uint8, or None for an empty cell (a 2-element or zero array)."""
    if not ref:
        return None
    arr = np.asarray(f[ref][()])
    if arr.ndim < 3 or arr.size == 0:
        return None
    img = arr.T  # stored (3, W, H) column-major -> (H, W, 3)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def _write_png(img: np.ndarray, path: Path) -> None:
    """Write then rename, so a crash never leaves a truncated PNG under the final name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(img).save(tmp, format="PNG")
    os.replace(tmp, path)


def _write_json(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def extract_images(mat_path: Path, variant: str, folder: Path) -> Extracted:
    """Write every image of ``variant`` as PNG into ``folder``; the marker file is written last."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    for stale in folder.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    log.info("extracting CUHK03 %s images from %s into %s", variant, mat_path, folder)
    files: list[str] = []
    persons_per_pair: list[int] = []
    with _open_mat(mat_path) as f:
        for pair_index, pair_ref in enumerate(_cell(f, variant, mat_path), start=1):
            cells = np.asarray(f[pair_ref][()]).T  # (persons, 10)
            persons_per_pair.append(cells.shape[0])
            for person in range(cells.shape[0]):
                for slot, ref in enumerate(cells[person]):
                    img = _image(f, ref)
                    if img is None:
                        continue
                    view = 1 if slot < 5 else 2
                    name = f"{pair_index}_{person + 1:03d}_{view}_{slot + 1:02d}.png"
                    _write_png(img, folder / name)
                    files.append(name)
    marker = {
        "format": MARKER_FORMAT,
        "variant": variant,
        "source": str(mat_path),
        "persons_per_pair": persons_per_pair,
        "files": files,
    }
    _write_json(marker, folder / MARKER)
    return Extracted(folder, files, persons_per_pair)


def _read_marker(folder: Path, variant: str) -> Extracted | None:
    """The finished extraction in ``folder``, or None if absent, partial or stale."""
    try:
        marker = json.loads((folder / MARKER).read_text())
        if marker["format"] != MARKER_FORMAT or marker["variant"] != variant:
            return None
        files, persons = list(marker["files"]), [int(n) for n in marker["persons_per_pair"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not set(files) <= set(os.listdir(folder)):
        return None  # images deleted since: extract again
    return Extracted(folder, files, persons)


def load_images(mat_path: Path, variant: str, folder: Path) -> Extracted:
    """The extracted images of ``variant``, extracting them first if no complete marker exists."""
    return _read_marker(folder, variant) or extract_images(mat_path, variant, folder)


def read_testsets(mat_path: Path) -> list[set[tuple[int, int]]]:
    """The classic test sets: for each split, the ``(pair, person)`` pairs (1-based) it tests."""
    out = []
    with _open_mat(mat_path) as f:
        for ref in _cell(f, "testsets", mat_path):
            rows = np.asarray(f[ref][()]).T  # stored (2, 100)
            if rows.ndim != 2 or rows.shape[1] != 2:
                raise DatasetLayoutError(
                    f"{DATASET}: expected each testsets cell in {mat_path} to be 100 x 2 "
                    f"[pair, person] rows, found shape {rows.shape}. Use the original file."
                )
            out.append({(int(a), int(b)) for a, b in rows})
    return out


def _parse_name(name: str) -> tuple[int, int, int, int]:
    m = NAME_PATTERN.fullmatch(name)
    if m is None:
        raise DatasetLayoutError(
            f"{DATASET}: expected image names like {NAME_EXAMPLE}, found {name}. "
            "Delete the images_* cache folder so it is extracted again."
        )
    pair, person, view, img = (int(g) for g in m.groups())
    return pair, person, view, img


def classic_split(images: Extracted, test: set[tuple[int, int]]) -> tuple[list, list, list]:
    """Train = persons outside ``test``; query = test persons' camera-A images, gallery = B."""
    train, query, gallery = [], [], []
    for name in images.files:
        pair, person, view, _ = _parse_name(name)
        path, pid = str(images.folder / name), images.global_pid(pair, person)
        if (pair, person) not in test:
            train.append(ImageRecord(path, pid, view, Role.TRAIN))
        elif view == 1:
            query.append(ImageRecord(path, pid, view, Role.QUERY))
        else:
            gallery.append(ImageRecord(path, pid, view, Role.GALLERY))
    return train, query, gallery


def _find_config(root: Path, mat_path: Path, variant: str) -> Path:
    name = NEW_CONFIG.format(variant=variant)
    for folder in (root, mat_path.parent):
        if (folder / name).is_file():
            return folder / name
    raise DatasetLayoutError(
        f"{DATASET}: expected {name} under {root}, found {describe_found(root)}. Download the "
        "new-protocol (767/700) config files of Zhong et al. (CVPR 2017) into the root, or "
        "pass protocol='classic'."
    )


def new_protocol_split(config: Path, images: Extracted) -> tuple[list, list, list]:
    """The 767/700 split of Zhong et al.: 1-based indices into ``filelist`` with ``labels``."""
    from scipy.io import loadmat  # lazy: only the CUHK03 new-protocol files need scipy.io

    cfg = loadmat(config)
    fields = ("train_idx", "query_idx", "gallery_idx", "labels", "filelist", "camId")
    missing = [k for k in fields if k not in cfg]
    if missing:
        raise DatasetLayoutError(
            f"{DATASET}: expected fields {', '.join(fields)} in {config}, missing "
            f"{', '.join(missing)}. Re-download the new-protocol config."
        )
    names = [str(np.asarray(x).ravel()[0]) for x in cfg["filelist"].ravel()]
    labels = cfg["labels"].ravel().astype(int)
    cams = cfg["camId"].ravel().astype(int)
    present = set(images.files)
    absent = sorted({n for n in names if n not in present})
    if absent:
        raise DatasetLayoutError(
            f"{DATASET}: {config.name} lists {len(absent)} image(s) not extracted from "
            f"{MAT_NAME} into {images.folder} (e.g. {', '.join(absent[:3])}). Check that the "
            "config matches the variant, or delete the cache folder to extract again."
        )

    def records(key: str, role: Role) -> list[ImageRecord]:
        idx = cfg[key].ravel().astype(int) - 1
        return [
            ImageRecord(str(images.folder / names[i]), int(labels[i]), int(cams[i]), role)
            for i in idx
        ]

    return (
        records("train_idx", Role.TRAIN),
        records("query_idx", Role.QUERY),
        records("gallery_idx", Role.GALLERY),
    )


def default_cache(root: Path) -> Path:
    """Extracted images go to the user cache (``$GENREID_CACHE/cuhk03_<hash>``)."""
    return dataset_cache("cuhk03", root)


def parse_cuhk03(
    root: str | Path,
    variant: str = "detected",
    protocol: str = "new",
    split: int = 0,
    cache_dir: str | Path | None = None,
) -> ReIDDataset:
    """CUHK03 detected/labeled images under the new (767/700) or classic (20 splits) protocol.

    Images are extracted once into ``cache_dir/images_{variant}/`` (default: the user
    cache, see genreid.data.cache).
    Camera ids are the view (1 = camera A, 2 = camera B) of the image's camera pair; pids are
    global 1-based person numbers over the five pairs.
    """
    if variant not in VARIANTS:
        raise ValueError(f"{DATASET}: variant must be one of {VARIANTS}, got {variant!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"{DATASET}: protocol must be one of {PROTOCOLS}, got {protocol!r}")
    base = require_root(root, DATASET)
    mat_path = find_mat(base)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache(base)
    images = load_images(mat_path, variant, cache / f"images_{variant}")
    notes = {"variant": variant, "protocol": protocol}
    if protocol == "new":
        if split != 0:
            raise ValueError(f"{DATASET}: the new protocol has one split (0), got split={split}")
        train, query, gallery = new_protocol_split(_find_config(base, mat_path, variant), images)
        return ReIDDataset(DATASET, str(base), train, query, gallery, notes=notes)
    testsets = read_testsets(mat_path)
    if not 0 <= split < len(testsets):
        raise ValueError(
            f"{DATASET}: classic split must be in 0..{len(testsets) - 1}, got split={split}"
        )
    train, query, gallery = classic_split(images, testsets[split])
    notes["evaluation"] = "single-shot: sample one gallery image per identity, repeat, average"
    return ReIDDataset(
        DATASET,
        str(base),
        train,
        query,
        gallery,
        split=split,
        num_splits=len(testsets),
        notes=notes,
    )
