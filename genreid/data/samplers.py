"""Deterministic training batches: real and generated images mixed, split across ranks.

Each epoch's global batches are a pure function of (seed, epoch), built on a torch Generator,
so every rank computes the same list and takes its share (rank r gets items r, r+W, ... of
each global batch, like DistributedSampler), and a resumed run sees the same batches.
Modes: ``random`` shuffles real and generated images together (the LSRO code);
``gen_batch_share`` fixes the generated share of every batch instead; ``pk`` draws P
identities x K images (generated images then come only through ``gen_batch_share``).
Every item is an ``(index, sample_seed)`` pair for :class:`~genreid.data.dataset.ImageDataset`.
A resumed run starts an epoch part-way (``start_batch``) without reading the skipped images.
:class:`EpochSampler` is the plain shuffled order the GAN training uses.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from genreid.core.errors import ConfigError


def _perm(items: Sequence[int], g: torch.Generator) -> list[int]:
    return [items[i] for i in torch.randperm(len(items), generator=g).tolist()]


class MixedBatchSampler(Sampler[list[tuple[int, int]]]):
    """Per-rank batches of ``(index, seed)``; ``set_epoch`` before iterating."""

    def __init__(
        self,
        labels: Sequence[int],
        generated: Sequence[bool],
        batch_size: int,
        seed: int = 0,
        mode: str = "random",
        gen_share: float | None = None,
        num_instances: int = 4,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if mode not in ("random", "pk"):
            raise ConfigError(f"data.sampler: unknown sampler {mode!r}; expected random or pk")
        if gen_share is not None and not 0 <= gen_share < 1:
            raise ConfigError(f"data.gen_batch_share must be in [0, 1), got {gen_share}")
        self.real = [i for i, g in enumerate(generated) if not g]
        self.gen = [i for i, g in enumerate(generated) if g]
        self.labels = list(labels)
        self.global_batch = batch_size * world_size
        self.seed, self.mode, self.gen_share = seed, mode, gen_share
        self.num_instances = num_instances
        self.rank, self.world = rank, world_size
        self.epoch, self.include_generated, self.start_batch = 0, True, 0
        self._warned_pk: set[int] = set()
        if not self.real:
            raise ConfigError("no real training images: check data.root and data.dataset")
        if mode == "pk" and self.global_batch < num_instances:
            raise ConfigError("data.pk_instances must not exceed the batch size")

    def set_epoch(self, epoch: int, include_generated: bool = True, start_batch: int = 0) -> None:
        """Select the epoch (0-based), whether generated images take part in it, and the
        first batch to yield (a resumed run skips those already trained on)."""
        self.epoch, self.include_generated = epoch, include_generated and bool(self.gen)
        self.start_batch = start_batch

    def global_batches(self) -> list[list[int]]:
        """This epoch's batches over all ranks (indices into the training records)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        B = self.global_batch
        gen = self.include_generated
        if self.mode == "random" and gen and self.gen_share is None:
            order = _perm(self.real + self.gen, g)
            return self._chunk(order, B)
        n_gen = round(B * self.gen_share) if gen and self.gen_share is not None else 0
        n_real = B - n_gen
        if self.mode == "pk":
            if gen and self.gen_share is None:
                raise ConfigError(
                    "data.sampler=pk mixes generated images only through "
                    "data.gen_batch_share (e.g. 0.25)"
                )
            real_batches = self._pk(g, n_real)
            self._warn_pk_size(n_real, n_gen)
        else:
            real_batches = self._chunk(_perm(self.real, g), n_real)
        if n_gen == 0:
            return real_batches
        pool: list[int] = []
        out = []
        for rb in real_batches:
            while len(pool) < n_gen:
                pool += _perm(self.gen, g)
            batch = rb + pool[:n_gen]
            pool = pool[n_gen:]
            out.append(_perm(batch, g))
        return out

    def _chunk(self, order: list[int], size: int) -> list[list[int]]:
        if len(order) < size:  # a tiny set: one short batch rather than none
            return [order] if len(order) >= self.world else []
        return [order[i : i + size] for i in range(0, len(order) - size + 1, size)]

    def _warn_pk_size(self, n_real: int, n_gen: int) -> None:
        """Warn (rank 0, once per real share) when P x K real images differ from that share."""
        K = self.num_instances
        real = max(1, n_real // K) * K
        if real == n_real or n_real in self._warned_pk or self.rank != 0:
            return
        self._warned_pk.add(n_real)
        eff, W = real + n_gen, self.world
        asked = f"train.batch_size {self.global_batch // W}"
        asked += f" x {W} processes = {self.global_batch}" if W > 1 else ""
        warnings.warn(
            f"data.sampler=pk: the real share of each batch ({n_real} images) is not a multiple "
            f"of data.pk_instances={K}, so a batch holds {real // K} identities x {K} = {real} "
            f"real + {n_gen} generated images: the effective batch size is {eff}, not {asked}; "
            f"make the real share a multiple of {K} to use the full batch",
            UserWarning,
            stacklevel=3,
        )

    def _pk(self, g: torch.Generator, n_real: int) -> list[list[int]]:
        K = self.num_instances
        P = max(1, n_real // K)
        by_id: dict[int, list[int]] = defaultdict(list)
        for i in self.real:
            by_id[self.labels[i]].append(i)
        groups: dict[int, list[list[int]]] = {}
        for pid in sorted(by_id):
            idx = _perm(by_id[pid], g)
            if len(idx) < K:  # sample with replacement up to K
                extra = torch.randint(len(idx), (K - len(idx),), generator=g).tolist()
                idx += [idx[j] for j in extra]
            groups[pid] = [idx[i : i + K] for i in range(0, len(idx) - K + 1, K)]
        batches = []
        while True:
            avail = [pid for pid in sorted(groups) if groups[pid]]
            if len(avail) < P:
                break
            chosen = _perm(avail, g)[:P]
            batches.append([i for pid in chosen for i in groups[pid].pop()])
        if not batches:
            raise ConfigError(f"data.sampler=pk needs at least {P} identities per batch")
        return batches

    def _seeds(self, n: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7_777_777)
        return torch.randint(0, 2**62, (n,), generator=g).tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batches = self.global_batches()
        seeds = iter(self._seeds(sum(map(len, batches))))
        for k, b in enumerate(batches):
            pairs = [(i, next(seeds)) for i in b]
            if k >= self.start_batch:
                yield pairs[self.rank :: self.world]

    def __len__(self) -> int:
        """Batches in the whole epoch (skipped ones included)."""
        return len(self.global_batches())


class EpochSampler(Sampler[int]):
    """A shuffled order fixed by (seed, epoch), this rank's share, optionally part-way in.

    Rank r of W takes items r, r+W, ... of the order. Resuming mid-epoch skips the items
    already consumed without reading their images, so the remaining batches are the same as
    in an uninterrupted run.
    """

    def __init__(
        self, n: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.world = rank, world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch and the first of this rank's items to yield."""
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.rank :: self.world][self.start :])

    def __len__(self) -> int:
        return max(0, len(range(self.rank, self.n, self.world)) - self.start)
