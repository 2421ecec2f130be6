"""The re-ID task: a network trained on real and generated images with a label strategy.

One step is one mixed batch: forward (under autocast on CUDA), the strategy's targets and
weights, the soft cross-entropy (plus FAPL's center loss), backward, optimizer and per-step
lr schedule, then the strategy's update (FAPL centers). Each image's augmentation is seeded
from its own seed, so results do not depend on workers, ranks or interruptions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch.utils.data import DataLoader

from genreid.core.config import CONFIG_VERSION
from genreid.core.distributed import barrier
from genreid.core.errors import ConfigError
from genreid.data.config import DataConfig
from genreid.data.dataset import ImageDataset, cache_fits
from genreid.data.datasets import load_dataset
from genreid.data.generated import read_generated, sample_generated
from genreid.data.records import ImageRecord, ReIDDataset, reduce_labels
from genreid.data.samplers import MixedBatchSampler
from genreid.data.transforms import train_transform
from genreid.engine.fastpath import BF16_MIN_WIDTH, cpu_bf16_unsafe_width
from genreid.engine.loop import Loop, LoopConfig, StepInfo, Task, TrainingError
from genreid.engine.optim import LRSchedule, OptimConfig, build_optimizer
from genreid.eval.ranking.config import EvalConfig
from genreid.eval.ranking.extract import evaluate_model
from genreid.labels.base import (
    LabelBatch,
    LabelStrategy,
    TrainingSet,
    build_strategy,
    cross_entropy_per_image,
    resolve_gen_start,
    strategy_class,
    used_images,
    weighted_mean,
)
from genreid.labels.config import LabelsConfig, migrate_labels_v2
from genreid.labels.stats import TargetStats
from genreid.labels.triplet import batch_hard_triplet
from genreid.models.reid import ModelConfig, ReIDModel, build_model


@dataclass
class ReIDTrainSection(LoopConfig):
    """The ``train`` section of a re-ID run."""

    batch_size: int = 64  # per process
    max_iters: int | None = None  # cap iterations per epoch (benchmarks, smoke tests)

    def check(self) -> None:
        super().check()
        if self.batch_size < 1:
            raise ConfigError(f"train.batch_size: expected 1 or more, got {self.batch_size}")
        if self.max_iters is not None and self.max_iters < 1:
            raise ConfigError(
                f"train.max_iters: expected 1 or more (or null), got {self.max_iters}"
            )


def migrate_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Config version 1 -> 2 of a re-ID config: a strategy's flat ``labels.*`` keys move to
    ``labels.options`` (the optimiser's keys kept their names)."""
    labels = data.get("labels")
    return {**data, "labels": migrate_labels_v2(labels)} if isinstance(labels, dict) else data


@dataclass
class ReIDTrainConfig:
    """Everything one re-ID training run needs (``genreid train``)."""

    task: str = "reid"
    version: int = CONFIG_VERSION  # the key layout (older ones are migrated when read)
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: ReIDTrainSection = field(default_factory=ReIDTrainSection)
    eval: EvalConfig = field(default_factory=EvalConfig)

    migrations: ClassVar[dict[int, Callable[[dict], dict]]] = {2: migrate_v2}

    def check(self) -> None:
        if self.task != "reid":
            raise ConfigError(
                f"task: this is a re-ID training config, expected 'reid', got {self.task!r}"
            )
        if self.labels.triplet > 0 and self.data.sampler != "pk":
            raise ConfigError(
                f"labels.triplet={self.labels.triplet} needs identities with several images "
                "in each batch: set data.sampler=pk (and data.pk_instances), or labels.triplet=0"
            )
        if cpu_bf16_unsafe_width(self.train, self.data.width):
            raise ConfigError(
                f"train.precision=bf16 with data.width={self.data.width} on a CPU: the ResNet's "
                "last stage then makes feature maps one pixel wide, where torch's bf16 "
                "convolutions go NaN at random (stride 2, 3x3; engine/fastpath.py). "
                f"Use data.width={BF16_MIN_WIDTH} or more, or train.precision=fp32"
            )


def load_training_data(
    cfg: ReIDTrainConfig, uses_generated: bool
) -> tuple[ReIDDataset, list[ImageRecord], dict[int, int]]:
    """The dataset, the training records (real first, then generated) and the label map."""
    root = cfg.data.require_root()
    ds = load_dataset(cfg.data.dataset, root, **cfg.data.options)
    if cfg.data.train_splits == "all":
        ds = ds.all_for_training()
    label_map = ds.train_label_map()
    if not label_map:
        raise TrainingError(f"{cfg.data.dataset} at {root} has no training identities")
    real = [r for r in ds.train if not r.generated and r.pid in label_map]
    real = reduce_labels(real, cfg.data.label_fraction_value(), cfg.seed)
    gen: list[ImageRecord] = []
    if uses_generated:
        if not cfg.data.generated:
            raise ConfigError(
                f"labels.strategy={cfg.labels.strategy} trains with generated images; set "
                "data.generated to a folder with manifest.csv (or use strategy baseline)"
            )
        gen = read_generated(cfg.data.generated)
        if cfg.data.max_generated is not None:
            gen = sample_generated(gen, cfg.data.max_generated, cfg.seed)
    return ds, real + gen, label_map


