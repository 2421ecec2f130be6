"""Running a plan's jobs on the stage runner: finished jobs are skipped, interrupted ones resume,
and with several workers independent jobs run side by side in their own processes.

Each job becomes a :class:`~genreid.engine.stages.Stage` (``stage_of``: ``KINDS`` maps a job's
kind to its stage; SLSR's plan adds ``render`` and ``generated_check``). One worker runs them in
this process, in plan order; J workers are a pool of J spawned processes, each with
cores/J torch threads (training runs also get ``train.threads``), whose output goes to
``OUT/logs/<job>.log``. The ``dask`` executor sends the jobs to the workers of a Dask
scheduler instead (``genreid.core.cluster``), through the same loop and with the same threads
per job, so it gives the same results; Dask reruns a job whose worker died, never one that
raised. A job starts once its dependencies are done; one whose dependency had to run is asked
again then whether it is done (an evaluation of a run that trained further is not). A job
that fails (a collapsed GAN, say) holds up only the jobs that need it; the others run, and its
error is raised at the end, so running the command again retries just what is missing.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import socket
import sys
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from genreid.core.changes import parse_changes
from genreid.core.cluster import dask_executor
from genreid.core.config import from_dict
from genreid.core.errors import ConfigError
from genreid.data.datasets import load_dataset
from genreid.data.generated import MANIFEST, write_manifest
from genreid.data.synthetic.spec import SyntheticSpec, holds_render
from genreid.engine.clustering import cluster_training_set, write_generated_check
from genreid.engine.gan_sampling import sample_to_folder
from genreid.engine.pretrain_export import EXPORTS, exported, weights_file
from genreid.engine.reproduce.plan import Job
from genreid.engine.runspec import RunSpec
from genreid.engine.stages import Stage, eval_stage, run_finished

EXECUTORS = ("local", "dask")  # a local process pool (or this process), a Dask cluster's workers


def _train_done(job: Job) -> bool:
    out = Path(job.out)
    if not (out / "results.json").is_file():
        return False
    run = RunSpec.from_params(job.params)
    return run_finished(out, run.task().finished_epochs(run.load()))


def _train(job: Job) -> Any:
    run = RunSpec.from_params(job.params)
    return run.task().train(run.load(), Path(job.out), resume="auto")


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
    device = p.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    return sample_to_folder(
        p["run"], p["num"], job.out, seed=p["seed"], device=device, grid=p.get("grid")
    )  # grid: a contact sheet of the samples beside real images (the quickstart's)


def _train_stage(job: Job) -> Stage:
    """Train (or resume) a run of any task; done when it finished its epochs."""
    return Stage(job.id, lambda: _train(job), lambda: _train_done(job), job.title)


def _eval_stage(job: Job) -> Stage:
    """Evaluate a trained run into RUN/``folder`` (with its own or other test settings)."""
    p = job.params
    return eval_stage(
        Path(job.out), p["dataset"], p["root"], p["options"], job.title, p.get("folder", "eval"),
        p.get("overrides", []), rerank=bool(p.get("rerank")),
        ranklist=int(p.get("ranklist", 0)),  # ranklist.png of that many queries (quickstart)
    )  # fmt: skip


def _folder_stage(job: Job, fill: Callable[[Job], Path]) -> Stage:
    """A folder of unlabeled images (GAN samples, real images); done when it has a manifest."""
    return Stage(job.id, lambda: fill(job), lambda: (Path(job.out) / MANIFEST).is_file(), job.title)


def _clusters_stage(job: Job) -> Stage:
    """k-means on a run's features of the training images (``use_k``: that k, not the pick)."""
    out, p = Path(job.out), job.params

    def run() -> dict[str, Any]:
        return cluster_training_set(
            p["run"], p["dataset"], p["root"], out, p["ks"], p["seed"], p["pick"], p["options"],
            use_k=p.get("use_k"),
        )  # fmt: skip

    return Stage(job.id, run, lambda: (out / "clusters.json").is_file(), job.title)


def _render_stage(job: Job) -> Stage:
    """Render synthetic pedestrians (``spec``: a SyntheticSpec as a dict); done when a complete
    render of the same arguments is there."""
    spec = from_dict(SyntheticSpec, job.params["spec"])
    return Stage(
        job.id, lambda: spec.render(job.out), lambda: holds_render(job.out, spec), job.title
    )


def _generated_check_stage(job: Job) -> Stage:
    """SLSR's check of a seed folder's samples against its clusters (generated_check.json)."""
    out, p = Path(job.out), job.params
    return Stage(
        job.id,
        lambda: write_generated_check(out, p["dataset"], p["root"], p["options"]),
        lambda: (out / "generated_check.json").is_file(),
        job.title,
    )


