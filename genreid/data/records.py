"""The one record type every dataset parser produces, and the split container."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

JUNK_PID = -1
DISTRACTOR_PID = 0


class Role(StrEnum):
    """Where an image is used: training, query, gallery, or multi-query (Market ``gt_bbox``)."""

    TRAIN = "train"
    QUERY = "query"
    GALLERY = "gallery"
    MQUERY = "mquery"


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One image: file, identity, camera, role, whether it was generated, optional cluster.

    ``pid`` is the dataset's own identity number (-1 junk, 0 distractor for Market-style
    data); generated images carry ``pid = -1`` and ``generated = True``.
    """

    path: str
    pid: int
    camid: int
    role: Role
    generated: bool = False
    cluster: int | None = None

    @property
    def is_junk(self) -> bool:
        return self.pid == JUNK_PID and not self.generated


@dataclass
class ReIDDataset:
    """One evaluation split of a dataset: training, query and gallery records.

    Datasets with several random splits (VIPeR, PRID2011, CUHK03 classic) return one
    ``ReIDDataset`` per split; ``split`` and ``num_splits`` say which.
    """

    name: str
    root: str
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    mquery: list[ImageRecord] = field(default_factory=list)
    unused: list[ImageRecord] = field(default_factory=list)
    split: int = 0
    num_splits: int = 1
    notes: dict[str, str] = field(default_factory=dict)

    def splits(self) -> dict[str, list[ImageRecord]]:
        """Non-empty record lists by role name."""
        out = {"train": self.train, "query": self.query, "gallery": self.gallery}
        if self.mquery:
            out["mquery"] = self.mquery
        if self.unused:
            out["unused"] = self.unused
        return out

    @property
    def num_train_pids(self) -> int:
        return len(train_pids(self.train))

    def train_label_map(self) -> dict[int, int]:
        """Contiguous class labels 0..K-1 for the training identities (sorted by pid)."""
        return {pid: i for i, pid in enumerate(train_pids(self.train))}


def train_pids(records: Iterable[ImageRecord]) -> list[int]:
    """Sorted identities usable as classes: real, not junk."""
    return sorted({r.pid for r in records if not r.generated and r.pid != JUNK_PID})


def split_stats(records: Sequence[ImageRecord]) -> dict[str, object]:
    """Images, identities, cameras and images-per-identity summary of one list of records."""
    real = [r for r in records if not r.generated]
    per_id = Counter(r.pid for r in real if r.pid != JUNK_PID)
    counts = np.array(sorted(per_id.values()), dtype=np.int64)
    stats: dict[str, object] = {
        "images": len(records),
        "identities": len(per_id),
        "cameras": len({r.camid for r in real}),
    }
    if len(counts):
        stats["images_per_identity"] = {
            "min": int(counts.min()),
            "median": float(np.median(counts)),
            "max": int(counts.max()),
            "mean": float(counts.mean()),
        }
    junk = sum(r.is_junk for r in real)
    distractors = sum(r.pid == DISTRACTOR_PID for r in real)
    if junk:
        stats["junk_images"] = junk
    if distractors:
        stats["distractor_images"] = distractors
    generated = len(records) - len(real)
    if generated:
        stats["generated_images"] = generated
    return stats


def dataset_stats(ds: ReIDDataset) -> dict[str, object]:
    """Totals over all splits plus per-split statistics (the ``data info --json`` object)."""
    splits = ds.splits()
    all_records = [r for recs in splits.values() for r in recs]
    # An image path shared by several roles (e.g. a query that is also a gallery image in
    # some protocols) is counted once in the totals.
    unique = list({r.path: r for r in all_records}.values())
    total = split_stats(unique)
    out: dict[str, object] = {"dataset": ds.name, "root": ds.root}
    out.update(total)
    if ds.num_splits > 1:
        out["split"] = ds.split
        out["num_splits"] = ds.num_splits
    out["splits"] = {name: split_stats(recs) for name, recs in splits.items()}
    return out


def images_per_identity(records: Iterable[ImageRecord]) -> np.ndarray:
    """Number of images of each real, non-junk identity (for the LSRO Fig. 2 histogram)."""
    per_id = Counter(r.pid for r in records if not r.generated and r.pid != JUNK_PID)
    return np.array(sorted(per_id.values()), dtype=np.int64)


def as_path(p: str | Path) -> Path:
    return Path(p).expanduser()
