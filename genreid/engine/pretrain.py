"""``genreid pretrain``: a backbone (or a GAN) trained on many synthetic pedestrians, no
download needed.

A plan of jobs on the reproduce runner (each skipped when done, resumed when cut short; with
``executor: dask`` on a Dask cluster's workers): render the synthetic set (or reuse a complete
render at ``root``), train the re-ID ``recipe`` on **every** identity of it (training,
query and gallery splits alike: nothing is held out, the set exists to teach features), and
write ``backbone.pt``, a backbone-only weights file, with ``backbone.json`` beside it (the
config, the synthetic set's arguments, the command and the file's sha256). ``model.pretrained
=RUN/backbone.pt`` then initialises any model with that backbone; genreid ships the tiny one
(``model.pretrained: synthetic``). A GAN ``recipe`` (``gan/dcgan_tiny``) trains on the set's
training images instead and writes ``generator.pt`` (G and D, ``genreid-gan``), which a GAN's
``model.pretrained`` takes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console

from genreid.core.config import CONFIG_VERSION, to_dict
from genreid.core.errors import ConfigError
from genreid.data.synthetic.plan import check_arguments
from genreid.data.synthetic.spec import SyntheticSpec, holds_render, render_arguments
from genreid.engine.pretrain_export import weights_file
from genreid.engine.reproduce.plan import Job
from genreid.engine.reproduce.runner import check_executor, check_jobs, run_jobs
from genreid.engine.runspec import Change, DataSource, RunSpec, parse_changes
from genreid.engine.stages import override_list_v2, read_json, record_pipeline
from genreid.engine.tasks import TASKS, task_name
from genreid.models.pretrained import sidecar_path

# a pretraining folder continues only the same pretraining (these change only where and how
# fast it runs)
MAY_CHANGE = ("threads", "executor", "address")


def migrate_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Config version 1 -> 2: ``recipe_overrides`` in the recipe's current layout."""
    return override_list_v2(data, "recipe_overrides", None, str(data.get("recipe", "train/tiny")))


@dataclass
class PretrainConfig:
    """The ``genreid pretrain`` pipeline (``task: pretrain``)."""

    task: str = "pretrain"
    version: int = CONFIG_VERSION  # the key layout of recipe_overrides (older: migrated)
    seed: int = 0  # the training seed (the set has its own: synthetic.seed)
    synthetic: SyntheticSpec = field(default_factory=lambda: SyntheticSpec(ids=1200))
    root: str = ""  # a complete render of `synthetic` to reuse; empty: render into OUT/synthetic
    recipe: str = "train/tiny"  # the re-ID config that trains the backbone
    recipe_overrides: list[str] = field(default_factory=list)
    threads: int | None = None
    # local (this process) or dask: the jobs on the workers of the Dask scheduler at
    # `address` (tcp://HOST:PORT; docs/REPRODUCE.md, a shared file system)
    executor: str = "local"
    address: str = ""

    migrations: ClassVar[dict[int, Callable[[dict], dict]]] = {2: migrate_v2}

    def check(self) -> None:
        if self.task != "pretrain":
            raise ConfigError(f"task: expected 'pretrain', got {self.task!r}")
        try:
            check_arguments(self.synthetic.ids, self.synthetic.cams, self.synthetic.seed,
                            tuple(self.synthetic.size))  # fmt: skip
            self.synthetic.style.check()
            if not 2 <= self.synthetic.images_per_id <= 200:
                raise ValueError(
                    f"images_per_id: expected 2 to 200 images per identity, got "
                    f"{self.synthetic.images_per_id}"
                )
        except ValueError as exc:
            raise ConfigError(f"synthetic: {exc}") from None
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads: expected 1 or more (or null), got {self.threads}")
        check_executor(self.executor, self.address, "executor", "address")


