"""Run specs: one training job of a plan as typed values, not ``key=value`` strings.

A :class:`RunSpec` is a config (a name or file, or a loaded config object) and what a plan
changes in it: the :class:`DataSource`, typed changes, the seed and the threads. Every
pipeline (``reproduce``, ``slsr``, ``quickstart``, ``pretrain``) builds its training jobs
from one, and the runner loads the config back from the job's params (:meth:`RunSpec.params`:
the config and the changes as ``key=value`` texts; a table's word for word as before, every
pipeline's loading the same config, so a run folder of an older plan is the same job now).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from genreid.core.changes import Change, parse_changes
from genreid.core.config import load_config, read_config_dict, replace_config
from genreid.core.errors import ConfigError
from genreid.data.datasets import load_dataset
from genreid.engine.tasks import TASKS

__all__ = ["Change", "DataSource", "RunSpec", "parse_changes", "task_of"]


def task_of(config: str | Path) -> str:
    """The task a config trains (``reid``, ``gan``, ``dgnet``)."""
    return str(read_config_dict(config).get("task", "reid"))


@dataclass(frozen=True)
class DataSource:
    """A dataset on disk: its parser, its folder and the parser's options (a split, a
    validation share)."""

    dataset: str
    root: str
    options: dict[str, Any] = field(default_factory=dict)

    def changes(self) -> list[Change]:
        """The ``data`` keys that select it in a run's config, each option its own key
        (``data.options.split``) over the recipe's options."""
        keys = [Change("data.dataset", self.dataset), Change("data.root", self.root)]
        return keys + [Change(f"data.options.{k}", v) for k, v in self.options.items()]

    def params(self) -> dict[str, Any]:
        """As a job's params (an evaluation's, k-means')."""
        return {"dataset": self.dataset, "root": self.root, "options": dict(self.options)}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DataSource:
        return cls(params["dataset"], str(params["root"]), dict(params.get("options") or {}))

    def load(self) -> Any:
        """The parsed dataset (a ``ReIDDataset``)."""
        return load_dataset(self.dataset, self.root, **self.options)


@dataclass(frozen=True)
class RunSpec:
    """A training run: ``config`` and its changes, made in this order: ``recipe``, ``data``,
    ``changes``, ``seed``, ``progress``, ``threads``, ``last`` (a later one wins)."""

    config: Any  # a config name or file, or a loaded config object
    data: DataSource | None = None
    changes: tuple[Change, ...] = ()  # the run's own keys (a cell's, a strategy's)
    seed: int | None = None
    threads: int | None = None  # train.threads (None or 0: the recipe's)
    progress: bool | None = None  # train.progress (False: jobs that write logs)
    recipe: tuple[Change, ...] = ()  # a recipe's own keys, before the data (a table's GAN)
    last: tuple[Change, ...] = ()  # the user's keys of every run: after all, so they win

    def all_changes(self) -> list[Change]:
        """Every change, in the order they are made."""
        data = self.data.changes() if self.data is not None else []
        own = [("seed", self.seed), ("train.progress", self.progress)]
        own += [("train.threads", self.threads or None)]
        runtime = [Change(k, v) for k, v in own if v is not None]
        return [*self.recipe, *data, *self.changes, *runtime, *self.last]

    def then(self, *changes: Change) -> RunSpec:
        """This run with ``changes`` made after all others."""
        return replace(self, last=(*self.last, *changes))

    def params(self) -> dict[str, Any]:
        """A training job's params: the config's name and the changes as ``key=value``."""
        if not isinstance(self.config, str | Path):
            raise ConfigError("a job's run spec names its config (a name or file), not an object")
        return {"config": str(self.config), "overrides": [str(c) for c in self.all_changes()]}

    @classmethod
    def from_params(cls, params: dict[str, Any], more: Iterable[str] = ()) -> RunSpec:
        """The run of a training job's params (``more``: ``key=value`` texts after them)."""
        return cls(params["config"], changes=parse_changes([*params["overrides"], *more]))

    def task(self) -> Any:
        """The task class that trains it (its config's ``task``)."""
        name = task_of(self.config) if isinstance(self.config, str | Path) else self.config.task
        return TASKS.get(name)

    def load(self) -> Any:
        """The typed, checked config: a named one loaded with the changes, a loaded one
        replaced (``replace_config``); a wrong key is the loader's did-you-mean error."""
        if isinstance(self.config, str | Path):
            return load_config(self.task().config_class, self.config, changes=self.all_changes())
        return replace_config(self.config, self.all_changes())
