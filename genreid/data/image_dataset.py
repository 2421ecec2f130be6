"""A torch Dataset over ImageRecords, shared by GAN training and (later) re-ID training.

Each item is a dict: ``image`` (the transformed image), ``label`` (class index from
``label_map``, -1 for generated or unmapped images), ``pid``, ``camid``, ``generated``,
``cluster`` (-1 when none), ``index`` (position in the record list) and ``path``. The default
collate function turns a list of them into a dict of batched tensors (paths as a list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from genreid.data.io import read_image
from genreid.data.records import ImageRecord


class ImageDataset(Dataset):
    """Images of ``records`` read with :func:`read_image` and passed through ``transform``."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        transform: Callable[[Image.Image], Any] | None = None,
        label_map: Mapping[int, int] | None = None,
    ) -> None:
        self.records = list(records)
        self.transform = transform
        self.label_map = dict(label_map or {})

    def __len__(self) -> int:
        return len(self.records)

    def label(self, rec: ImageRecord) -> int:
        """Class index of a real image, -1 for generated images and identities not in the map."""
        return -1 if rec.generated else self.label_map.get(rec.pid, -1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        img = read_image(rec.path)
        image = self.transform(img) if self.transform is not None else to_tensor(img)
        return {
            "image": image,
            "label": self.label(rec),
            "pid": rec.pid,
            "camid": rec.camid,
            "generated": rec.generated,
            "cluster": -1 if rec.cluster is None else rec.cluster,
            "index": index,
            "path": rec.path,
        }


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor 3xHxW in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0)


class GanTransform:
    """Resize bilinearly to (H, W), optional random horizontal flip, scale to [-1, 1].

    The flip draws from torch's global RNG, so with ``num_workers=0`` a run resumed from a
    checkpoint (which stores that RNG) sees the same flips as an uninterrupted one.
    """

    def __init__(self, size: Sequence[int], flip: bool = True) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.flip = flip

    def __call__(self, img: Image.Image) -> torch.Tensor:
        h, w = self.size
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        x = to_tensor(img).mul_(2).sub_(1)
        if self.flip and bool(torch.rand(()) < 0.5):
            x = x.flip(-1)
        return x


class EpochSampler(Sampler[int]):
    """A shuffled order fixed by (seed, epoch), optionally starting part-way through an epoch.

    Resuming mid-epoch skips the indices already consumed without reading their images, so
    the remaining batches are the same as in an uninterrupted run.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :])

    def __len__(self) -> int:
        return max(0, self.n - self.start)
