"""Builders of small dataset trees in the real layouts, for tests (plain functions, no pytest).

Every builder writes tiny images (8 x 16 pixels, W x H) under ``root`` and returns the folder
to pass as the dataset root. Counts are fixed by the arguments; see each docstring.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SIZE = (8, 16)  # width, height: person crops are tall


@lru_cache(maxsize=256)
def _jpeg_bytes(color: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def checkpoint_tensors(obj, prefix: str = ""):
    """(path, tensor) of every tensor in a checkpoint's nested dicts and lists."""
    if torch.is_tensor(obj):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from checkpoint_tensors(v, f"{prefix}/{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from checkpoint_tensors(v, f"{prefix}/{i}")


def color_of(key: int) -> tuple[int, int, int]:
    """A distinct, repeatable colour per identity so toy models can tell identities apart."""
    rng = np.random.default_rng(abs(key) + 12345)
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def write_jpeg(path: Path, key: int = 0, size: tuple[int, int] = SIZE) -> Path:
    """A valid tiny JPEG whose colour depends on ``key`` (e.g. the identity)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_jpeg_bytes(color_of(key), size))
    return path


# --------------------------------------------------------------------------- Market-1501


def make_market_tree(
    root: Path,
    num_train_ids: int = 3,
    num_test_ids: int = 2,
    images_per_camera: int = 2,
    size: tuple[int, int] = SIZE,
) -> Path:
    """Market-1501 layout with junk (``-1_``) and distractor (``0000_``) names.

    With T train ids, Q test ids and k images per camera:
    bounding_box_train: T*2*k real images (cams 1, 2; pids 2, 4, ...) + 1 junk + 1 distractor;
    query: Q*2 (one per camera 1, 2; pids 1, 3, ...);
    bounding_box_test: Q*3*k (cams 1-3) + 2 distractors + 2 junk;
    gt_bbox: Q*2*3 images of the query ids + 2 of an id absent from query (pid 9999).
    Defaults: train 12 (+2 skipped), query 4, gallery 16, gt_bbox 12 kept (+2 dropped).
    """
    frame = iter(range(1, 1_000_000))

    def put(folder: str, pid: int, cam: int) -> None:
        tag = "-1" if pid == -1 else f"{pid:04d}"
        name = f"{tag}_c{cam}s1_{next(frame):06d}_01.jpg"
        write_jpeg(root / folder / name, pid, size)

    train_pids = [2 * (i + 1) for i in range(num_train_ids)]
    test_pids = [2 * i + 1 for i in range(num_test_ids)]
    for pid in train_pids:
        for cam in (1, 2):
            for _ in range(images_per_camera):
                put("bounding_box_train", pid, cam)
    put("bounding_box_train", -1, 1)
    put("bounding_box_train", 0, 2)
    for pid in test_pids:
        for cam in (1, 2):
            put("query", pid, cam)
            for _ in range(3):
                put("gt_bbox", pid, cam)
        for cam in (1, 2, 3):
            for _ in range(images_per_camera):
                put("bounding_box_test", pid, cam)
    for cam in (1, 2):
        put("bounding_box_test", 0, cam)
        put("bounding_box_test", -1, cam)
        put("gt_bbox", 9999, cam)
    return root


# --------------------------------------------------------------------------- MSMT17


def make_msmt17_tree(root: Path, version: str = "v1", nested: bool = False) -> Path:
    """MSMT17 V1 (``train/``, ``test/``) or V2 (``mask_*_v2/``) with its four list files.

    list_train: 4 ids (0-3) x 3 images (cams 1, 2, 12) = 12; list_val: ids 0, 1 x 1 = 2;
    list_query: 3 test ids (0-2) x 1 image on camera 3; list_gallery: 3 ids x 2 (cams 4, 15).
    ``nested`` puts everything in ``root/MSMT17_V1`` (or ``_V2``) and still returns ``root``.
    """
    base = root / f"MSMT17_{version.upper()}" if nested else root
    train_dir, test_dir = (
        ("train", "test") if version == "v1" else ("mask_train_v2", "mask_test_v2")
    )
    counter = iter(range(1_000_000))

    def add(folder: str, pid: int, cam: int, lines: list[str], key: int) -> None:
        rel = f"{pid:04d}/{pid:04d}_{next(counter):03d}_{cam:02d}_0303morning_0015_0.jpg"
        write_jpeg(base / folder / rel, key)
        lines.append(f"{rel} {pid}")

    lists: dict[str, list[str]] = {n: [] for n in ("train", "val", "query", "gallery")}
    for pid in range(4):
        for cam in (1, 2, 12):
            add(train_dir, pid, cam, lists["train"], pid)
    for pid in range(2):
        add(train_dir, pid, 2, lists["val"], pid)
    for pid in range(3):
        add(test_dir, pid, 3, lists["query"], 100 + pid)
        for cam in (4, 15):
            add(test_dir, pid, cam, lists["gallery"], 100 + pid)
    for name, lines in lists.items():
        (base / f"list_{name}.txt").write_text("\n".join(lines) + "\n")
    return root


# --------------------------------------------------------------------------- CUHK03

CUHK03_PERSONS_PER_PAIR = (3, 2, 2, 2, 1)  # 10 persons; global pids 1..10 in pair order


def cuhk03_slots(variant: str, pid: int) -> list[int]:
    """0-based image slots (0-4 camera A, 5-9 camera B) holding an image for a global pid.

    detected: 4 each (slots 0, 1, 5, 6) plus slot 2 for pids 1, 5, 9 -> 43 images.
    labeled: 4 each, pid 2 also slot 7, pid 10 camera A only (0, 1) -> 39 images.
    """
    if variant == "detected":
        return [0, 1, 2, 5, 6] if pid % 4 == 1 else [0, 1, 5, 6]
    if pid == 2:
        return [0, 1, 5, 6, 7]
    return [0, 1] if pid == 10 else [0, 1, 5, 6]


def cuhk03_image(variant: str, pid: int, slot: int) -> np.ndarray:
    """The H x W x 3 uint8 image stored for (variant, pid, slot): a gradient, so a wrong
    transpose is caught."""
    h, w = SIZE[1], SIZE[0]
    yy, xx = np.mgrid[0:h, 0:w]
    base = pid * 10 + slot + (100 if variant == "labeled" else 0)
    img = np.stack([yy * 8, xx * 16, np.full_like(yy, base)], axis=-1)
    return (img % 256).astype(np.uint8)


def cuhk03_person(pid: int) -> tuple[int, int]:
    """(pair, person-in-pair), both 1-based, of a global pid."""
    start = 0
    for pair, n in enumerate(CUHK03_PERSONS_PER_PAIR, start=1):
        if pid <= start + n:
            return pair, pid - start
        start += n
    raise ValueError(pid)


def cuhk03_test_pids(split: int) -> list[int]:
    """Global pids of the fixture's classic test set ``split`` (3 persons)."""
    return sorted({(split + 3 * k) % 10 + 1 for k in range(3)})


def _cuhk03_name(pid: int, slot: int) -> str:
    pair, person = cuhk03_person(pid)
    return f"{pair}_{person:03d}_{1 if slot < 5 else 2}_{slot + 1:02d}.png"


def _write_cuhk03_mat(path: Path, num_testsets: int) -> None:
    """``cuhk-03.mat`` as MATLAB v7.3 writes it: cells are arrays of object references."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        counter = iter(range(1_000_000))

        def store(data: np.ndarray, cls: str) -> h5py.Reference:
            ds = refs.create_dataset(f"r{next(counter)}", data=data)
            ds.attrs["MATLAB_class"] = np.bytes_(cls)
            return ds.ref

        def empty(k: int) -> h5py.Reference:
            if k % 2:
                return store(np.zeros((1, 1)), "double")  # a zero-filled placeholder
            ref = store(np.zeros(2, dtype=np.uint64), "double")  # MATLAB's empty-cell form
            f[ref].attrs["MATLAB_empty"] = np.uint8(1)
            return ref

        def cell(name: str, cells: np.ndarray, parent: h5py.Group) -> h5py.Reference:
            ds = parent.create_dataset(name, cells.shape, dtype=h5py.ref_dtype)
            ds[...] = cells
            ds.attrs["MATLAB_class"] = np.bytes_("cell")
            return ds.ref

        for variant in ("detected", "labeled"):
            pair_refs = np.empty((1, len(CUHK03_PERSONS_PER_PAIR)), dtype=object)
            pid = 0
            for p, n in enumerate(CUHK03_PERSONS_PER_PAIR):
                cells = np.empty((10, n), dtype=object)  # MATLAB n x 10, stored transposed
                for person in range(n):
                    pid += 1
                    slots = cuhk03_slots(variant, pid)
                    for slot in range(10):
                        if slot in slots:
                            img = cuhk03_image(variant, pid, slot)  # H x W x 3
                            cells[slot, person] = store(img.T.copy(), "uint8")  # (3, W, H)
                        else:
                            cells[slot, person] = empty(slot + person)
                pair_refs[0, p] = cell(f"{variant}_pair{p}", cells, refs)
            cell(variant, pair_refs, f)
        sets = np.empty((1, num_testsets), dtype=object)
        for s in range(num_testsets):
            rows = np.array([cuhk03_person(pid) for pid in cuhk03_test_pids(s)], dtype=float)
            sets[0, s] = store(rows.T.copy(), "double")  # MATLAB 3 x 2, stored (2, 3)
        cell("testsets", sets, f)
    with path.open("r+b") as fh:  # the MATLAB 7.3 header in the user block
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: genreid fixture HDF5")


def _write_cuhk03_config(path: Path, variant: str) -> None:
    """New-protocol config: pids 1-5 train, 6-10 test; query = first image of each view."""
    from scipy.io import savemat

    names, labels, cams = [], [], []
    train_idx, query_idx, gallery_idx = [], [], []
    for pid in range(1, 11):
        seen_views: set[int] = set()
        for slot in cuhk03_slots(variant, pid):
            view = 1 if slot < 5 else 2
            names.append(_cuhk03_name(pid, slot))
            labels.append(pid)
            cams.append(view)
            index = len(names)  # 1-based, as MATLAB
            if pid <= 5:
                train_idx.append(index)
            elif view not in seen_views:
                query_idx.append(index)
                seen_views.add(view)
            else:
                gallery_idx.append(index)
    filelist = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        filelist[i, 0] = n
    col = lambda v: np.array(v, dtype=float).reshape(-1, 1)  # noqa: E731
    savemat(
        path,
        {
            "filelist": filelist,
            "labels": col(labels),
            "camId": col(cams),
            "train_idx": col(train_idx),
            "query_idx": col(query_idx),
            "gallery_idx": col(gallery_idx),
        },
    )


def make_cuhk03_tree(root: Path, release_folder: bool = True, num_testsets: int = 20) -> Path:
    """``cuhk03_release/cuhk-03.mat`` (or ``root/cuhk-03.mat``) plus both new-protocol configs.

    10 persons in 5 camera pairs (3, 2, 2, 2, 1); images per :func:`cuhk03_slots`;
    ``num_testsets`` classic test sets of 3 persons (:func:`cuhk03_test_pids`).
    """
    mat_dir = root / "cuhk03_release" if release_folder else root
    mat_dir.mkdir(parents=True, exist_ok=True)
    _write_cuhk03_mat(mat_dir / "cuhk-03.mat", num_testsets)
    for variant in ("detected", "labeled"):
        _write_cuhk03_config(root / f"cuhk03_new_protocol_config_{variant}.mat", variant)
    return root


# --------------------------------------------------------------------------- CUB-200-2011


def make_cub_tree(root: Path, num_classes: int = 4, per_class: int = 5, train_per_class: int = 3):
    """``CUB_200_2011/`` with images/, images.txt, labels, split and boxes; returns that folder.

    Defaults: 20 images, 12 train (3 per class), 8 test; box of image i is (i, 1, 4, 8).
    """
    base = root / "CUB_200_2011"
    images, labels, split, boxes = [], [], [], []
    image_id = 0
    for c in range(1, num_classes + 1):
        folder = f"{c:03d}.Bird_{c}"
        for i in range(per_class):
            image_id += 1
            rel = f"{folder}/Bird_{c}_{i:04d}_{image_id}.jpg"
            write_jpeg(base / "images" / rel, c, (16, 16))
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {c}")
            split.append(f"{image_id} {1 if i < train_per_class else 0}")
            boxes.append(f"{image_id} {float(image_id % 4)} 1.0 4.0 8.0")
    for name, lines in (
        ("images.txt", images),
        ("image_class_labels.txt", labels),
        ("train_test_split.txt", split),
        ("bounding_boxes.txt", boxes),
    ):
        (base / name).write_text("\n".join(lines) + "\n")
    return base


# --------------------------------------------------------------------------- own folders


def make_folder_tree(root: Path) -> Path:
    """``train/<id>/``, ``query/<id>/``, ``gallery/<id>/`` plus one loose gallery image.

    train: alice 3 (c1, c2, c1), bob 2 (c1, one with no camera tag), 0007 2 -> 7 images;
    query: alice 1 (c1), 0007 1 (c1) -> 2; gallery: alice 2 (c2), 0007 1 (c3), -1 (junk) 1 (c2)
    and loose ``0007_c4_000.jpg`` -> 5. Ids: 0007 -> 7, -1 -> -1, alice -> 8, bob -> 9.
    """
    files = {
        "train/alice": ["a_c1_000.jpg", "a_c2_001.jpg", "a_c1_002.jpg"],
        "train/bob": ["b_c1_000.jpg", "b_nocam.jpg"],
        "train/0007": ["x_c2_000.jpg", "x_c3_001.jpg"],
        "query/alice": ["a_c1_100.jpg"],
        "query/0007": ["x_c1_100.jpg"],
        "gallery/alice": ["a_c2_200.jpg", "a_c2_201.jpg"],
        "gallery/0007": ["x_c3_200.jpg"],
        "gallery/-1": ["j_c2_200.jpg"],
        "gallery": ["0007_c4_000.jpg"],
    }
    for folder, names in files.items():
        for k, name in enumerate(names):
            write_jpeg(root / folder / name, k)
    return root


# A DG-Net small enough for unit tests: 64x32 images, width-8 E_a, width-4 E_s/G (seconds).
DGNET_SMALL = [
    "data.height=64", "data.width=32", "model.backbone=resnet18", "model.width=8",
    "model.pretrained=null", "model.embed_dim=16", "model.gen_width=4", "model.mlp_dim=16",
    "model.dis_width=8", "train.min_passes=0",
]  # fmt: skip