def pretrain_root(cfg: PretrainConfig, out: Path) -> Path:
    """Where the synthetic set lies: ``root`` (which must hold it) or OUT/synthetic."""
    if not cfg.root:
        return out / "synthetic"
    root = Path(cfg.root).expanduser()
    if not holds_render(root, cfg.synthetic):
        s = cfg.synthetic
        found = render_arguments(root)
        raise ConfigError(
            f"root: {root} does not hold a complete synthetic render of ids={s.ids} cams="
            f"{s.cams} seed={s.seed} size={s.size} (it holds {found or 'none'}); leave root "
            f"empty to render into the run folder, or render it: `genreid data synth --out "
            f"{root} --ids {s.ids} --cams {s.cams} --seed {s.seed}`"
        )
    return root


def pretrain_run(cfg: PretrainConfig, root: Path, product: str) -> RunSpec:
    """The recipe's run on the synthetic set, from random weights: a backbone's on every
    identity with nothing evaluated, a GAN's (``generator``) on the training images; then
    ``recipe_overrides``."""
    height, width = cfg.synthetic.size
    size = [Change("data.height", height), Change("data.width", width)]
    if product == "generator":
        keys = [*size, Change("model.pretrained", None)]
    else:
        keys = [Change("data.train_splits", "all"), *size, Change("labels.strategy", "baseline"),
                Change("model.pretrained", None), Change("train.eval_every", 0)]  # fmt: skip
    keys += parse_changes(cfg.recipe_overrides)
    return RunSpec(cfg.recipe, DataSource("market1501", str(root)), tuple(keys), cfg.seed,
                   cfg.threads)  # fmt: skip


def product_of(cfg: PretrainConfig) -> str:
    """What the pretraining writes: ``generator`` (a GAN recipe's G and D) or ``backbone``."""
    return TASKS.get(task_name(cfg.recipe)).pretrain_product


def pretrain_jobs(cfg: PretrainConfig, out: Path, root: Path) -> dict[str, Job]:
    """The plan: render the set (done at once when ``root`` holds it), train the recipe on
    it, write the weights file (its sidecar records this process's command and ``cfg``)."""
    s, product = cfg.synthetic, product_of(cfg)
    if product == "generator":
        what = f"train a GAN on the training images of {s.ids} synthetic identities"
    else:
        what = f"train on all {s.ids} synthetic identities"
    command = " ".join(["genreid", *sys.argv[1:]]) if sys.argv else ""
    export = {"product": product, "run": str(out / "train"), "root": str(root),
              "origin": {"command": command, "config": to_dict(cfg)}}  # fmt: skip
    title = f"render {s.ids} synthetic identities ({s.cams} cameras)"
    jobs = [
        Job("synthetic", "render", str(root), {"spec": to_dict(s)}, [], title),
        Job("train", "train", str(out / "train"), pretrain_run(cfg, root, product).params(),
            ["synthetic"], what),
        Job(product, "export", str(out), export, ["train"], f"write the {product} weights"),
    ]  # fmt: skip
    return {job.id: job for job in jobs}


def run_pretrain(
    cfg: PretrainConfig, out: str | Path, console: Console | None = None
) -> dict[str, Any]:
    """Every job of the plan into ``out`` (on the reproduce runner: done ones skipped, an
    interrupted one resumed); returns the sidecar of ``out/backbone.pt`` (or, with a GAN
    recipe, of ``out/generator.pt``)."""
    console = console or Console(stderr=True)
    out = Path(out)
    if cfg.executor == "dask":  # the workers see the same files, not this working folder
        out = out.resolve()
    root = pretrain_root(cfg, out)
    if cfg.executor == "dask":
        root = root.resolve()
    record_pipeline(cfg, out, MAY_CHANGE, "a pretraining run")
    jobs = pretrain_jobs(cfg, out, root)
    check_jobs(jobs)  # a bad recipe override fails before the render
    run_jobs(jobs, 1, cfg.threads, out / "logs", console,
             executor=cfg.executor, address=cfg.address)  # fmt: skip
    return read_json(sidecar_path(weights_file(out, product_of(cfg))))


class PretrainPipeline:
    """The ``pretrain`` pipeline as a registry entry (``task: pretrain`` in a config)."""

    name = "pretrain"
    config_class = PretrainConfig
    run = staticmethod(run_pretrain)
