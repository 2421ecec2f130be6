"""Console output of a run: progress with ETA over all its steps (a bar on a terminal, plain
lines in a log; core/progress.py) and one summary line per epoch."""

from __future__ import annotations

from typing import Any

from genreid.core.progress import Progress
from genreid.engine.epoch_stats import StepInfo
from genreid.engine.hooks.base import Hook

EPOCH_LINE_KEYS = ("loss", "loss/d", "loss/g", "rank1", "mAP")


def epoch_line(label: str, epoch: int, epochs: int, record: dict[str, Any]) -> str:
    """The summary of a completed epoch: loss, accuracy, speed, data share."""
    parts = [f"{k} {record[k]:.4g}" for k in EPOCH_LINE_KEYS if k in record]
    parts.append(f"{record['images_per_s']:.1f} img/s")
    parts.append(f"data {100 * record['data_share']:.0f}%")
    return f"{label}epoch {epoch}/{epochs}: " + ", ".join(parts)


class ProgressReporter(Hook):
    """Counts steps out of the whole run (resumed runs start where they were), showing the
    latest scalars, images per second and the share of time spent waiting for data."""

    def __init__(self) -> None:
        self.progress: Progress | None = None

    def before_epoch(self, loop: Any, epoch: int) -> None:
        """Starts the count at the first epoch trained in this call; names the epoch."""
        if self.progress is None:
            lengths = loop.lengths
            self.progress = Progress(
                sum(lengths), desc="", unit="step",
                initial=sum(lengths[: loop.epoch]) + loop.batch_in_epoch,
                enabled=loop.cfg.progress and loop.is_main,
            )  # fmt: skip
        self.progress.set_description(f"{loop.task.label}epoch {epoch + 1}/{loop.cfg.epochs}")

    def after_step(self, loop: Any, at: StepInfo, values: dict[str, float]) -> None:
        """One step more, with its scalars, the epoch's speed and data share so far."""
        s = loop.stats
        busy = max(s.busy_seconds, 1e-9)
        shown = {**values, "img/s": s.images / busy, "data": f"{100 * s.data_seconds / busy:.0f}%"}
        self.progress.update(1, **shown)

    def after_epoch(self, loop: Any, record: dict[str, Any]) -> None:
        """The epoch's summary line."""
        line = epoch_line(loop.task.label, loop.epoch, loop.cfg.epochs, record)
        self.progress.write(line)

    def close(self, loop: Any) -> None:
        """Ends the bar (in a log, a last line)."""
        if self.progress is not None:
            self.progress.close()
