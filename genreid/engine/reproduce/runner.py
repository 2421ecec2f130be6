"""Running a plan's jobs on the stage runner: finished jobs are skipped, interrupted ones resume,
and with several workers independent jobs run side by side in their own processes.

Each job becomes a :class:`~genreid.engine.stages.Stage` (``stage_of``). One worker runs them in
this process, in plan order; J workers are a pool of J spawned processes, each with
cores/J torch threads (training runs also get ``train.threads``), whose output goes to
``OUT/logs/<job>.log``. A job starts once its dependencies are done. A job that fails (a
collapsed GAN, say) holds up only the jobs that need it; the others run, and its error is
raised at the end, so running the command again retries just what is missing.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import sys
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from rich.console import Console

from genreid.core.config import load_config
from genreid.core.errors import ConfigError
from genreid.data.datasets import load_dataset
from genreid.data.generated import MANIFEST, write_manifest
from genreid.engine.clustering import cluster_training_set
from genreid.engine.gan_sampling import sample_to_folder
from genreid.engine.reproduce.plan import Job, task_of
from genreid.engine.stages import Stage, eval_stage, run_finished, run_stages
from genreid.engine.tasks import TASKS


def _train_done(job: Job) -> bool:
    out = Path(job.out)
    if not (out / "results.json").is_file():
        return False
    task = TASKS.get(task_of(job.params["config"]))
    cfg = load_config(task.config_class, job.params["config"], job.params["overrides"])
    epochs = getattr(getattr(cfg, "train", None), "epochs", None)
    return run_finished(out, epochs if task.name == "reid" else None)


def _train(job: Job) -> Any:
    task = TASKS.get(task_of(job.params["config"]))
    cfg = load_config(task.config_class, job.params["config"], job.params["overrides"])
    return task.train(cfg, Path(job.out), resume="auto")


def _real(job: Job) -> Path:
    """A seeded subset of another dataset's training images, linked (or copied, across file
    systems) into the job's folder with a manifest, as a generated folder is."""
    p = job.params
    records = [r for r in load_dataset(p["dataset"], p["root"]).train if r.pid >= 0]
    rng = random.Random(p["seed"])
    chosen = rng.sample(records, min(p["num"], len(records)))
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, rec in enumerate(chosen):
        src = Path(rec.path).resolve()
        dst = out / f"{i:06d}_{src.name}"
        if not dst.exists():
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        rows.append({"path": dst.name})
    return write_manifest(out, rows)


def _sample(job: Job) -> Path:
    import torch  # lazy: the planner and --list never need torch

    p = job.params
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return sample_to_folder(p["run"], p["num"], job.out, seed=p["seed"], device=device)


def stage_of(job: Job) -> Stage:
    """The stage that runs a job and says whether its output is there already."""
    out, p = Path(job.out), job.params
    if job.kind == "train":
        return Stage(job.id, lambda: _train(job), lambda: _train_done(job), job.title)
    if job.kind == "eval":
        return eval_stage(
            out, p["dataset"], p["root"], p["options"], job.title, p.get("folder", "eval"),
            p.get("overrides", []), rerank=bool(p.get("rerank")),
        )  # fmt: skip
    if job.kind in ("sample", "real"):
        fn = _sample if job.kind == "sample" else _real
        return Stage(job.id, lambda: fn(job), lambda: (out / MANIFEST).is_file(), job.title)
    if job.kind == "clusters":
        return Stage(
            job.id,
            lambda: cluster_training_set(
                p["run"], p["dataset"], p["root"], out, p["ks"], p["seed"], p["pick"], p["options"]
            ),  # fmt: skip
            lambda: (out / "clusters.json").is_file(),
            job.title,
        )
    raise ConfigError(f"job {job.id}: unknown kind {job.kind!r}")


def check_jobs(jobs: dict[str, Job]) -> None:
    """Load the config of every training job, and of each evaluation with other settings
    (its training's config + its overrides), so a bad override fails before anything runs."""

    def load(config: str, overrides: list[str]) -> None:
        load_config(TASKS.get(task_of(config)).config_class, config, overrides)

    for job in jobs.values():
        if job.kind == "train":
            load(job.params["config"], job.params["overrides"])
        elif job.kind == "eval" and job.params.get("overrides") and job.deps[0] in jobs:
            train = jobs[job.deps[0]].params
            load(train["config"], [*train["overrides"], *job.params["overrides"]])


