"""The one torch Dataset over ImageRecords, for training, feature extraction and GANs.

Keys are indices, or ``(index, seed)`` pairs from the training samplers: the transform of
such an item runs with the CPU generator seeded by ``seed`` inside a forked (then restored)
CPU RNG, so an image's augmentation depends only on the run seed, the epoch and its
position, not on workers, ranks or what ran before (exact resume). CUDA generators are never
touched. Each item is a dict: ``image``, ``label`` (class index from ``label_map``, -1 for
generated or unmapped images), ``pid``, ``camid``, ``generated``, ``cluster`` (-1 when none)
and ``index`` (position in the record list); the default collate batches them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from genreid.data.io import read_image
from genreid.data.records import ImageRecord
from genreid.data.transforms import to_tensor


class ImageDataset(Dataset):
    """Images of ``records`` read with :func:`read_image` and passed through ``transform``."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        transform: Callable[[Image.Image], Any] | None = None,
        label_map: Mapping[int, int] | None = None,
    ) -> None:
        self.records = list(records)
        self.transform = transform or to_tensor
        self.label_map = dict(label_map or {})
        self.labels = [-1 if r.generated else self.label_map.get(r.pid, -1) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        rec = self.records[index]
        img = read_image(rec.path)
        if seed is None:
            image = self.transform(img)
        else:
            with torch.random.fork_rng(devices=[]):  # saves and restores the CPU RNG only,
                torch.default_generator.manual_seed(seed)  # so reseed only that (not CUDA's)
                image = self.transform(img)
        return {
            "image": image,
            "label": self.labels[index],
            "pid": rec.pid,
            "camid": rec.camid,
            "generated": rec.generated,
            "cluster": -1 if rec.cluster is None else rec.cluster,
            "index": index,
        }
