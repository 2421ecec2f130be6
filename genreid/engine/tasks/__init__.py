"""Training tasks by name (the ``task`` key of a config): each plugs into the one loop."""

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
    },
)


def task_name(path: str | Path, overrides: list[str] | None = None) -> str:
    """The ``task`` of a config file (``reid`` when it names none)."""
    name = str(read_config_dict(path, overrides).get("task", "reid"))
    try:
        return TASKS.key(name)
    except RegistryError as exc:
        raise ConfigError(f"task: {exc} (in {path})") from None


def load_task_config(path: str | Path, overrides: list[str] | None = None) -> tuple[Any, Any]:
    """(task class, its typed and checked config) of a config file plus overrides."""
    task = TASKS.get(task_name(path, overrides))
    return task, load_config(task.config_class, path, overrides)
