"""Epochs of a training run: where a step is (:class:`StepInfo`), the seed an epoch starts
from (:func:`epoch_seed`) and its running sums (:class:`EpochStats`), which checkpoints carry
so that a resumed epoch logs the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed every epoch of a reseeding task starts from."""
    return (seed * 1_000_003 + epoch * 1_009 + rank) % (2**63)


@dataclass(frozen=True)
class StepInfo:
    """Where a step is: epoch (0-based), batch index within it, the epoch's length, and the
    global step count before this step."""

    epoch: int
    index: int
    length: int
    step: int


class EpochStats:
    """Running sums of one epoch (saved in checkpoints, so a resumed epoch logs the same)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.images = 0
        self.steps = 0
        self.data_seconds = 0.0
        self.compute_seconds = 0.0

    def add(self, values: dict[str, float], images: int, data_s: float, compute_s: float) -> None:
        """Count one step: its logged scalars, images and the seconds waiting and computing."""
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
            self.counts[k] = self.counts.get(k, 0) + 1
        self.images += images
        self.steps += 1
        self.data_seconds += data_s
        self.compute_seconds += compute_s

    def means(self) -> dict[str, float]:
        """The mean of every logged scalar over the epoch's steps so far."""
        return {k: self.sums[k] / max(self.counts[k], 1) for k in self.sums}

    @property
    def busy_seconds(self) -> float:
        """Seconds spent waiting for data and computing."""
        return self.data_seconds + self.compute_seconds

    def record(self) -> dict[str, Any]:
        """The epoch's entry of metrics.jsonl: means, counts, seconds, data share and speed."""
        busy = self.busy_seconds
        return {
            **self.means(),
            "steps": self.steps,
            "images": self.images,
            "seconds": busy,
            "data_seconds": self.data_seconds,
            "compute_seconds": self.compute_seconds,
            "data_share": self.data_seconds / busy if busy > 0 else 0.0,
            "images_per_s": self.images / busy if busy > 0 else 0.0,
        }

    def state_dict(self) -> dict[str, Any]:
        """The sums as plain values, for a checkpoint."""
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        for k, v in state.items():
            setattr(self, k, v)