def _export_stage(job: Job) -> Stage:
    """A pretraining's weights file (``product``: backbone or generator) from its finished
    run, into the job's folder; done when its sidecar is newer than the run's checkpoint."""
    p = job.params
    target = weights_file(job.out, p["product"])
    return Stage(
        job.id,
        lambda: EXPORTS[p["product"]](Path(p["run"]), target, Path(p["root"]), p["origin"]),
        lambda: exported(job.out, p["product"], p["run"]),
        job.title,
    )


# job kind -> the stage that runs it and says whether its output is there already (the
# quickstart's and pretraining's plans use them too; export: pretraining's weights file)
KINDS: dict[str, Callable[[Job], Stage]] = {
    "train": _train_stage,
    "eval": _eval_stage,
    "sample": lambda job: _folder_stage(job, _sample),  # looked up when run: tests patch it
    "real": lambda job: _folder_stage(job, _real),
    "clusters": _clusters_stage,
    "render": _render_stage,
    "generated_check": _generated_check_stage,
    "export": _export_stage,
}


def stage_of(job: Job) -> Stage:
    """The stage that runs a job and says whether its output is there already."""
    if job.kind not in KINDS:
        raise ConfigError(f"job {job.id}: unknown kind {job.kind!r}")
    return KINDS[job.kind](job)


def check_jobs(jobs: dict[str, Job]) -> None:
    """Load the config of every training job, and of each evaluation with other settings
    (its training's config + its overrides), so a bad override fails before anything runs."""

    for job in jobs.values():
        if job.kind == "train":
            RunSpec.from_params(job.params).load()
        elif job.kind == "eval" and job.params.get("overrides") and job.deps[0] in jobs:
            RunSpec.from_params(jobs[job.deps[0]].params, job.params["overrides"]).load()


def _init_worker(threads: int | None) -> None:
    """Set this worker's torch threads; None leaves them as they are (a Dask worker's own,
    as a job run in this process keeps this process's)."""
    import torch  # lazy: only pool workers set threads this way

    if threads is None:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def _run_job(job: Job, log: str, threads: int | None) -> bool:
    """One job in a pool worker (a local process or a Dask worker, which has no initializer):
    the pool's torch threads, a log line naming where this attempt runs, then the job."""
    import torch  # lazy: only pool workers run jobs this way

    _init_worker(threads)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:  # a job rerun after its worker died has one line per attempt
        fh.write(f"== {job.id}: {socket.gethostname()}, pid {os.getpid()}, "
                 f"{torch.get_num_threads()} torch thread(s)\n")  # fmt: skip
    return execute(job, log)


def _run_stage(stage: Stage, console: Console) -> bool:
    """Run a job's stage unless its output is there by now (asked at run time: a job planned
    because one it needs had to run may find its output current still); whether it ran."""
    if stage.done():
        console.print(f"[dim]done already: {stage.title or stage.name}[/dim]")
        return False
    console.rule(f"[bold]{stage.title or stage.name}")
    stage.run()
    return True


def execute(job: Job, log: str | None = None) -> bool:
    """Run one job (in a pool worker, its output into ``log``) unless it is done by now;
    whether it ran."""
    if log is None:
        return _run_stage(stage_of(job), Console(stderr=True))
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "a") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            return _run_stage(stage_of(job), Console(file=sys.stderr, force_terminal=False))
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


def jobs_to_run(jobs: dict[str, Job]) -> list[Job]:
    """The jobs not done now, and every job that needs one of them (in plan order): a run
    that trains further makes its evaluation stale, though that evaluation is done now.
    Whether such a dependent is really redone is asked again when it runs (``execute``)."""
    todo = {job.id for job in jobs.values() if not stage_of(job).done()}
    grew = True
    while grew:  # one pass when dependencies come first in the plan, as they do
        grew = False
        for job in jobs.values():
            if job.id not in todo and any(d in todo for d in job.deps):
                todo.add(job.id)
                grew = True
    return [job for job in jobs.values() if job.id in todo]


class Progress:
    """Which jobs finished, failed, or wait on a failed one."""

    def __init__(self, jobs: dict[str, Job], console: Console) -> None:
        self.console = console
        self.todo = jobs_to_run(jobs)
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


@dataclass(frozen=True)
class Pool:
    """Where ``_run_pool`` sends jobs: ``open()`` gives a concurrent.futures executor, which is
    handed at most ``slots`` jobs at a time, each announced with ``verb``."""

    open: Callable[[], AbstractContextManager[Executor]]
    slots: int
    verb: str = "start"


