"""CPU settings of a training process: threads, the allocator, and other jobs on the cores.

Measured on 2 cores (docs/RESULTS.md, "Jobs sharing cores"): two trainings that each use all
cores run at about half their combined solo speed, because OpenMP threads spin-wait for
partners whose core the other job holds; giving each of J jobs cores/J threads makes two
jobs together 1.27x one solo run. ``OMP_WAIT_POLICY=PASSIVE`` helps shared runs less (0.85x)
and costs a third of the speed of a run alone, so genreid leaves it to the user.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time
from pathlib import Path

from genreid.core.cache import cache_root

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def cores() -> int:
    """CPUs this process may run on (its affinity mask)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def threads_per_job(jobs: int) -> int:
    """Threads for each of ``jobs`` processes sharing this machine: cores / jobs, at least 1."""
    return max(1, cores() // max(1, jobs))


def steady_allocator() -> bool:
    """Keep freed memory in the process instead of returning it to the OS at every step.

    glibc's defaults hand multi-MB buffers back and forth with the kernel, so in some
    processes every batch pays page faults (a 3 MB normalisation took 2 ms instead of 0.15 ms
    in one process of two). Returns whether the settings took effect (glibc only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 256 << 20) == 1
        return libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1 and ok
    except (OSError, AttributeError):
        return False


class JobRegistry:
    """genreid trainings running on this machine, one small file each, to warn about
    oversubscription (never to change a run's settings: thread counts change results)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root() / "jobs"
        self.path: Path | None = None

    def others(self) -> list[dict]:
        """The other live jobs (stale files of dead processes are removed)."""
        out = []
        if not self.root.is_dir():
            return out
        for f in self.root.glob("*.json"):
            try:
                job = json.loads(f.read_text())
                os.kill(int(job["pid"]), 0)
            except (OSError, ValueError, KeyError):
                f.unlink(missing_ok=True)
                continue
            if int(job["pid"]) != os.getpid():
                out.append(job)
        return out

    def enter(self, threads: int, out: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / f"{os.getpid()}.json"
        info = {"pid": os.getpid(), "threads": threads, "out": out, "started": time.time()}
        self.path.write_text(json.dumps(info))

    def leave(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


def oversubscription(threads: int, others: list[dict]) -> str | None:
    """A warning when this job's threads plus the other jobs' exceed the cores, else None."""
    total = threads + sum(int(j.get("threads", 1)) for j in others)
    n = cores()
    if not others or total <= n:
        return None
    jobs = len(others) + 1
    return (
        f"{len(others)} other genreid training(s) run on this machine; with {total} threads "
        f"on {n} cores every job slows down sharply (two jobs using all cores ran at about "
        f"half their combined solo speed, docs/RESULTS.md). Give each of the {jobs} jobs "
        f"train.threads={threads_per_job(jobs)}, or run them with one launcher that does."
    )
