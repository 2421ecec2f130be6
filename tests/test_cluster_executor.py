"""``genreid reproduce --executor dask`` on a real local cluster: a scheduler and two workers of
one thread, each its own process on 127.0.0.1. The micro table run there equals the local
executor's bit for bit (weights, features, generated images, metrics), each job with the
local pool's thread count; a job whose worker is killed mid-run is resumed on the other; a job
that raises names its log and is not retried; a missing extra, a wrong address, workers with
several threads, relative paths and a scheduler lost mid-table each end in one line that says
what to do."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from genreid.cli import app
from genreid.core.cluster import SchedulerLostError, check_workers, connect
from genreid.core.errors import ConfigError, GenreidError
from genreid.data.generated import MANIFEST
from genreid.engine.gan_sampling import SamplingError
from genreid.engine.reproduce.pipeline import run_reproduce
from genreid.engine.reproduce.plan import Job
from genreid.engine.reproduce.runner import check_shared_paths, run_jobs
from tests.test_reproduce_run import MICRO, SMALL_GAN, SMALL_RECIPE, metrics, micro
from tests.test_train_engine import make_data

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 240.0  # seconds for the processes to start on a loaded machine


def quiet() -> Console:
    """A console whose output the test can read (wide: a log path stays on one line)."""
    return Console(file=io.StringIO(), width=1000)


class Cluster:
    """A Dask scheduler and two one-thread workers as separate processes, no nanny, so that a
    SIGKILL of a worker's pid kills that worker. Workers start with OMP_NUM_THREADS=2, so a job
    that ran with its worker's default threads instead of the table's would show it."""

    def __init__(self, folder: Path, workers: int = 2) -> None:
        self.folder = folder
        self.file = folder / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.client: Any = None
        env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(REPO),
               "GENREID_CACHE": str(folder / "cache")}  # fmt: skip
        env.pop("GENREID_CRASH_AT", None)
        self._spawn("scheduler", "distributed.cli.dask_scheduler", env, "--port", "0",
                    "--no-dashboard", "--idle-timeout", "900")  # fmt: skip
        for i in range(workers):
            self._spawn(f"worker{i}", "distributed.cli.dask_worker", env, "--nthreads", "1",
                        "--no-nanny", "--no-dashboard", "--death-timeout", "60",
                        "--local-directory", str(folder / f"worker{i}"))  # fmt: skip
        self.workers = self.procs[1:]

    def _spawn(self, name: str, module: str, env: dict[str, str], *args: str) -> None:
        cmd = [sys.executable, "-m", module, "--host", "127.0.0.1",
               "--scheduler-file", str(self.file), *args]  # fmt: skip
        with open(self.folder / f"{name}.log", "w") as log:
            self.procs.append(subprocess.Popen(cmd, env=env, cwd=self.folder, stdout=log,
                                               stderr=subprocess.STDOUT))  # fmt: skip

    def ready(self) -> str:
        """The scheduler's address, once both workers are registered."""
        from distributed import Client

        if self.client is None:
            deadline = time.monotonic() + START_TIMEOUT
            while not self.file.is_file() and time.monotonic() < deadline:
                assert self.procs[0].poll() is None, self.logs()
                time.sleep(0.2)
            self.client = Client(scheduler_file=str(self.file), timeout=START_TIMEOUT,
                                 set_as_default=False)  # fmt: skip
            try:
                self.client.wait_for_workers(len(self.workers), timeout=START_TIMEOUT)
            except TimeoutError:
                pytest.fail(f"the workers did not start:\n{self.logs()}")
        return self.client.scheduler.address

    @property
    def pids(self) -> set[int]:
        return {p.pid for p in self.workers}

    def logs(self) -> str:
        return "\n".join(f.read_text()[-2000:] for f in sorted(self.folder.glob("*.log")))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    pytest.importorskip("distributed")
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("data"), ids=8, n_gen=0)[0]


@pytest.fixture(scope="module")
def local_table(tmp_path_factory: pytest.TempPathFactory, root: Path) -> Path:
    """The micro table (one seed) run by the local executor in this process, one thread."""
    out = tmp_path_factory.mktemp("local") / "t"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENREID_CACHE", str(out.parent / "cache"))
        try:
            run_reproduce(micro(root, seeds=1), out, console=quiet())
        finally:
            torch.set_num_threads(threads)
    return out


