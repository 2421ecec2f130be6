"""``genreid pretrain``: a backbone (or a GAN) trained on many synthetic pedestrians, no
download needed.

Stages (each skipped when done, resumed when cut short): render the synthetic set (or reuse a
complete render at ``root``), train the re-ID ``recipe`` on **every** identity of it (training,
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from genreid.core.checkpoint import load_checkpoint, module_state
from genreid.core.config import load_config, to_dict
from genreid.core.errors import ConfigError
from genreid.core.runs import RunDir, read_results, versions
from genreid.data.synthetic.plan import check_arguments
from genreid.data.synthetic.spec import SyntheticSpec, holds_render, render_arguments
from genreid.engine.stages import (
    Stage,
    newer_than,
    read_json,
    record_pipeline,
    run_finished,
    run_stages,
    train_stage,
)
from genreid.engine.tasks import TASKS, task_name
from genreid.engine.tasks.gan import GanConfig, train_gan
from genreid.models.gan import build_gan
from genreid.models.gan.pretrained import save_gan_file
from genreid.models.loading import load_run_model
from genreid.models.pretrained import save_backbone, sidecar_path

MAY_CHANGE = ("threads",)  # a pretraining folder continues only the same pretraining


@dataclass
class PretrainConfig:
    """The ``genreid pretrain`` pipeline (``task: pretrain``)."""

    task: str = "pretrain"
    seed: int = 0  # the training seed (the set has its own: synthetic.seed)
    synthetic: SyntheticSpec = field(default_factory=lambda: SyntheticSpec(ids=1200))
    root: str = ""  # a complete render of `synthetic` to reuse; empty: render into OUT/synthetic
    recipe: str = "train/tiny"  # the re-ID config that trains the backbone
    recipe_overrides: list[str] = field(default_factory=list)
    threads: int | None = None

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


def training_overrides(cfg: PretrainConfig, root: Path) -> list[str]:
    """The recipe's keys for pretraining: every identity trains, nothing is evaluated."""
    return [
        "data.dataset=market1501", f"data.root={root}", "data.train_splits=all",
        f"data.height={cfg.synthetic.size[0]}", f"data.width={cfg.synthetic.size[1]}",
        "labels.strategy=baseline", "model.pretrained=null", f"seed={cfg.seed}",
        "train.eval_every=0", *cfg.recipe_overrides,
    ]  # fmt: skip


def gan_overrides(cfg: PretrainConfig, root: Path) -> list[str]:
    """The GAN recipe's keys for pretraining on the synthetic set's training images."""
    return [
        "data.dataset=market1501", f"data.root={root}", f"data.height={cfg.synthetic.size[0]}",
        f"data.width={cfg.synthetic.size[1]}", "model.pretrained=null", f"seed={cfg.seed}",
        *cfg.recipe_overrides,
    ]  # fmt: skip


def made_by(cfg: PretrainConfig, root: Path, training: dict[str, Any]) -> dict[str, Any]:
    """What a weights file's sidecar records of how it was made."""
    return {
        "made_by": "genreid pretrain",
        "command": " ".join(["genreid", *sys.argv[1:]]) if sys.argv else "",
        "config": to_dict(cfg),
        "synthetic": render_arguments(root),
        "training": training,
        "versions": versions(),
    }


def export_generator(cfg: PretrainConfig, out: Path, root: Path) -> dict[str, Any]:
    """OUT/generator.pt (G and D of the finished GAN run) and its sidecar. With
    ``train.ema`` the file's G is the EMA generator: the one that samples and was measured."""
    run = out / "train"
    gcfg = load_config(GanConfig, run / "config.yaml")
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt", map_location="cpu")
    G, D = build_gan(gcfg.model, gcfg.data.size)
    sampler = "G_ema" if "G_ema" in ckpt.get("modules", {}) else "G"
    G.load_state_dict(module_state(ckpt, sampler))  # the generator its measures scored
    D.load_state_dict(module_state(ckpt, "D"))
    results = read_results(run) or {}
    training = {k: results.get(k) for k in ("train_images", "iteration", "train_seconds")}
    training["G"] = "EMA of G's weights" if sampler == "G_ema" else "G as trained"
    record = {**made_by(cfg, root, training), "generated": results.get("generated")}
    return save_gan_file(G, D, gcfg.model, gcfg.data.size, out / "generator.pt", record)


def last_epoch_loss(run: Path) -> float | None:
    """The training loss of a run's last finished epoch."""
    ends = [r for r in RunDir(run, is_main=False).read_metrics() if r.get("epoch_end")]
    return ends[-1].get("loss") if ends else None


def export_backbone(cfg: PretrainConfig, out: Path, root: Path) -> dict[str, Any]:
    """OUT/backbone.pt and its sidecar from the finished training run."""
    run = out / "train"
    model = load_run_model(run, device="cpu")
    results = read_results(run) or {}
    training = {
        "identities": results.get("num_classes"),
        "images": results.get("train_images"),
        "epochs": results.get("epochs_completed"),
        "seconds": results.get("train_seconds"),
        "final_loss": last_epoch_loss(run),
    }
    record = made_by(cfg, root, training)
    spec = model.spec
    return save_backbone(model.backbone, spec.backbone, spec.width, out / "backbone.pt", record)


def run_pretrain(
    cfg: PretrainConfig, out: str | Path, console: Console | None = None
) -> dict[str, Any]:
    """Every stage into ``out``; returns the sidecar of ``out/backbone.pt`` (or, with a GAN
    recipe, of ``out/generator.pt``)."""
    console = console or Console(stderr=True)
    out = Path(out)
    root = pretrain_root(cfg, out)
    record_pipeline(cfg, out, MAY_CHANGE, "a pretraining run")
    s = cfg.synthetic
    checkpoint = out / "train/checkpoints/last.pt"
    render = Stage(
        "synthetic",
        lambda: s.render(root),
        lambda: holds_render(root, s),
        f"render {s.ids} synthetic identities ({s.cams} cameras)",
    )
    if TASKS.get(task_name(cfg.recipe)).pretrain_product == "generator":
        threads = [f"train.threads={cfg.threads}"] if cfg.threads else []
        gcfg = load_config(GanConfig, cfg.recipe, [*gan_overrides(cfg, root), *threads])
        target, export, what = out / "generator.pt", export_generator, "generator"
        train = Stage(
            "train",
            lambda: train_gan(gcfg, out / "train", resume="auto"),
            lambda: run_finished(out / "train"),
            f"train a GAN on the training images of {s.ids} synthetic identities",
        )
    else:
        target, export, what = out / "backbone.pt", export_backbone, "backbone"
        train = train_stage(
            out / "train", cfg.recipe, training_overrides(cfg, root),
            f"train on all {s.ids} synthetic identities", cfg.threads,
        )  # fmt: skip
    stages = [
        render,
        train,
        Stage(
            what,
            lambda: export(cfg, out, root),
            lambda: newer_than(sidecar_path(target), checkpoint) and target.is_file(),
            f"write the {what} weights",
        ),
    ]
    run_stages(stages, console)
    return read_json(sidecar_path(target))


class PretrainPipeline:
    """The ``pretrain`` pipeline as a registry entry (``task: pretrain`` in a config)."""

    name = "pretrain"
    config_class = PretrainConfig
    run = staticmethod(run_pretrain)
