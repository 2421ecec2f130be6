"""How long a table's training jobs take on one GPU, from training speeds measured on one
(docs/RESULTS.md), so a paper-scale table can be budgeted before it runs (`--plan`).

A job's time is the images it trains on (epochs x its training images, generated ones
included; a GAN's real images, every critic step counted) divided by its recipe's measured
images/s. Evaluation, sampling and start-up are left out, so the figure is a lower bound of
the wall time; recipes without a GPU measurement are counted, not guessed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genreid.engine.reproduce.plan import Job
from genreid.engine.runspec import RunSpec


@dataclass(frozen=True)
class GpuSpeed:
    """Training images per second of a recipe on a GPU, and where the figure comes from."""

    images_per_s: float
    source: str


MEASURED = (
    "H200, bf16 autocast, 2026-11-26: docs/RESULTS.md (benchmarks/train_speed.py, gan_speed.py)"
)
GPU_SPEEDS: dict[str, GpuSpeed] = {
    "train/ide_paper": GpuSpeed(1958.4, "batch 64"),
    # the same ResNet-50 at 224x224 as ide_paper; the 512-d bottleneck head costs little
    "train/bottleneck_paper": GpuSpeed(1958.4, "ide_paper's: the same network input"),
    "train/bottleneck_released": GpuSpeed(1288.0, "batch 32"),
    "gan/dcgan_paper": GpuSpeed(3400.3, "batch 64"),
    "gan/wgangp_paper": GpuSpeed(414.3, "batch 64"),
}


@dataclass
class Estimate:
    """GPU hours per recipe of a plan's training jobs, and the jobs no figure covers."""

    hours: dict[str, float]  # recipe -> hours of its jobs
    jobs: dict[str, int]  # recipe -> its training jobs (measured or not)

    @property
    def unmeasured(self) -> dict[str, int]:
        """Recipe -> training jobs without a GPU figure (not in the total)."""
        return {r: n for r, n in self.jobs.items() if r not in GPU_SPEEDS}

    @property
    def total(self) -> float:
        return sum(self.hours.values())

    def lines(self) -> list[str]:
        """What `genreid reproduce --plan` prints at paper scale."""
        out = [f"estimated training time on one GPU: {self.total:.1f} h (a lower bound: "
               "evaluation and sampling not counted)"]  # fmt: skip
        if not self.hours:
            out = ["estimated training time on one GPU: unknown (no recipe of this table has "
                   "been measured on a GPU)"]  # fmt: skip
        for recipe in sorted(self.jobs):
            n = self.jobs[recipe]
            if recipe in self.hours:
                speed = GPU_SPEEDS[recipe]
                out.append(f"  {recipe}: {n} job(s), {self.hours[recipe]:.2f} h at "
                           f"{speed.images_per_s:,.0f} images/s ({speed.source})")  # fmt: skip
            else:
                out.append(f"  {recipe}: {n} job(s), not measured on a GPU (not in the total)")
        return [*out, f"  speeds: {MEASURED}"]


def job_images(job: Job, real_images: Callable[[dict[str, Any]], int]) -> int:
    """Images a training job passes through its networks, as its task counts them
    (:meth:`~genreid.engine.loop.Task.trained_images`; 0 for a task that does not)."""
    run = RunSpec.from_params(job.params)
    return run.task().trained_images(run.load(), real_images)


def estimate_gpu_hours(
    jobs: dict[str, Job], real_images: Callable[[dict[str, Any]], int]
) -> Estimate:
    """The GPU hours of every training job in ``jobs`` whose recipe has a measured speed."""
    est = Estimate({}, {})
    for job in jobs.values():
        if job.kind != "train":
            continue
        recipe = job.params["config"]
        est.jobs[recipe] = est.jobs.get(recipe, 0) + 1
        speed = GPU_SPEEDS.get(recipe)
        if speed is None:
            continue
        seconds = job_images(job, real_images) / speed.images_per_s
        est.hours[recipe] = est.hours.get(recipe, 0.0) + seconds / 3600
    return est
