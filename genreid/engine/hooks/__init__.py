"""The training loop's hooks: each concern of a run that is not the task's, in its own module.

The loop (``engine/loop.py``) calls them in this order at every point (``hooks/base.py``):

1. :class:`PeriodicEvaluation` (``evaluation.py``): the task's ``evaluate`` when due.
2. :class:`MetricsWriter` (``metrics.py``): each epoch's record to metrics.jsonl and TensorBoard.
3. :class:`ProgressReporter` (``progress.py``): progress with ETA and the epoch line.
4. :class:`Checkpointer` (``checkpoints.py``): checkpoints (never with NaN weights), resume.
5. :class:`ResourceGuard` (``resources.py``): threads, allocator, other jobs on the cores.

then the hooks passed to ``Loop(..., hooks=[...])``. The order matters where two act at one
point: an evaluation joins the epoch's record before it is logged and shown, and both come
before the epoch's checkpoint (which a NaN weight refuses); progress counts a step before a
mid-epoch checkpoint. A new concern of every run is a new :class:`Hook` subclass in a module
here, placed in :func:`default_hooks`.
"""

from genreid.core.cpu import JobRegistry
from genreid.engine.hooks.base import Hook
from genreid.engine.hooks.checkpoints import CHECKPOINT_FORMAT, Checkpointer, non_finite_tensors
from genreid.engine.hooks.evaluation import PeriodicEvaluation
from genreid.engine.hooks.metrics import MetricsWriter
from genreid.engine.hooks.progress import ProgressReporter
from genreid.engine.hooks.resources import ResourceGuard


def default_hooks(checkpointer: Checkpointer, jobs: JobRegistry) -> list[Hook]:
    """The built-in hooks of every run, in the order the loop calls them."""
    return [
        PeriodicEvaluation(),
        MetricsWriter(),
        ProgressReporter(),
        checkpointer,
        ResourceGuard(jobs),
    ]


__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpointer",
    "Hook",
    "MetricsWriter",
    "PeriodicEvaluation",
    "ProgressReporter",
    "ResourceGuard",
    "default_hooks",
    "non_finite_tensors",
]