def _tensors(obj: Any, prefix: str = "") -> Iterator[tuple[str, bytes]]:
    if isinstance(obj, torch.Tensor):
        yield prefix, obj.contiguous().numpy().tobytes()
    elif isinstance(obj, dict):
        for key in sorted(obj, key=str):
            yield from _tensors(obj[key], f"{prefix}/{key}")
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from _tensors(item, f"{prefix}/{i}")


def _digest(parts: Iterator[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        h.update(name.encode() + data)
    return h.hexdigest()


def _checkpoint(path: Path) -> str:
    """Every tensor of a checkpoint but the state of Python's global ``random``: genreid seeds
    and saves that generator but never draws from it, and a Dask worker's own threads do (its
    state at a checkpoint varies from run to run, its results do not)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    del ckpt["rng"]["python"]
    return _digest(_tensors(ckpt))


def fingerprint(out: Path) -> dict[str, Any]:
    """What a table's jobs computed, bit for bit: every checkpoint (weights, optimizer, torch
    and numpy RNG states), every features file, every generated image, the metrics and
    table.csv."""
    found: dict[str, Any] = {"metrics": metrics(out), "table.csv": (out / "table.csv").read_text()}
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(out).as_posix()
        if f.name == "last.pt":
            found[rel] = _checkpoint(f)
        elif f.suffix == ".npz":
            with np.load(f) as z:
                found[rel] = _digest((k, np.ascontiguousarray(z[k]).tobytes()) for k in sorted(z))
        elif f.suffix == ".jpg":
            found[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
    kinds = [rel.rsplit(".", 1)[-1] for rel in found]
    assert [kinds.count(k) for k in ("pt", "npz", "jpg")] == [3, 4, 16]  # GAN + 2 runs, 2 evals
    return found


def attempts(log: Path) -> list[int]:
    """The pid of each attempt at a job (its log's ``== JOB: HOST, pid N, ...`` lines)."""
    lines = [x for x in log.read_text().splitlines() if x.startswith("== ")]
    return [int(x.split(", pid ")[1].split(",")[0]) for x in lines]


def dask_table(root: Path, out: Path, address: str) -> None:
    run_reproduce(micro(root, seeds=1, executor="dask", address=address), out, console=quiet())


def test_a_table_on_dask_equals_the_local_executors(cluster, local_table, root, tmp_path):
    address = cluster.ready()
    out = tmp_path / "dask"
    dask_table(root, out, address)
    assert fingerprint(out) == fingerprint(local_table)
    logs = sorted((out / "logs").glob("*.log"))
    assert len(logs) == 6  # GAN, sample, two trainings, two evaluations
    for log in logs:
        first = log.read_text().splitlines()[0]
        assert first.endswith(", 1 torch thread(s)"), first  # the table's, not the worker's 2
        assert attempts(log)[0] in cluster.pids  # run by a worker, not by this process


def test_a_failed_job_names_its_log_and_is_not_retried(cluster, tmp_path):
    address = cluster.ready()
    out = tmp_path / "t"
    params = {"run": str(tmp_path / "no_gan"), "num": 2, "seed": 0}
    broken = Job("generated/a", "sample", str(out / "generated/a"), params)
    after = Job("generated/b", "sample", str(out / "generated/b"), params, deps=[broken.id])
    console = quiet()
    with pytest.raises(SamplingError, match="no_gan does not exist"):  # its own type, its text
        run_jobs({j.id: j for j in (broken, after)}, threads=1, logs=out / "logs",
                 console=console, executor="dask", address=address)  # fmt: skip
    log = out / "logs" / "generated__a.log"
    said = console.file.getvalue()
    assert f"failed: generated/a: run folder {tmp_path / 'no_gan'} does not exist" in said
    assert f" worker(s) at {address}" in said  # the cluster it ran on
    assert f"(log: {log})" in said and "1 skipped because they need them" in said
    assert "SamplingError" in log.read_text()  # the worker's traceback went into the log
    assert len(attempts(log)) == 1  # an exception is not retried (only a lost worker is)
    assert not (out / "logs" / "generated__b.log").exists()


def cli_args(root: Path, out: Path) -> list[str]:
    args = ["reproduce", str(MICRO), "--root", str(root), "--seeds", "1", "--threads", "1"]
    args += [f"--override={o}" for o in SMALL_RECIPE] + [f"--gan-override={o}" for o in SMALL_GAN]
    return [*args, "--out", str(out)]


def errors(output: str) -> list[str]:
    assert "Traceback" not in output
    return [x for x in output.splitlines() if x.startswith("error:")]


def test_without_the_extra_dask_names_the_install_command(tmp_path, root, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    args = [*cli_args(root, tmp_path / "t"), "--executor", "dask", "--address", "tcp://x:1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1
    assert errors(res.output) == [
        "error: --executor dask needs Dask distributed: pip install genreid[cluster]"
    ]


def test_a_wrong_address_fails_fast_in_one_line(tmp_path, root):
    pytest.importorskip("distributed")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    start = time.monotonic()
    res = CliRunner().invoke(app, [*cli_args(root, tmp_path / "t"), "--executor", "dask",
                                   "--address", address])  # fmt: skip
    assert time.monotonic() - start < 25  # Dask's own connect timeout alone is 30 s
    assert res.exit_code == 1
    (line,) = errors(res.output)
    assert line.startswith(f"error: --address {address}: found no Dask scheduler (")
    assert "`dask scheduler`" in line and "`dask worker ADDRESS --nthreads 1`" in line
    with pytest.raises(ConfigError, match="expected tcp://HOST:PORT .unknown address scheme"):
        connect("htp://127.0.0.1:8786")  # refused before a client starts


def test_executor_options_are_checked_before_anything_runs(tmp_path, root):
    for extra, expected in [
        (["--executor", "dask"], "--executor dask needs --address"),
        (["--address", "tcp://127.0.0.1:1"], "--address goes only with --executor dask"),
        (["--executor", "slurm"], "--executor: expected one of local, dask, got 'slurm'"),
    ]:
        res = CliRunner().invoke(app, [*cli_args(root, tmp_path / "t"), *extra])
        assert res.exit_code == 1 and expected in errors(res.output)[0], res.output
    assert not (tmp_path / "t").exists()


def test_workers_with_several_threads_are_refused():
    class Client:  # what check_workers reads of a client
        def nthreads(self) -> dict[str, int]:
            return {"tcp://10.0.0.1:1": 1, "tcp://10.0.0.2:1": 4}

    with pytest.raises(ConfigError, match="worker tcp://10.0.0.2:1 runs 4 threads.*--nthreads 1"):
        check_workers(Client(), "tcp://10.0.0.9:8786")
    Client.nthreads = lambda self: {"tcp://10.0.0.1:1": 1}  # one thread each: accepted
    check_workers(Client(), "tcp://10.0.0.9:8786")


def test_relative_paths_are_refused_before_jobs_go_to_a_cluster(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "x.pt").write_bytes(b"")
    ok = Job("runs/a", "train", str(tmp_path / "a"), {"config": "train/tiny",
             "overrides": ["data.dataset=market1501", f"data.root={tmp_path}"]})  # fmt: skip
    check_shared_paths({ok.id: ok}, tmp_path / "logs")
    cases = [
        (Job("runs/a", "train", "a", {"config": "train/tiny", "overrides": []}), "a is"),
        (Job("e", "eval", str(tmp_path), {"root": "data", "folder": "eval"}), "data is"),
        (Job("runs/a", "train", str(tmp_path), {"overrides": ["model.pretrained=w/x.pt"]}),
         "w/x.pt is"),
    ]  # fmt: skip
    for job, bad in cases:
        with pytest.raises(ConfigError, match=f"--executor dask: {bad} a relative path"):
            check_shared_paths({job.id: job}, tmp_path / "logs")
    with pytest.raises(ConfigError, match="logs is a relative path"):
        check_shared_paths({ok.id: ok}, Path("logs"))


def test_a_job_without_threads_leaves_its_workers_threads(tmp_path, monkeypatch):
    """A job handed no thread count (none given: ``threads`` None) runs with the worker's own
    torch threads, as the local executor runs it with this process's; one given sets them."""
    from genreid.engine.reproduce import runner

    monkeypatch.setattr(runner, "execute", lambda job, log: True)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    torch.set_num_threads(3)  # the one_thread fixture sets 1 back
    job = Job("a", "sample", str(tmp_path / "a"), {})
    log = tmp_path / "a.log"
    assert runner._run_job(job, str(log), None) is True
    assert torch.get_num_threads() == 3 and os.environ["OMP_NUM_THREADS"] == "3"
    runner._run_job(job, str(log), 2)
    assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
    assert [x.rsplit(", ", 1)[1] for x in log.read_text().splitlines()] == [
        "3 torch thread(s)", "2 torch thread(s)"
    ]  # fmt: skip


def test_a_lost_scheduler_names_the_error_it_ended_with(monkeypatch):
    """The one-line SchedulerLostError ends with the first line of what was raised when the
    client stopped running (the cause of the loss, not Dask's traceback)."""
    from genreid.core import cluster

    class Client:  # what dask_executor uses of a client
        status = "running"
        closed: list[str] = []

        def nthreads(self) -> dict[str, int]:
            return {"tcp://10.0.0.1:1": 1}

        def get_executor(self, **kwargs: Any) -> Any:
            return None

        def close(self, timeout: float | None = None) -> None:
            self.closed.append(self.status)

    client = Client()
    monkeypatch.setattr(cluster, "connect", lambda address: client)
    with pytest.raises(SchedulerLostError) as lost, cluster.dask_executor("tcp://10.0.0.9:8786"):
        client.status = "closed"
        raise OSError("Timed out trying to connect to tcp://10.0.0.9:8786\nafter 5 s")
    line = str(lost.value)
    assert line.startswith("lost the Dask scheduler at tcp://10.0.0.9:8786 while jobs ran")
    assert line.endswith(" (OSError: Timed out trying to connect to tcp://10.0.0.9:8786)")
    assert "\n" not in line and lost.value.__cause__ is None and client.closed == ["closed"]
    lost_at = cluster.dask_executor("tcp://10.0.0.9:8786")
    with pytest.raises(SchedulerLostError, match=r"nthreads 1` \(CancelledError\)$"), lost_at:
        raise CancelledError
    client.status = "running"  # a job's own error, the scheduler still there: as it was
    still_there = cluster.dask_executor("tcp://10.0.0.9:8786")
    with pytest.raises(ValueError, match="a job's own"), still_there:
        raise ValueError("a job's own")


def _sample_slowly() -> None:
    """In a worker: a sample job marks its folder ``started``, waits ``params["wait"]``
    seconds, then writes an empty manifest (done)."""
    from genreid.engine.reproduce import runner

    def sample(job: Job) -> Path:
        out = Path(job.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "started").write_text(str(os.getpid()))
        time.sleep(job.params["wait"])
        return runner.write_manifest(out, [])

    runner._sample = sample


@pytest.mark.slow
def test_a_scheduler_lost_mid_table_is_one_line_and_keeps_finished_jobs(tmp_path):
    pytest.importorskip("distributed")
    (tmp_path / "cluster").mkdir()
    lone = Cluster(tmp_path / "cluster", workers=1)  # its own: this test kills its scheduler
    try:
        address = lone.ready()
        lone.client.run(_sample_slowly)
        out = tmp_path / "t"
        first = Job("generated/a", "sample", str(out / "generated/a"), {"wait": 0})
        second = Job("generated/b", "sample", str(out / "generated/b"), {"wait": 300},
                     deps=[first.id])  # fmt: skip
        killed: list[float] = []

        def kill_the_scheduler() -> None:
            deadline = time.monotonic() + START_TIMEOUT
            while not (Path(second.out) / "started").is_file() and time.monotonic() < deadline:
                time.sleep(0.05)
            killed.append(time.monotonic())
            lone.procs[0].kill()

        killer = threading.Thread(target=kill_the_scheduler, daemon=True)
        killer.start()
        console = quiet()
        with pytest.raises(SchedulerLostError) as lost:
            run_jobs({j.id: j for j in (first, second)}, threads=1, logs=out / "logs",
                     console=console, executor="dask", address=address)  # fmt: skip
        assert killed and time.monotonic() - killed[0] < 30  # not Dask's long timeouts
        line = str(lost.value)
        assert isinstance(lost.value, GenreidError) and "\n" not in line  # `error: ...`
        assert line.startswith(f"lost the Dask scheduler at {address} while jobs ran")
        assert "finished jobs are kept, and running the same command again continues" in line
        assert "`dask scheduler`" in line and "`dask worker ADDRESS --nthreads 1`" in line
        assert lost.value.__cause__ is None and lost.value.__suppress_context__
        assert "done: generated/a" in console.file.getvalue()
        assert (Path(first.out) / MANIFEST).is_file()  # the finished job is kept
        assert not (Path(second.out) / MANIFEST).is_file()
    finally:
        for worker in lone.workers:
            worker.kill()  # its job sleeps on; nothing left to hand it back to
        lone.close()


def _pause_at_first_checkpoint(claim: str, seconds: float) -> None:
    """In a worker: the first training (on any worker) to put a checkpoint in place writes its
    pid into ``claim`` and waits there (to be killed); every other goes on."""
    from genreid.core import checkpoint

    real = checkpoint.__dict__.setdefault("_real_crash_point", checkpoint.crash_point)

    def point(name: str) -> None:
        if name == "checkpoint_renamed":
            mine = f"{claim}.{os.getpid()}"
            Path(mine).write_text(str(os.getpid()))
            try:
                os.link(mine, claim)  # atomic: exactly one worker wins
            except FileExistsError:
                pass
            else:
                time.sleep(seconds)
        real(name)

    checkpoint.crash_point = point


def _restore_checkpoints() -> None:
    from genreid.core import checkpoint

    checkpoint.crash_point = checkpoint.__dict__.pop("_real_crash_point", checkpoint.crash_point)


def test_an_evaluation_is_redone_on_dask_after_its_run_trains_further(cluster, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    """As with the local executors (test_reproduce_run): the evaluation of a run that trains
    further, done when the call started, runs again after it, on a worker; done jobs do not."""
    from genreid.engine.reproduce import runner
    from tests import toy_jobs

    address = cluster.ready()
    for kind, make in toy_jobs.TOY_KINDS.items():
        monkeypatch.setitem(runner.KINDS, kind, make)  # this process plans with them
    cluster.client.run(toy_jobs.install)  # the workers run them
    ran: list[str] = []
    try:
        jobs = toy_jobs.stale_plan(tmp_path / "t")
        n = run_jobs(jobs, logs=tmp_path / "logs", console=quiet(), executor="dask",
                     address=address, after_job=lambda job: ran.append(job.id))  # fmt: skip
    finally:
        cluster.client.run(toy_jobs.install, False)
    assert n == 2 and ran == ["grown", "grown/eval"]
    assert (tmp_path / "t/grown/eval.txt").read_text() == "2"
    assert attempts(tmp_path / "logs/grown__eval.log")[0] in cluster.pids
    assert not (tmp_path / "logs/kept__eval.log").exists()


def test_a_job_whose_worker_is_killed_is_resumed_on_another(cluster, local_table, root, tmp_path):
    """Runs last: it leaves the cluster with one worker."""
    address = cluster.ready()
    claim = tmp_path / "paused"
    cluster.client.run(_pause_at_first_checkpoint, str(claim), 180.0)
    killed: list[int] = []

    def kill_the_paused_worker() -> None:
        deadline = time.monotonic() + 180
        while not claim.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        if claim.is_file():
            killed.append(int(claim.read_text()))
            os.kill(killed[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_the_paused_worker, daemon=True)
    killer.start()
    out = tmp_path / "dask"
    try:
        dask_table(root, out, address)
    finally:
        killer.join(timeout=200)
        cluster.client.run(_restore_checkpoints)
    assert len(killed) == 1 and killed[0] in cluster.pids
    (victim,) = (p for p in cluster.workers if p.pid == killed[0])
    assert victim.wait(timeout=30) == -signal.SIGKILL
    tries = {log: attempts(log) for log in (out / "logs").glob("*.log")}
    retried = {log: pids for log, pids in tries.items() if len(pids) > 1}
    assert len(retried) == 1  # the paused job, and only it, ran twice
    ((log, pids),) = retried.items()
    assert pids[0] == killed[0] and pids[1] in cluster.pids - {killed[0]}
    run = out / log.stem.replace("__", "/")
    resumed = json.loads((run / "env.json").read_text())["resumed"]
    assert len(resumed) == 1  # the second attempt went on from the first one's checkpoint
    assert fingerprint(out) == fingerprint(local_table)