def _process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes (``_run_job`` sets each job's threads)."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


@contextmanager
def _dask_pool(address: str, console: Console) -> Iterator[Executor]:
    """The workers of the Dask scheduler at ``address`` as an executor (``dask_executor``:
    a job that raises is not retried; a lost scheduler is a one-line SchedulerLostError)."""
    with dask_executor(address) as (pool, n):
        console.print(f"dask: {n} worker(s) at {address}" + ("" if n else "; jobs wait for some"))
        yield pool


def check_executor(executor: str, address: str, executor_key: str, address_key: str) -> None:
    """An executor genreid has, and a scheduler address exactly when it is ``dask``; the keys
    are how the caller names them (``--executor`` on the command line, ``executor`` in a
    pipeline config)."""
    if executor not in EXECUTORS:
        raise ConfigError(
            f"{executor_key}: expected one of {', '.join(EXECUTORS)}, got {executor!r}"
        )
    if (executor == "dask") != bool(address):
        raise ConfigError(
            f"{executor_key} dask needs {address_key} tcp://HOST:PORT (its scheduler's), and "
            f"{address_key} goes only with {executor_key} dask"
        )


def check_shared_paths(jobs: dict[str, Job], logs: Path) -> None:
    """Refuse relative paths before jobs go to a cluster, whose workers would resolve them in
    their own working folders: the logs, each job's output, data and GAN run folders, and any
    override value that names a relative path existing here (``model.pretrained=w/x.pt``)."""
    bad = [] if logs.is_absolute() else [str(logs)]
    for job in jobs.values():
        folders = [job.out, *(job.params[k] for k in ("root", "run") if job.params.get(k))]
        bad += [f for f in folders if not os.path.isabs(f)]
        values = [c.value for c in parse_changes(job.params.get("overrides", []))]
        bad += [v for v in values if isinstance(v, str) and "/" in v and not os.path.isabs(v)
                and Path(v).exists()]  # fmt: skip
    if bad:
        raise ConfigError(
            f"--executor dask: {bad[0]} is a relative path, and the workers share the files, "
            "not this folder: give it as an absolute path"
        )


def run_jobs(
    jobs: dict[str, Job],
    workers: int = 1,
    threads: int | None = None,
    logs: Path | None = None,
    console: Console | None = None,
    after_job: Callable[[Job], None] | None = None,
    executor: str = "local",
    address: str = "",
) -> int:
    """Run every job that is not done, dependencies first; returns how many ran. A job that
    fails does not stop the others: its dependents are skipped and its error is raised at the
    end. ``after_job`` is called in this process after each job that ran (tests interrupt
    there). ``executor`` ``dask`` runs them on the workers of the scheduler at ``address``
    (every job whose dependencies are done is handed to it; Dask queues them). ``threads``:
    the torch threads of each job on a pool's or Dask's workers (None: the worker's own)."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    logs = logs or Path("logs")
    if executor == "dask":
        check_shared_paths(jobs, logs)
    state = Progress(jobs, console or Console(stderr=True))
    if executor == "dask":
        pool = Pool(lambda: _dask_pool(address, state.console), len(jobs), "queued")
    elif workers > 1:
        pool = Pool(lambda: _process_pool(workers), workers)
    else:
        return _run_here(state, after_job)
    return _run_pool(state, pool, threads, logs, after_job)


def _run_here(state: Progress, after_job: Callable[[Job], None] | None) -> int:
    """The jobs one after another in this process, in plan order."""
    ran = 0
    for job in state.todo:
        if state.blocked(job):
            continue
        try:
            did_run = execute(job)
        except Exception as exc:  # one failed job (a collapsed GAN) stops only its cells
            state.fail(job, exc)
            continue
        state.finished.add(job.id)
        if did_run:
            ran += 1
            if after_job is not None:
                after_job(job)
    state.result()
    return ran


def _run_pool(
    state: Progress, pool: Pool, threads: int | None, logs: Path,
    after_job: Callable[[Job], None] | None,
) -> int:  # fmt: skip
    """The jobs on an executor (a pool of processes, a Dask cluster), each once its deps are
    done, at most ``pool.slots`` at a time."""
    if not state.todo:
        return 0
    running: dict[Future[bool], Job] = {}
    todo, ran = list(state.todo), 0
    with pool.open() as ex:
        while todo or running:
            for job in list(todo):
                if len(running) >= pool.slots:
                    break
                if state.blocked(job):
                    todo.remove(job)
                elif all(d in state.finished for d in job.deps):
                    todo.remove(job)
                    log = log_path(logs, job)
                    running[ex.submit(_run_job, job, str(log), threads)] = job
                    state.console.print(f"{pool.verb}: {job.title or job.id} (log: {log})")
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
                if not fut.result():  # its output was current when it came to run
                    state.console.print(f"done already: {job.title or job.id}")
                    continue
                ran += 1
                state.console.print(f"done: {job.title or job.id}")
                if after_job is not None:
                    after_job(job)
    state.result()
    if todo:
        raise ConfigError(f"jobs whose dependencies are not in the plan: {[j.id for j in todo]}")
    return ran
