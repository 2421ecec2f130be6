"""CUB-200-2011 for the LSRO fine-grained experiment (Zheng et al. 2017, Sec. 5.4, Table 6).

The paper trains a 200-way classifier on the official 5,994 training images (plus generated
images) and reports top-1 accuracy on the official 5,794 test images, with bounding boxes used
in training and testing. So the default protocol is ``classification``: pid = class id (1-200),
train = ``is_train == 1``, query = the test images, gallery empty. The ``retrieval`` protocol
(each test image queried against all other test images) is offered for re-ID style CMC/mAP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from genreid.data.datasets.base import require_root
from genreid.data.errors import DatasetLayoutError, describe_found
from genreid.data.records import ImageRecord, ReIDDataset, Role

DATASET = "cub200"
FILES = {
    "images.txt": "1 001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg",
    "image_class_labels.txt": "1 1",
    "train_test_split.txt": "1 0",
    "bounding_boxes.txt": "1 60.0 27.0 325.0 304.0",
}
PROTOCOLS = ("classification", "retrieval")

BBox = tuple[float, float, float, float]


@dataclass
class CUBDataset(ReIDDataset):
    """A ReIDDataset plus ``bboxes``: image path -> (x, y, w, h); crop every image listed there."""

    bboxes: dict[str, BBox] = field(default_factory=dict)


def crop_to_bbox(image: Image.Image, bbox: BBox) -> Image.Image:
    """The bounding-box region (x, y, w, h in pixels) of a bird image."""
    x, y, w, h = bbox
    return image.crop((int(x), int(y), int(round(x + w)), int(round(y + h))))


def locate(root: Path) -> Path:
    """The folder with ``images.txt`` and ``images/``: the root or its ``CUB_200_2011/``."""
    for base in (root, root / "CUB_200_2011"):
        if (base / "images.txt").is_file() and (base / "images").is_dir():
            return base
    raise DatasetLayoutError(
        f"{DATASET}: expected images/ and {', '.join(FILES)} under {root} "
        f"(or {root}/CUB_200_2011), found {describe_found(root)}. "
        "Point --root at the unpacked CUB_200_2011 folder."
    )


def read_table(base: Path, name: str, columns: int) -> dict[int, list[str]]:
    """``id value...`` lines of one metadata file as {image id: values}."""
    path = base / name
    if not path.is_file():
        raise DatasetLayoutError(
            f"{DATASET}: expected {name} (lines like '{FILES[name]}') under {base}, "
            f"found {describe_found(base)}. Restore it from CUB_200_2011.tgz."
        )
    table: dict[int, list[str]] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != columns + 1:
                raise ValueError
            table[int(parts[0])] = parts[1:]
        except ValueError:
            raise DatasetLayoutError(
                f"{DATASET}: {path}:{lineno}: expected a line like '{FILES[name]}', found "
                f"{line!r}. Restore the original file."
            ) from None
    return table


def parse_cub200(
    root: str | Path, protocol: str = "classification", crop: bool = True
) -> CUBDataset:
    """CUB-200-2011 with the official train/test split; ``crop`` fills ``bboxes`` (paper: on).

    classification: query = test images (camid 0), gallery empty; metric = top-1 accuracy.
    retrieval: query = gallery = test images with camid = image id, so the standard
    same-identity-same-camera filter removes exactly the query itself from its gallery.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"{DATASET}: protocol must be one of {PROTOCOLS}, got {protocol!r}")
    base = locate(require_root(root, DATASET))
    images = read_table(base, "images.txt", 1)
    labels = read_table(base, "image_class_labels.txt", 1)
    is_train = read_table(base, "train_test_split.txt", 1)
    boxes = read_table(base, "bounding_boxes.txt", 4) if crop else {}
    for name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", is_train)):
        if set(table) != set(images):
            raise DatasetLayoutError(
                f"{DATASET}: expected {name} to list the same image ids as images.txt under "
                f"{base}, found {len(set(images) - set(table))} missing and "
                f"{len(set(table) - set(images))} extra. Restore the original files."
            )
    missing = [rel for (rel,) in images.values() if not (base / "images" / rel).is_file()]
    if missing:
        raise DatasetLayoutError(
            f"{DATASET}: expected {len(images)} images under {base / 'images'}, found "
            f"{len(missing)} missing (e.g. {', '.join(missing[:3])}). Re-extract the archive."
        )
    train: list[ImageRecord] = []
    query: list[ImageRecord] = []
    gallery: list[ImageRecord] = []
    bboxes: dict[str, BBox] = {}
    for image_id in sorted(images):
        path = str(base / "images" / images[image_id][0])
        pid = int(labels[image_id][0])
        if crop:
            if image_id not in boxes:
                raise DatasetLayoutError(
                    f"{DATASET}: expected a box for image {image_id} in bounding_boxes.txt "
                    f"under {base}, found none. Restore the file or pass crop=False."
                )
            x, y, w, h = (float(v) for v in boxes[image_id])
            bboxes[path] = (x, y, w, h)
        flag = is_train[image_id][0]
        if flag not in ("0", "1"):
            raise DatasetLayoutError(
                f"{DATASET}: expected is_train 0 or 1 for image {image_id} in "
                f"train_test_split.txt under {base}, found {flag!r}. Restore the file."
            )
        if flag == "1":
            train.append(ImageRecord(path, pid, 0, Role.TRAIN))
        elif protocol == "classification":
            query.append(ImageRecord(path, pid, 0, Role.QUERY))
        else:
            query.append(ImageRecord(path, pid, image_id, Role.QUERY))
            gallery.append(ImageRecord(path, pid, image_id, Role.GALLERY))
    notes = {
        "protocol": protocol,
        "metric": "top-1 accuracy of the 200-way classifier on query"
        if protocol == "classification"
        else "CMC/mAP; camid = image id so only the query itself is filtered",
        "crop": "bounding box" if crop else "none",
    }
    return CUBDataset(DATASET, str(base), train, query, gallery, notes=notes, bboxes=bboxes)