def _init_worker(threads: int) -> None:
    import torch  # lazy: only pool workers set threads this way

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def execute(job: Job, log: str | None = None) -> None:
    """Run one job (in a pool worker, its output into ``log``)."""
    if log is None:
        run_stages([stage_of(job)])
        return
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "a") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            run_stages([stage_of(job)], Console(file=sys.stderr, force_terminal=False))
        except BaseException:
            traceback.print_exc()  # into the log; the pool hands the error to the scheduler
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def log_path(logs: Path, job: Job) -> Path:
    """OUT/logs/<job id with / as __>.log."""
    return logs / (job.id.replace("/", "__") + ".log")


class Progress:
    """Which jobs finished, failed, or wait on a failed one."""

    def __init__(self, jobs: dict[str, Job], console: Console) -> None:
        self.console = console
        self.todo = [j for j in jobs.values() if not stage_of(j).done()]
        self.finished = set(jobs) - {j.id for j in self.todo}
        self.failed: dict[str, BaseException] = {}
        self.skipped: list[str] = []
        if self.todo:
            console.print(f"{len(self.finished)} of {len(jobs)} jobs done already; "
                          f"{len(self.todo)} to run")  # fmt: skip

    def blocked(self, job: Job) -> bool:
        """A job that waits on a failed (or skipped) one is skipped."""
        if any(d in self.failed or d in self.skipped for d in job.deps):
            self.skipped.append(job.id)
            return True
        return False

    def fail(self, job: Job, exc: BaseException, log: Path | None = None) -> None:
        self.failed[job.id] = exc
        where = f" (log: {log})" if log else ""
        self.console.print(f"[red]failed: {job.title or job.id}: {exc}{where}[/red]")

    def result(self) -> None:
        """Raise the first failure, after saying what failed and what it held up."""
        if not self.failed:
            return
        self.console.print(
            f"[red]{len(self.failed)} job(s) failed: {', '.join(self.failed)}; "
            f"{len(self.skipped)} skipped because they need them. Fix the cause and run the "
            "same command again: finished jobs are kept.[/red]"
        )
        raise next(iter(self.failed.values()))


def run_jobs(
    jobs: dict[str, Job],
    workers: int = 1,
    threads: int = 1,
    logs: Path | None = None,
    console: Console | None = None,
    after_job: Callable[[Job], None] | None = None,
) -> int:
    """Run every job that is not done, dependencies first; returns how many ran. A job that
    fails does not stop the others: its dependents are skipped and its error is raised at the
    end. ``after_job`` is called in this process after each job that ran (tests interrupt
    there)."""
    state = Progress(jobs, console or Console(stderr=True))
    ran = 0
    if workers <= 1:
        for job in state.todo:
            if state.blocked(job):
                continue
            try:
                execute(job)
            except Exception as exc:  # one failed job (a collapsed GAN) stops only its cells
                state.fail(job, exc)
                continue
            state.finished.add(job.id)
            ran += 1
            if after_job is not None:
                after_job(job)
        state.result()
        return ran
    return _run_pool(state, workers, threads, logs or Path("logs"), after_job)


def _run_pool(
    state: Progress, workers: int, threads: int, logs: Path,
    after_job: Callable[[Job], None] | None,
) -> int:  # fmt: skip
    """The jobs in a pool of ``workers`` spawned processes, each job once its deps are done."""
    running: dict[Future[None], Job] = {}
    todo, ran, ctx = list(state.todo), 0, multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads,)) as pool:  # fmt: skip
        while todo or running:
            for job in list(todo):
                if len(running) >= workers:
                    break
                if state.blocked(job):
                    todo.remove(job)
                elif all(d in state.finished for d in job.deps):
                    todo.remove(job)
                    log = log_path(logs, job)
                    running[pool.submit(execute, job, str(log))] = job
                    state.console.print(f"start: {job.title or job.id} (log: {log})")
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                job = running.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    state.fail(job, exc, log_path(logs, job))
                    continue
                state.finished.add(job.id)
                ran += 1
                state.console.print(f"done: {job.title or job.id}")
                if after_job is not None:
                    after_job(job)
    state.result()
    if todo:
        raise ConfigError(f"jobs whose dependencies are not in the plan: {[j.id for j in todo]}")
    return ran
