"""Training tasks by name (the ``task`` key of a config): each plugs into the one loop.

A config's ``task`` may also name a pipeline (``slsr``, ``pretrain``): stages or a plan of
jobs that trains one or more runs, run by its own command (``genreid slsr``, ``genreid pretrain``),
not by ``genreid train``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genreid.core.config import load_config, read_config_dict
from genreid.core.errors import ConfigError, RegistryError
from genreid.core.registry import Registry

TASKS: Registry[Any] = Registry(
    "task",
    {
        "reid": "genreid.engine.tasks.reid:ReIDTask",
        "gan": "genreid.engine.tasks.gan:GanTask",
        "dgnet": "genreid.engine.tasks.dgnet:DGNetTask",
    },
)

PIPELINES: Registry[Any] = Registry(
    "pipeline",
    {
        "slsr": "genreid.engine.slsr:SlsrPipeline",
        "pretrain": "genreid.engine.pretrain:PretrainPipeline",
        "reproduce": "genreid.engine.reproduce.pipeline:ReproducePipeline",
    },
)


def task_name(path: str | Path, overrides: list[str] | None = None) -> str:
    """The ``task`` of a config file (``reid`` when it names none)."""
    name = str(read_config_dict(path, overrides).get("task", "reid"))
    if name in PIPELINES:
        raise ConfigError(
            f"{path} is a {name!r} pipeline config, not one training run; run it with "
            f"`genreid {name} --config {path} --out DIR`"
        )
    try:
        return TASKS.key(name)
    except RegistryError as exc:
        raise ConfigError(f"task: {exc} (in {path})") from None


def load_task_config(path: str | Path, overrides: list[str] | None = None) -> tuple[Any, Any]:
    """(task class, its typed and checked config) of a config file plus overrides."""
    task = TASKS.get(task_name(path, overrides))
    return task, load_config(task.config_class, path, overrides)


def load_any_config(path: str | Path, overrides: list[str] | None = None) -> tuple[Any, Any]:
    """Like :func:`load_task_config`, for pipeline configs as well (``genreid config``)."""
    name = str(read_config_dict(path, overrides).get("task", "reid"))
    if name in PIPELINES:
        pipeline = PIPELINES.get(name)
        return pipeline, load_config(pipeline.config_class, path, overrides)
    return load_task_config(path, overrides)
