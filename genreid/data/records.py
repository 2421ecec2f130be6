"""The one record type every dataset parser produces, and the split container."""

from __future__ import annotations

from collections.abc import Iterable
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

    def all_for_training(self) -> ReIDDataset:
        """Every identity of every split as training data, nothing left to evaluate on (for
        pretraining): query and gallery images of real identities (not junk, not
        distractors) join the training images under their own identity numbers."""
        moved = [
            ImageRecord(r.path, r.pid, r.camid, Role.TRAIN)
            for r in (*self.query, *self.gallery, *self.mquery, *self.unused)
            if r.pid not in (JUNK_PID, DISTRACTOR_PID) and not r.generated
        ]
        seen = {r.path for r in self.train}
        extra = [r for r in dict.fromkeys(moved) if r.path not in seen]
        notes = {**self.notes, "splits": "train, query and gallery identities all train"}
        return ReIDDataset(self.name, self.root, [*self.train, *extra], [], [], notes=notes,
                           split=self.split, num_splits=self.num_splits)  # fmt: skip

    def train_label_map(self) -> dict[int, int]:
        """Contiguous class labels 0..K-1 for the training identities (sorted by pid)."""
        return {pid: i for i, pid in enumerate(train_pids(self.train))}


def train_pids(records: Iterable[ImageRecord]) -> list[int]:
    """Sorted identities usable as classes: real, not junk."""
    return sorted({r.pid for r in records if not r.generated and r.pid != JUNK_PID})


def reduce_labels(
    records: list[ImageRecord], fraction: float, seed: int, keep_below: int = 8
) -> list[ImageRecord]:
    """FAPL's reduced-label subsets (Table IV): every image of identities with fewer than
    ``keep_below`` images, and a seeded ``round(fraction * n)`` of the n images of the others;
    the record order is kept."""
    if fraction >= 1:
        return list(records)
    by_id: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        by_id.setdefault(r.pid, []).append(i)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for pid in sorted(by_id):
        idx = by_id[pid]
        if len(idx) < keep_below:
            keep += idx
        else:
            keep += rng.choice(idx, size=max(1, round(fraction * len(idx))), replace=False).tolist()
    return [records[i] for i in sorted(keep)]


def as_path(p: str | Path) -> Path:
    return Path(p).expanduser()
