"""Training/test dataset over ImageRecords whose augmentation is seeded per sample.

The training sampler yields ``(index, seed)`` pairs; the transform of that item runs with the
CPU generator seeded by ``seed`` inside a forked (then restored) CPU RNG, so an image's
augmentation depends only on the run seed, the epoch and its position, not on workers, ranks or
what ran before (exact resume). CUDA generators are never touched.
Items are ``(image, label, camid, generated, cluster, index)``; label -1 for generated images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from genreid.data.io import read_image
from genreid.data.records import ImageRecord


class ReIDImageDataset(Dataset):
    """Images of ``records`` through ``transform``; keys may be ints or (index, seed) pairs."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        transform: Callable[[Any], torch.Tensor],
        label_map: Mapping[int, int] | None = None,
    ) -> None:
        self.records = list(records)
        self.transform = transform
        self.label_map = dict(label_map or {})
        self.labels = [-1 if r.generated else self.label_map.get(r.pid, -1) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple:
        index, seed = key if isinstance(key, tuple) else (key, None)
        rec = self.records[index]
        img = read_image(rec.path)
        if seed is None:
            x = self.transform(img)
        else:
            with torch.random.fork_rng(devices=[]):  # saves and restores the CPU RNG only,
                torch.default_generator.manual_seed(seed)  # so reseed only that (not CUDA's)
                x = self.transform(img)
        cluster = -1 if rec.cluster is None else rec.cluster
        return x, self.labels[index], rec.camid, rec.generated, cluster, index