def loss_parts(
    per_image: torch.Tensor, generated: torch.Tensor, weight: torch.Tensor
) -> dict[str, float]:
    """Mean cross-entropy of the real images and of the generated ones in use, apart."""
    real = ~generated.bool()
    gen = generated.bool() & (weight > 0)
    out = {"loss/real": float(per_image[real].mean())} if real.any() else {}
    if gen.any():
        out["loss/generated"] = float(per_image[gen].mean())
    return out


def center_parts(center: torch.Tensor, labeled: torch.Tensor, ce: torch.Tensor) -> dict[str, float]:
    """The center term λ·L_C (FAPL Eq. 13) and its ratio to the labeled images' share of the
    cross-entropy (what ``labels.center_lambda: auto`` matches) and to the whole L_S, logged
    per step; metrics.jsonl gets their means over the epoch's steps that had a center term
    (none before the first center exists): ``loss/center``, ``loss/center_ratio``,
    ``loss/center_ratio_all``."""
    c, r, s = float(center.detach()), float(labeled), float(ce.detach())
    if c == 0.0 or r <= 0.0:
        return {}
    return {"loss/center": c, "loss/center_ratio": c / r, "loss/center_ratio_all": c / s}


class ReIDTask(Task):
    """Re-ID training with a label strategy for generated images."""

    name = "reid"
    config_class = ReIDTrainConfig
    stage = "train"
    nan_advice = (
        "a lower optim.lr (e.g. half), train.precision=fp32, or check the generated images "
        "(`genreid data check`, or train without data.generated)."
    )

    def __init__(self, cfg: ReIDTrainConfig) -> None:
        super().__init__(cfg)
        self.cfg: ReIDTrainConfig = cfg

    @classmethod
    def finished_epochs(cls, cfg: ReIDTrainConfig) -> int | None:
        """All of ``train.epochs``: a finished run with fewer goes on."""
        return cfg.train.epochs

    @classmethod
    def trained_images(
        cls, cfg: ReIDTrainConfig, real_images: Callable[[dict[str, Any]], int]
    ) -> int:
        """Epochs x real images, plus the generated ones from the strategy's first epoch with
        them."""
        real, epochs = real_images(dict(cfg.data.options)), cfg.train.epochs
        generated = (cfg.data.max_generated or 0) if cfg.data.generated else 0
        strategy = strategy_class(cfg.labels.strategy)
        start = resolve_gen_start(cfg.labels.gen_start_epoch, strategy.delayed_by_default, epochs)
        with_generated = max(0, epochs - start) if strategy.uses_generated else 0
        return epochs * real + with_generated * generated

    # ------------------------------------------------------------------ set-up
    def setup(self, loop: Loop) -> None:
        cfg, d = self.cfg, self.cfg.data
        self.loop = loop
        cls = strategy_class(cfg.labels.strategy)
        self.ds, self.records, self.label_map = load_training_data(cfg, cls.uses_generated)
        K = len(self.label_map)
        self.model: ReIDModel = build_model(cfg.model, K + 1 if cls.extra_class else K)
        self.net = loop.module("model", self.model)
        strategy = build_strategy(
            cfg.labels, K, feat_dim=self.model.feat_dim, epochs=cfg.train.epochs
        )
        strategy.prepare(
            TrainingSet(self.records, self.label_map, self.ds.root, loop.out, loop.device)
        )
        self.strategy: LabelStrategy = loop.module("labels", strategy, ddp_wrap=False)
        self.target_stats = TargetStats(strategy.num_outputs, loop.device)
        pipeline = train_transform(d)
        cache = d.cache == "on" or (d.cache == "auto" and cache_fits(self.records, pipeline))
        self.train_set = ImageDataset(self.records, pipeline, self.label_map, cache=cache)
        self.sampler = MixedBatchSampler(
            self.train_set.labels,
            [r.generated for r in self.records],
            cfg.train.batch_size,
            seed=cfg.seed,
            mode=d.sampler,
            gen_share=d.gen_batch_share,
            num_instances=d.pk_instances,
            rank=loop.dist.rank,
            world_size=loop.dist.world_size,
        )
        self.loader = DataLoader(
            self.train_set.batched(),
            batch_sampler=self.sampler,
            collate_fn=self.train_set.collate,
            num_workers=d.workers,
            pin_memory=loop.device.type == "cuda",
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        self.optimizer = loop.optimizer("optimizer", build_optimizer(self.model, cfg.optim))
        self.schedule = loop.scheduler(
            "schedule", LRSchedule(self.optimizer, cfg.optim, cfg.train.epochs)
        )
        self.scaler = loop.scaler()

    def cpu_auto_bf16(self) -> bool:
        return self.cfg.data.width >= BF16_MIN_WIDTH

    # ------------------------------------------------------------------ data
    def epoch_length(self, epoch: int) -> int:
        self.sampler.set_epoch(epoch, self.strategy.generated_active(epoch))
        n = len(self.sampler)
        cap = self.cfg.train.max_iters
        return min(n, cap) if cap else n

    def batches(self, epoch: int, start: int) -> DataLoader:
        self.sampler.set_epoch(epoch, self.strategy.generated_active(epoch), start)
        if start == 0:
            # Before the loop existed, the DataLoader drew its worker base seed from the global
            # RNG at every epoch start; the loader now has its own generator (so a resumed
            # epoch draws nothing), and this one draw keeps every run's results unchanged.
            torch.empty((), dtype=torch.int64).random_()
        return self.loader

    # ------------------------------------------------------------------ training
    def step(self, batch: dict[str, Any], at: StepInfo) -> dict[str, float]:
        loop, dev = self.loop, self.loop.device
        x = loop.images(batch["image"])
        with loop.autocast():
            logits, feats = self.net(x)
        lb = LabelBatch(
            logits.float(),
            feats.float(),
            batch["label"].to(dev),
            batch["generated"].to(dev),
            batch["cluster"].to(dev),
            at.epoch,
            batch["index"].to(dev),
        )
        tg = self.strategy(lb)
        self.target_stats.add(tg.q[lb.generated.bool() & (tg.weight > 0)])
        per_image = cross_entropy_per_image(lb.logits, tg.q)
        loss = weighted_mean(per_image, tg.weight)
        center = {}
        if tg.aux_loss is not None:  # a per-image mean like the cross-entropy: DDP averages both
            real = ~lb.generated.bool()
            labeled = (per_image.detach() * real).sum() / used_images(tg.weight)
            center = center_parts(tg.aux_loss, labeled, loss)
            loss = loss + tg.aux_loss
        metric = {}
        if self.cfg.labels.triplet > 0:
            real = ~lb.generated.bool()
            margin = self.cfg.labels.triplet_margin
            trip = batch_hard_triplet(lb.features[real], lb.labels[real], margin)
            metric = {"loss/triplet": float(trip.detach())}
            loss = loss + self.cfg.labels.triplet * trip
        value = loop.finite("training loss", loss)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step(at.epoch + (at.index + 1) / at.length)
        self.strategy.after_step(lb)
        parts = loss_parts(per_image.detach(), lb.generated, tg.weight)
        return {"loss": value, **parts, **center, **metric}

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        lr = self.schedule.lr()
        return {
            "lr": lr[0],
            "lr_head": lr[-1],
            "generated_used": self.strategy.generated_active(epoch),
            **self.strategy.end_epoch(epoch),
            **self.target_stats.summary(),
        }

    def evaluate(self) -> dict[str, float]:
        if not self.ds.query or not self.ds.gallery:
            return {}
        metrics: dict[str, float] = {}
        if self.loop.is_main:
            e = self.cfg.eval
            metrics, _, _ = evaluate_model(
                self.model, self.ds, self.cfg.data.size, e.metric, e.flip, e.batch_size,
                self.loop.device,
            )  # fmt: skip
        barrier()
        return metrics

    # ------------------------------------------------------------------ records
    def meta(self) -> dict[str, Any]:
        return {
            "num_outputs": self.strategy.num_outputs,
            "num_classes": self.strategy.num_classes,
            "strategy": self.cfg.labels.strategy,
            "arch": self.cfg.model.arch,
            "feat_dim": self.model.feat_dim,
        }

    def check_checkpoint(self, meta: dict[str, Any], path: Path) -> None:
        if int(meta.get("num_outputs", -1)) != self.strategy.num_outputs:
            raise TrainingError(
                f"{path} has {meta.get('num_outputs')} classes, this config "
                f"{self.strategy.num_outputs}: resume with the run's config"
            )

    def results(self) -> dict[str, Any]:
        return {
            "strategy": self.cfg.labels.strategy,
            "num_classes": self.strategy.num_classes,
            "train_images": sum(not r.generated for r in self.records),
            "generated_images": sum(r.generated for r in self.records),
        }


def train(
    cfg: ReIDTrainConfig,
    out: str | Path,
    resume: bool | str = False,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Run (or resume) one re-ID training run into ``out``; returns the results dict."""
    return Loop(ReIDTask(cfg), out, resume, stop_after).run()


def step_matched_epochs(epochs: int, real: int, generated: int) -> int:
    """Baseline epochs with as many steps as ``epochs`` over real + generated images (an
    epoch of a run with generated images passes over both)."""
    return math.ceil(epochs * (real + generated) / real)
