"""Metrics output: every completed epoch's record goes to metrics.jsonl and TensorBoard
(through ``Loop.log``, which adds the step and epoch), marked ``epoch_end``."""

from __future__ import annotations

from typing import Any

from genreid.engine.hooks.base import Hook


class MetricsWriter(Hook):
    """Logs the epoch's record: the means of the task's scalars, counts, seconds waiting for
    data and computing, speed, the task's end-of-epoch values and any evaluation."""

    def after_epoch(self, loop: Any, record: dict[str, Any]) -> None:
        """One line of metrics.jsonl (and TensorBoard scalars) per epoch."""
        loop.log({**record, "epoch_end": True})
