"""The resource guard: the run's CPU threads, a steady allocator, and a warning when other
genreid trainings on this machine already use its cores (never a changed setting: thread
counts change results)."""

from __future__ import annotations

import sys
from typing import Any

import torch

from genreid.core.cpu import JobRegistry, oversubscription, steady_allocator
from genreid.engine.hooks.base import Hook


class ResourceGuard(Hook):
    """Sets ``train.threads`` before anything is built, enters the run in ``jobs`` (the
    registry of trainings on this machine) and leaves it at the end; warns on shared cores."""

    def __init__(self, jobs: JobRegistry) -> None:
        self.jobs = jobs
        self.warning: str | None = None

    def before_setup(self, loop: Any) -> None:
        """Threads and allocator first: data and modules are built with them."""
        if loop.cfg.threads:
            torch.set_num_threads(loop.cfg.threads)
        steady_allocator()
        self.warning = oversubscription(torch.get_num_threads(), self.jobs.others())
        self.jobs.enter(torch.get_num_threads(), str(loop.out))

    def before_train(self, loop: Any) -> None:
        """The warning on the console and in metrics.jsonl (once the run folder is ready)."""
        if self.warning and loop.is_main:
            print(f"warning: {self.warning}", file=sys.stderr, flush=True)
            loop.rundir.log_metrics(
                {"step": loop.step, "event": "shared_cores", "warning": self.warning}
            )

    def close(self, loop: Any) -> None:
        """This run no longer uses the cores."""
        self.jobs.leave()
