"""Toy job kinds for the reproduce runner's tests (plain functions, no pytest): a "training"
and its "evaluation" that only write small files, so what the runner decides to run shows in
seconds, in this process or on a Dask worker (``install`` puts them into a worker's runner).

``toy_train`` is done when OUT/trained holds its ``epochs`` and rewrites OUT/checkpoint when
it runs (as a resumed run rewrites last.pt); ``toy_eval`` copies that checkpoint into
OUT/eval.txt and is done when eval.txt is newer than the checkpoint (as ``eval_stage``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from genreid.engine.reproduce.plan import Job
from genreid.engine.stages import Stage, newer_than


def _toy_train(job: Job) -> Stage:
    out, epochs = Path(job.out), str(job.params["epochs"])

    def run() -> None:
        (out / "checkpoint").write_text(epochs)
        (out / "trained").write_text(epochs)

    def done() -> bool:
        return (out / "trained").is_file() and (out / "trained").read_text() == epochs

    return Stage(job.id, run, done, job.title)


def _toy_eval(job: Job) -> Stage:
    out = Path(job.out)

    def run() -> None:
        (out / "eval.txt").write_text((out / "checkpoint").read_text())

    return Stage(job.id, run, lambda: newer_than(out / "eval.txt", out / "checkpoint"), job.title)


TOY_KINDS: dict[str, Callable[[Job], Stage]] = {"toy_train": _toy_train, "toy_eval": _toy_eval}


def install(on: bool = True) -> None:
    """Add the toy kinds to this process's runner (``on=False``: take them out again)."""
    from genreid.engine.reproduce import runner  # lazy: run on a Dask worker by the tests

    for kind, make in TOY_KINDS.items():
        if on:
            runner.KINDS[kind] = make
        else:
            runner.KINDS.pop(kind, None)


def _write(path: Path, text: str, age: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    t = time.time() - age
    os.utime(path, (t, t))


def stale_plan(folder: Path) -> dict[str, Job]:
    """Two toy runs with their evaluations. ``grown``: trained 1 epoch and evaluated since,
    planned now for 2 (its training is not done; its evaluation, of the old checkpoint, is).
    ``kept``: trained its 2 epochs and evaluated since (both really done)."""
    for name, epochs in (("grown", "1"), ("kept", "2")):
        _write(folder / name / "checkpoint", epochs, 20)
        _write(folder / name / "trained", epochs, 20)
        _write(folder / name / "eval.txt", epochs, 10)
    jobs = []
    for name in ("grown", "kept"):
        out = str(folder / name)
        jobs += [Job(name, "toy_train", out, {"epochs": 2}, [], f"train {name}"),
                 Job(f"{name}/eval", "toy_eval", out, {}, [name], f"evaluate {name}")]  # fmt: skip
    return {job.id: job for job in jobs}
