"""Batches of positive pairs for DG-Net: two images of one identity per pair (the paper's
same-identity reconstruction needs them), every identity at most once in a global batch (so
that swapping codes between pairs always crosses identities).

Anchors run through seeded permutations of all real images (each image as often as any
other); an anchor whose identity is already in the batch waits for the next batch. The
positive is another image of the anchor's identity, drawn uniformly (the anchor itself when
the identity has one image). An epoch's batches are a function of (seed, epoch) alone, rank r
of W takes pairs r, r+W, ... of each global batch, and a resumed epoch skips the batches
already trained on without reading them.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from genreid.core.errors import ConfigError


class PairBatchSampler(Sampler[list[tuple[int, int]]]):
    """``length`` batches per epoch of ``pairs`` pairs per process; a batch is the list of
    ``(index, seed)`` items: this rank's anchors, then their positives in the same order."""

    def __init__(
        self,
        labels: Sequence[int],
        pairs: int,
        length: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.labels = list(labels)
        self.by_id: dict[int, list[int]] = defaultdict(list)
        for i, y in enumerate(self.labels):
            if y >= 0:
                self.by_id[y].append(i)
        self.images = [i for i, y in enumerate(self.labels) if y >= 0]
        self.global_pairs = pairs * world_size
        if len(self.by_id) < self.global_pairs:
            raise ConfigError(
                f"a batch of {self.global_pairs} pairs needs {self.global_pairs} training "
                f"identities, the data has {len(self.by_id)}; lower train.pairs"
            )
        self.length, self.seed = length, seed
        self.rank, self.world = rank, world_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch (0-based) and the first batch to yield."""
        self.epoch, self.start_batch = epoch, start_batch

    def global_batches(self) -> list[list[tuple[int, int]]]:
        """This epoch's batches over all ranks: (anchor, positive) indices."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        waiting: deque[int] = deque()
        out = []
        for _ in range(self.length):
            batch: list[int] = []
            used: set[int] = set()
            deferred: list[int] = []
            while len(batch) < self.global_pairs:
                if not waiting:
                    order = torch.randperm(len(self.images), generator=g).tolist()
                    waiting.extend(self.images[k] for k in order)
                i = waiting.popleft()
                if self.labels[i] in used:
                    deferred.append(i)
                else:
                    batch.append(i)
                    used.add(self.labels[i])
            waiting.extendleft(reversed(deferred))
            out.append([(i, self._positive(i, g)) for i in batch])
        return out

    def _positive(self, anchor: int, g: torch.Generator) -> int:
        others = [j for j in self.by_id[self.labels[anchor]] if j != anchor]
        if not others:
            return anchor
        return others[int(torch.randint(len(others), (1,), generator=g))]

    def _seeds(self, n: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7_777_777)
        return torch.randint(0, 2**62, (n,), generator=g).tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batches = self.global_batches()
        seeds = iter(self._seeds(2 * self.global_pairs * len(batches)))
        for k, batch in enumerate(batches):
            items = [((a, next(seeds)), (p, next(seeds))) for a, p in batch]
            if k >= self.start_batch:
                mine = items[self.rank :: self.world]
                yield [a for a, _ in mine] + [p for _, p in mine]

    def __len__(self) -> int:
        """Batches in the whole epoch (skipped ones included)."""
        return self.length
