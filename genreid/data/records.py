"""The one record type every dataset parser produces, and the split container."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from genreid.data.errors import DatasetError

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

    def validation_split(self, held: float | int | str, seed: int | str = 0) -> ReIDDataset:
        """Training identities held out for choosing hyper-parameters, in place of the test
        split: ``held`` < 1 is a fraction of the training identities, >= 1 a number of them,
        drawn (seeded) among those seen by two or more cameras. Each held-out identity gives
        one random image as query and the rest as gallery; the test split is dropped."""
        value, seed = float(held), int(seed)
        by_id: dict[int, list[ImageRecord]] = {}
        for r in self.train:
            if not r.generated and r.pid not in (JUNK_PID, DISTRACTOR_PID):
                by_id.setdefault(r.pid, []).append(r)
        pids = sorted(by_id)
        n = round(value * len(pids)) if value < 1 else int(value)
        usable = [p for p in pids if len({r.camid for r in by_id[p]}) >= 2]
        if not 1 <= n <= min(len(usable), len(pids) - 2):
            raise DatasetError(
                f"{self.name}: validation={held} holds out {n} of {len(pids)} training "
                f"identities ({len(usable)} seen by two or more cameras); expected at least 1, "
                "at most that many, leaving two or more to train: try validation=0.2"
            )
        rng = np.random.default_rng([seed, 7321])
        chosen = sorted(int(p) for p in rng.choice(usable, size=n, replace=False))
        query, gallery = [], []
        for pid in chosen:
            recs = by_id[pid]
            q = int(rng.integers(len(recs)))
            query.append(ImageRecord(recs[q].path, pid, recs[q].camid, Role.QUERY))
            gallery += [ImageRecord(r.path, pid, r.camid, Role.GALLERY)
                        for i, r in enumerate(recs) if i != q]  # fmt: skip
        held_out = set(chosen)
        notes = {**self.notes, "validation": f"{n} of {len(pids)} training identities held "
                 f"out as query/gallery (seed {seed}); the test split is not used"}  # fmt: skip
        return ReIDDataset(
            self.name, self.root, [r for r in self.train if r.pid not in held_out], query,
            gallery, notes=notes, split=self.split, num_splits=self.num_splits,
        )  # fmt: skip

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
