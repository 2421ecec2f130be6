"""The one torch Dataset over ImageRecords, for training, feature extraction and GANs.

Keys are indices, or ``(index, seed)`` pairs from the training samplers: the random choices
of such an item come from a generator seeded by ``seed``, so an image's augmentation depends
only on the run seed, the epoch and its position, not on workers, ranks or what ran before
(exact resume); torch's global RNG is not touched. Each item is a dict: ``image``, ``label``
(class index from ``label_map``, -1 for generated or unmapped images), ``pid``, ``camid``,
``generated``, ``cluster`` (-1 when none) and ``index`` (position in the record list).

With a :class:`~genreid.data.transforms.Pipeline`, ``cache=True`` decodes and resizes every
image once, in a thread pool, into memory (uint8), and a DataLoader built with
``collate_fn=dataset.collate`` after ``dataset.batched()`` gets uint8 items and converts
whole batches to float at once. Items are bitwise the same either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

from genreid.core.progress import Progress
from genreid.data.io import read_image
from genreid.data.records import ImageRecord
from genreid.data.transforms import Pipeline, to_tensor, uint8_tensor

CACHE_MEMORY_SHARE = 0.25  # "auto" caches when the images take at most this share of free RAM


class ImageDataset(Dataset):
    """Images of ``records`` read with :func:`read_image` and passed through ``transform``."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        transform: Callable[[Image.Image], Any] | None = None,
        label_map: Mapping[int, int] | None = None,
        cache: bool = False,
    ) -> None:
        self.records = list(records)
        self.transform = transform or to_tensor
        self.label_map = dict(label_map or {})
        self.labels = [-1 if r.generated else self.label_map.get(r.pid, -1) for r in self.records]
        self.pipeline = self.transform if isinstance(self.transform, Pipeline) else None
        self.finish_in_collate = False
        self._generator = torch.Generator()
        self.prepared: torch.Tensor | None = None  # N x 3 x H x W uint8
        if cache:
            if self.pipeline is None:
                raise TypeError("cache=True needs a Pipeline transform")
            self.prepared = self._prepare_all()

    def batched(self) -> ImageDataset:
        """Leave the float conversion of items to :meth:`collate` (one op per batch)."""
        self.finish_in_collate = self.pipeline is not None
        return self

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """The DataLoader's ``collate_fn``: stack the items, finish uint8 batches."""
        if not self.finish_in_collate:
            return default_collate(items)
        choices = [item.pop("choices") for item in items]
        batch = default_collate(items)
        batch["image"] = self.pipeline.finish(batch["image"], choices)
        return batch

    def _prepare_all(self) -> torch.Tensor:
        """Decode and resize every image once (threads: PIL releases the GIL)."""
        prepare = self.pipeline.prepare  # type: ignore[union-attr]
        h, w = self.pipeline.prepared_size  # type: ignore[union-attr]
        out = torch.empty(len(self.records), 3, h, w, dtype=torch.uint8)

        def one(k: int) -> None:
            out[k] = uint8_tensor(prepare(read_image(self.records[k].path)))

        workers = max(1, min(8, len(os.sched_getaffinity(0))))
        with (
            ThreadPoolExecutor(workers) as pool,
            Progress(len(self.records), desc="caching images", unit="img", every=5) as bar,
        ):
            for _ in pool.map(one, range(len(self.records)), chunksize=64):
                bar.update(1)
        return out

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        rec = self.records[index]
        extra: dict[str, Any] = {}
        if self.pipeline is None:
            if seed is None:
                image = self.transform(read_image(rec.path))
            else:
                with torch.random.fork_rng(devices=[]):  # the CPU RNG only (never CUDA's)
                    torch.default_generator.manual_seed(seed)
                    image = self.transform(read_image(rec.path))
        else:
            if self.prepared is not None:
                source = self.prepared[index]
            else:
                source = uint8_tensor(self.pipeline.prepare(read_image(rec.path)))
            g = None if seed is None else self._generator.manual_seed(seed)
            image, choice = self.pipeline.augment(source, g)
            if self.finish_in_collate:
                extra["choices"] = choice
            else:
                image = self.pipeline.finish(image[None], [choice])[0]
        return {
            **extra,
            "image": image,
            "label": self.labels[index],
            "pid": rec.pid,
            "camid": rec.camid,
            "generated": rec.generated,
            "cluster": -1 if rec.cluster is None else rec.cluster,
            "index": index,
        }


def cache_fits(records: Sequence[ImageRecord], pipeline: Pipeline) -> bool:
    """Whether ``records`` prepared by ``pipeline`` (uint8 RGB) fit the cache's memory share."""
    h, w = pipeline.prepared_size
    need = len(records) * h * w * 3
    return need <= CACHE_MEMORY_SHARE * psutil.virtual_memory().available
