"""Stages: the step each job of a plan runs (``engine/reproduce/runner.py`` makes one of every
job, for ``genreid reproduce``, ``slsr``, ``quickstart`` and ``pretrain`` alike), and what the
pipelines share. A stage whose output already exists is skipped, and one that was interrupted
is resumed by its own run (training runs resume from their checkpoints), so running a pipeline
again continues it and loses nothing already computed."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from genreid.core.config import (
    load_config,
    migrate_overrides,
    read_config_dict,
    save_config,
    to_dict,
)
from genreid.core.errors import ConfigError, RegistryError, RunFolderError
from genreid.core.files import write_json_atomic
from genreid.core.runs import read_results, versions
from genreid.data.datasets import load_dataset
from genreid.engine.loop import config_differences
from genreid.engine.tasks import TASKS
from genreid.eval.ranking.extract import load_trained_model, reid_features, save_dataset_features
from genreid.eval.ranking.report import run_evaluation


@dataclass
class Stage:
    """One step: ``run()`` produces its output, ``done()`` says whether it exists already."""

    name: str
    run: Callable[[], Any]
    done: Callable[[], bool] = lambda: False
    title: str = ""


def record_pipeline(
    cfg: Any, out: Path, may_change: tuple[str, ...], what: str, env: dict[str, Any] | None = None
) -> None:
    """OUT/config.yaml and env.json of a pipeline. A folder that holds a pipeline of another
    config is refused: only the keys in ``may_change`` (ones that add runs, or run them
    faster) may differ, so running again continues the same pipeline."""
    saved = out / "config.yaml"
    check_pipeline(cfg, out, may_change, what)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, saved)
    record = {"stage": cfg.task, **(env or {}), "versions": versions(), "command": sys.argv}
    write_json_atomic(record, out / "env.json")


def check_pipeline(cfg: Any, out: Path, may_change: tuple[str, ...], what: str) -> bool:
    """Whether OUT holds a pipeline already; refuses one of another config (only the keys in
    ``may_change`` may differ)."""
    saved = out / "config.yaml"
    if not saved.is_file():
        return False
    old = to_dict(load_config(type(cfg), saved))
    differ = config_differences(old, to_dict(cfg), may_change)
    if differ:
        raise RunFolderError(
            f"{out} holds {what} with a different {', '.join(differ)} (see its "
            f"config.yaml); pass another --out, or the same config (only "
            f"{', '.join(may_change)} may change: they add runs or run them faster)"
        )
    return True


def override_list_v2(
    data: dict[str, Any], key: str, task: str | None, config: str | None = None
) -> dict[str, Any]:
    """Config version 1 -> 2 of a pipeline's override list ``key`` for runs of ``task`` (None:
    ``config``'s): each item in the current layout (``train.lr=X`` -> ``optim.gen.lr=X``,
    ``optim.dis.lr=X``; :func:`migrate_overrides`), so that a folder started with version 1
    continues. With ``config``, the one config those runs start from, a plugin's option goes
    where its plugin (``model.arch``) puts it, or is dropped where it has none (version 1
    ignored it); without, into the options of the plugin that has it."""
    items = data.get(key)
    if not isinstance(items, list):
        return data  # not a list: the pipeline's config says so when read
    cls, within = None, None
    with contextlib.suppress(ConfigError, RegistryError):  # a config that does not read: its
        name = task or str(read_config_dict(config).get("task", "reid"))  # error comes later
        cls = TASKS.get(name).config_class
        within = None if config is None else read_config_dict(config, cls=cls)
    if cls is None:
        return data
    return {**data, key: migrate_overrides(cls, [str(i) for i in items], within)}


def run_stages(stages: Iterable[Stage], console: Console | None = None) -> dict[str, Any]:
    """Run every stage that is not done, in order (the runner runs a job's stage this way);
    returns name -> what its run returned (None for a skipped stage)."""
    console = console or Console(stderr=True)
    out: dict[str, Any] = {}
    for stage in stages:
        if stage.done():
            console.print(f"[dim]done already: {stage.title or stage.name}[/dim]")
            out[stage.name] = None
            continue
        console.rule(f"[bold]{stage.title or stage.name}")
        out[stage.name] = stage.run()
    return out


def run_finished(run: str | Path, epochs: int | None = None) -> bool:
    """A training run that completed (``results.json`` says done; with ``epochs``, that many).
    Runs of genreid 0.1.0 wrote no status: one with all its epochs counts as done."""
    res = read_results(run) or {}
    if not res or res.get("status", "done") != "done":
        return False
    return epochs is None or res.get("epochs_completed", epochs) == epochs


def newer_than(path: str | Path, *inputs: str | Path) -> bool:
    """``path`` exists and was written after every existing ``inputs`` (an evaluation after
    its checkpoint, say)."""
    p = Path(path)
    if not p.is_file():
        return False
    t = p.stat().st_mtime_ns
    return all(Path(i).stat().st_mtime_ns <= t for i in inputs if Path(i).exists())


def read_json(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def eval_stage(
    run: Path,
    dataset: str,
    root: str | Path,
    options: dict[str, Any] | None = None,
    title: str = "",
    folder: str = "eval",
    overrides: Sequence[str] = (),
    **evaluation: Any,
) -> Stage:
    """Query/gallery features of a trained run and ``run_evaluation`` into RUN/``folder``
    (the model rebuilt with ``overrides``, e.g. ``model.feature=prim``: another test feature of
    the same run, in its own folder with its own features file); done when the folder's
    results.json is newer than the run's checkpoint (and, when re-ranking is asked for, holds
    re-ranked results: an evaluation without them is redone)."""
    out = run / folder
    saved_features = run / "features.npz" if folder == "eval" else out / "features.npz"

    def evaluate() -> dict[str, Any]:
        model, data, ev, device = load_trained_model(run, overrides=overrides)
        ds = load_dataset(dataset, root, **(options or {}))
        qf = reid_features(model, ds.query, data.size, ev.batch_size, ev.flip, device)
        gf = reid_features(model, ds.gallery, data.size, ev.batch_size, ev.flip, device)
        saved_features.parent.mkdir(parents=True, exist_ok=True)
        features = save_dataset_features(saved_features, ds, qf, gf)
        results = run_evaluation(features, out, **evaluation)
        for name, r in results["results"].items():
            Console().print(
                f"{run.name}/{folder} ({name}): rank-1 {100 * r['rank1']:.1f}%, "
                f"mAP {100 * r['mAP']:.1f}%",
                markup=False, highlight=False,
            )  # fmt: skip
        return results

    def done() -> bool:
        saved = out / "results.json"
        if not newer_than(saved, run / "checkpoints/last.pt"):
            return False
        return not evaluation.get("rerank") or "rerank" in read_json(saved).get("results", {})

    return Stage(f"{run.name}/{folder}", evaluate, done, title or f"evaluate {run.name}")
