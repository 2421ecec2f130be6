"""The GAN task: an unconditional generator trained on real training images (DCGAN, WGAN-GP).

One step is one discriminator (critic) update on one real batch; after every
``train.options.d_steps`` (DCGAN) or ``critic_steps`` (WGAN-GP) of them come ``g_steps``
generator updates, which together make one *iteration*. An epoch is one pass over the real
images (incomplete last batch dropped); iterations may straddle epochs. The architecture's
losses, collapse guard and options come from ``genreid.models.gan`` (no code here branches on
the architecture). With ``data.clusters`` one GAN is trained per cluster, each in its own
sub-run (SLSR).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from PIL import Image
from torch.utils.data import DataLoader

from genreid.core.config import CONFIG_VERSION, chosen_by
from genreid.core.errors import ConfigError, RegistryError, RunFolderError
from genreid.core.runs import RunDir
from genreid.data.clusters import read_cluster_manifest
from genreid.data.config import GanDataConfig
from genreid.data.dataset import ImageDataset, cache_fits
from genreid.data.datasets import load_dataset
from genreid.data.errors import DatasetError
from genreid.data.records import ImageRecord
from genreid.data.samplers import EpochSampler
from genreid.data.transforms import GanTransform, to_tensor
from genreid.engine.fastpath import autocast
from genreid.engine.loop import Hook, Loop, LoopConfig, StepInfo, Task, TrainingStopped
from genreid.engine.optim import OptimConfig, check_unread, make_optimizer
from genreid.engine.resume import check_resumable
from genreid.eval.generation.extractors import image_features
from genreid.eval.generation.gen_quality import (
    K_NEAREST,
    MeasureConfig,
    Quality,
    generator_features,
    holdout_split,
    quality,
    synthetic_space,
)
from genreid.models.gan import (
    GAN_ARCHS,
    GanArch,
    GanModelConfig,
    GanOptions,
    build_gan,
    gan_options,
)
from genreid.models.gan.augment import Augmented, ema_update, parse_policy
from genreid.models.gan.pretrained import freeze_lower, load_pretrained_gan
from genreid.viz.grids import grid_image

NAN_ADVICE = (
    "lower learning rates (e.g. optim.gen.lr=1e-4 optim.dis.lr=1e-4 or half the current ones), "
    "a smaller batch, or, for WGAN-GP, check train.options.gp_weight (10 in the paper)."
)
# train.* keys of config version 1 that are an architecture's options (now train.options.*)
V1_OPTION_KEYS = (
    "d_steps",
    "g_steps",
    "critic_steps",
    "gp_weight",
    "collapse_loss",
    "max_critic_gap",
)


# what a GAN's optimiser reads of its section, besides adam's betas or sgd's momentum, nesterov
GAN_OPTIM_READS = ("name", "lr", "betas", "weight_decay", "schedule")


def gan_optimiser() -> OptimConfig:
    """A GAN's optimiser defaults: Adam at a constant lr, no weight decay; lr and betas null
    (the architecture's paper values)."""
    return OptimConfig(name="adam", lr=None, betas=None, weight_decay=0.0, schedule="constant")


@dataclass
class GanOptimConfig:
    """The ``optim`` section of a GAN run: the generator's and the discriminator's optimiser."""

    gen: OptimConfig = field(default_factory=gan_optimiser)
    dis: OptimConfig = field(default_factory=gan_optimiser)

    def check(self) -> None:
        """A constant lr, and no key set that a GAN's optimiser never reads (head_lr_mult,
        milestones, ...; momentum and nesterov under adam)."""
        for name in ("gen", "dis"):
            sec = getattr(self, name)
            if sec.schedule != "constant":
                raise ConfigError(
                    f"optim.{name}.schedule: a GAN trains at a constant learning rate; "
                    "set it to constant"
                )
            # betas: their default is the architecture's (not known here), read under adam
            check_unread(sec, f"optim.{name}", gan_optimiser(), GAN_OPTIM_READS, "a GAN")


@dataclass
class GanTrainSection(LoopConfig):
    """Logging, length and stability guards of a GAN run (the ``train`` section), and the
    architecture's own options (``train.options``, its ``Options``: steps, penalty, guard)."""

    # version-1 keys that moved elsewhere, named by their unknown-key errors
    moved_keys: ClassVar[dict[str, str]] = {
        "lr": "optim.gen.lr and optim.dis.lr (config version 2)",
        "betas": "optim.gen.betas and optim.dis.betas (config version 2)",
    }

    epochs: int = 30
    batch_size: int = 64
    # the arch's options (dcgan: d_steps, g_steps, collapse_loss; wgangp: critic_steps,
    # g_steps, gp_weight, max_critic_gap); null: its paper defaults
    options: GanOptions | None = chosen_by("model.arch", gan_options, GAN_ARCHS.names)
    max_iters: int | None = None  # stop after this many iterations (tests, smoke runs)
    # train at least this many iterations: epochs are raised on a small set (VIPeR's 632
    # images are 19 batches, so 5 epochs would be 95 iterations: grey blobs). Per cluster: the
    # epochs one GAN on all clustered images would get, then cluster_epochs as below
    min_iters: int | None = None
    # one GAN per cluster: every GAN trains `epochs` over its own images (same), or
    # epochs x all images / its images, as many iterations as one GAN on all (scaled)
    cluster_epochs: Literal["same", "scaled"] = "same"
    log_every: int = 10  # iterations between metrics.jsonl records
    grid_size: int = 16  # images in the per-epoch sample grid
    collapse_patience: int = 200  # consecutive bad iterations before stopping
    # DiffAugment (Zhao et al. 2020) of every image D sees, real and generated: a
    # comma-separated subset of color, translation, cutout; empty: none (the papers)
    augment: str = ""
    # decay of an exponential moving average of G's weights that sampling, the sample sheets
    # and the measures use (e.g. 0.999); 0: none, the trained G itself (the papers)
    ema: float = 0.0
    # FreezeD (Mo et al. 2020): D's first blocks keep their (pretrained) weights; 0: none
    freeze_d: int = 0

    def check(self) -> None:
        super().check()
        if self.precision_mode == "fp16":
            raise ConfigError(
                "train.precision: GANs train in fp32 or bf16 (no loss scaling for fp16); use "
                "auto, fp32 or bf16"
            )
        positive = {
            "train.batch_size": self.batch_size,
            "train.log_every": self.log_every,
            "train.collapse_patience": self.collapse_patience,
            "train.grid_size": self.grid_size,
        }
        for key, value in positive.items():
            if value is not None and value < 1:
                raise ConfigError(f"{key}: expected an integer >= 1, got {value}")
        for key in ("max_iters", "min_iters"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"train.{key}: expected >= 1 or null, got {value}")
        parse_policy(self.augment)
        if self.freeze_d < 0:
            raise ConfigError(f"train.freeze_d: expected blocks >= 0, got {self.freeze_d}")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"train.ema: expected a decay in [0, 1) (0: off), got {self.ema}")


def migrate_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Config version 1 -> 2 of a GAN config: ``train.lr`` and ``train.betas`` become the lr
    and betas of ``optim.gen`` and ``optim.dis``; the arch's flat keys (``train.d_steps``) move
    to ``train.options``, the other arch's (which every version-1 run folder holds) are dropped.
    Keys already in their version-2 place (an override) win."""
    train = data.get("train")
    if not isinstance(train, dict):
        return data
    model = data.get("model")
    arch = GanModelConfig.arch
    arch = model.get("arch", arch) if isinstance(model, dict) else arch
    try:
        own = {f.name for f in dataclasses.fields(gan_options(str(arch)))}
    except RegistryError:
        own = set()  # the unknown arch's error comes when the config is read
    optim = {k: dict(v) for k, v in (data.get("optim") or {}).items() if isinstance(v, dict)}
    for key in ("lr", "betas"):
        if train.get(key) is not None:
            for name in ("gen", "dis"):
                optim.setdefault(name, {}).setdefault(key, train[key])
    moved = {k: train[k] for k in V1_OPTION_KEYS if train.get(k) is not None and k in own}
    train = {k: v for k, v in train.items() if k not in (*V1_OPTION_KEYS, "lr", "betas")}
    given = train.get("options")
    if moved and (given is None or isinstance(given, dict)):
        train["options"] = {**moved, **(given or {})}
    out = {**data, "train": train}
    if optim:
        out["optim"] = {**(data.get("optim") or {}), **optim}
    return out


# What may differ when a GAN run resumes: what the resume applies (after_load sets each
# optimiser's lr and betas; the train keys are read afresh), not train.grid_size (the sheets'
# noise comes from the checkpoint) nor train.ema (whether an EMA of G exists is the checkpoint's)
GAN_RESUMABLE = (
    *(f"train.{f.name}" for f in dataclasses.fields(GanTrainSection)
      if f.name not in ("options", "grid_size", "ema")),
    "train.options.", "optim.gen.lr", "optim.gen.betas", "optim.dis.lr", "optim.dis.betas",
    "data.workers",
)  # fmt: skip


@dataclass
class GanConfig:
    """Everything ``genreid gan train`` needs. Fields left null take the paper default of the
    chosen ``model.arch`` (docs/GAN.md): noise size, depth, the optimisers' lr and betas, and
    the arch's ``train.options``."""

    task: str = "gan"
    version: int = CONFIG_VERSION  # the key layout (older ones are migrated when read)
    seed: int = 0
    data: GanDataConfig = field(default_factory=GanDataConfig)
    model: GanModelConfig = field(default_factory=GanModelConfig)
    optim: GanOptimConfig = field(default_factory=GanOptimConfig)
    train: GanTrainSection = field(default_factory=GanTrainSection)
    measure: MeasureConfig = field(default_factory=MeasureConfig)

    migrations: ClassVar[dict[int, Callable[[dict], dict]]] = {2: migrate_v2}

    def __post_init__(self) -> None:
        try:
            arch = GAN_ARCHS.get(self.model.arch)
        except RegistryError as exc:
            raise ConfigError(f"model.arch: {exc}") from None
        defaults = arch.defaults
        for section, key in (
            (self.model, "z_dim"),
            (self.model, "depth"),
            (self.optim.gen, "lr"),
            (self.optim.gen, "betas"),
            (self.optim.dis, "lr"),
            (self.optim.dis, "betas"),
        ):
            if getattr(section, key) is None:
                value = defaults[key]
                setattr(section, key, list(value) if isinstance(value, list) else value)
        if self.train.options is None:
            self.train.options = arch.Options()

    def check(self) -> None:
        if self.task != "gan":
            raise ConfigError(
                f"task: this is a GAN training config, expected 'gan', got {self.task!r}"
            )
        expected = GAN_ARCHS.get(self.model.arch).Options
        if type(self.train.options) is not expected:
            raise ConfigError(
                f"train.options: {type(self.train.options).__qualname__} given for model.arch="
                f"{self.model.arch}, whose options are {expected.__qualname__}"
            )
        h, w = self.data.size
        f = 2**self.model.depth
        if h % f or w % f:
            raise ConfigError(
                f"data.height x data.width = {h}x{w} cannot be reached with model.depth="
                f"{self.model.depth}: both sides must be multiples of 2^depth = {f}. Use e.g. "
                "data.height=128 data.width=64 or a lower model.depth."
            )


def training_records(cfg: GanConfig) -> list[ImageRecord]:
    """The real training images of ``data.dataset`` at ``data.root`` (never query/gallery)."""
    root = cfg.data.require_root()
    ds = load_dataset(cfg.data.dataset, root, **cfg.data.options)
    records = [r for r in ds.train if not r.generated]
    if not records:
        raise DatasetError(
            f"{cfg.data.dataset} at {root} has no training images; a GAN needs the "
            "training split (e.g. Market-1501's bounding_box_train)."
        )
    return records


def cluster_config(cfg: GanConfig, images: int, total: int) -> GanConfig:
    """One cluster's GAN config. ``train.cluster_epochs=scaled`` trains a cluster of
    ``images`` of the ``total`` clustered images for ceil(epochs * total / images) epochs, so
    that a small cluster's GAN gets as many iterations as one GAN on all images (at tiny scale
    ``same`` leaves the GANs of small clusters with a few dozen iterations: grey noise)."""
    if cfg.train.cluster_epochs == "same":
        return cfg
    epochs = math.ceil(cfg.train.epochs * total / images)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=epochs))


def iteration_floor(cfg: GanConfig, images: int) -> GanConfig:
    """The config with ``train.epochs`` raised so that ``images`` give at least
    ``train.min_iters`` iterations in one process (unchanged without ``min_iters``)."""
    t = cfg.train
    if not t.min_iters:
        return cfg
    d_steps = t.options.d_updates
    batches = max(1, images // max(1, min(t.batch_size, images)))  # iterations straddle epochs
    epochs = max(t.epochs, math.ceil(t.min_iters * d_steps / batches))
    return dataclasses.replace(cfg, train=dataclasses.replace(t, epochs=epochs))


def cluster_seed(seed: int, cluster: int) -> int:
    """Seed of one cluster's GAN: different per cluster, fixed by the run seed."""
    return seed * 1009 + cluster + 1


class GanSteps:
    """Generator, discriminator, their Adam optimisers and one update of each (no data, no
    I/O). The task registers them with the loop (which may swap ``G_net``/``D_net`` for DDP
    wrappers); benchmarks time them directly. ``finite(what, loss)`` sees every loss before
    its backward pass and may stop training."""

    def __init__(
        self,
        cfg: GanConfig,
        device: torch.device,
        finite: Callable[[str, torch.Tensor], float] | None = None,
        amp: torch.dtype | None = None,
    ) -> None:
        self.cfg, self.device, self.amp = cfg, device, amp
        self.arch: type[GanArch] = GAN_ARCHS.get(cfg.model.arch)
        self.G, self.D = build_gan(cfg.model, cfg.data.size)
        self.pretrained = None  # where G and D were initialised from
        if cfg.model.pretrained:
            self.pretrained = load_pretrained_gan(
                self.G, self.D, cfg.model.pretrained, cfg.model, cfg.data.size
            )
        self.train_d(True)
        self.G.to(device)
        self.D.to(device)
        self.G_net, self.D_net = self.G, self.D  # what training forwards call
        t = cfg.train
        self.optG = make_optimizer(self.G.parameters(), cfg.optim.gen)
        self.optD = make_optimizer(self.D.parameters(), cfg.optim.dis)
        self.finite = finite or (lambda what, loss: float(loss.detach()))
        self.last: dict[str, float] = {}
        # the generator that samples: an EMA copy of G (train.ema), or G itself
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if t.ema > 0 else None
        self.ema_updates = 0

    def train_d(self, on: bool) -> None:
        """D's parameters trainable (but for its ``train.freeze_d`` first blocks) or not."""
        self.D.requires_grad_(on)
        if on and self.cfg.train.freeze_d:
            freeze_lower(self.D, self.cfg.train.freeze_d)

    def seen_by(self, D: Callable[[torch.Tensor], torch.Tensor]) -> Any:
        """The discriminator as the losses call it: through DiffAugment when train.augment,
        autocast to ``amp`` with fp32 scores when training in bf16."""
        policy = self.cfg.train.augment
        D = Augmented(D, policy) if policy else D
        return D if self.amp is None else self.autocast(D)

    def autocast(self, net: Callable[[torch.Tensor], torch.Tensor]) -> Any:
        """``net`` run under autocast to ``amp``, its output back in fp32 (losses, penalties and
        the images D sees stay fp32)."""

        def run(x: torch.Tensor) -> torch.Tensor:
            with autocast(self.device, self.amp):
                return net(x).float()

        return run if self.amp is not None else net

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator that samples, draws sheets and is measured."""
        return self.G if self.G_ema is None else self.G_ema

    def d_step(self, real: torch.Tensor) -> None:
        """One discriminator (critic) update on a real batch and as many fresh fakes."""
        z = self.G.sample_z(real.shape[0]).to(self.device)
        with torch.no_grad():
            fake = self.autocast(self.G)(z)
        loss, stats = self.arch.d_loss(self.seen_by(self.D_net), real, fake, self.options)
        self.last["loss/d"] = self.finite("discriminator loss", loss)
        self.last.update({k: float(v.detach()) for k, v in stats.items()})
        self.optD.zero_grad(set_to_none=True)
        loss.backward()
        self.optD.step()

    def g_step(self, batch_size: int) -> None:
        """One generator update through the (frozen) discriminator."""
        self.train_d(False)
        try:
            z = self.G.sample_z(batch_size).to(self.device)
            loss = self.arch.g_loss(self.seen_by(self.D)(self.autocast(self.G_net)(z)))
            self.last["loss/g"] = self.finite("generator loss", loss)
            self.optG.zero_grad(set_to_none=True)
            loss.backward()
            self.optG.step()
            if self.G_ema is not None:
                ema_update(self.G_ema, self.G, self.cfg.train.ema, self.ema_updates)
                self.ema_updates += 1
        finally:
            self.train_d(True)

    @property
    def options(self) -> GanOptions:
        """The architecture's options (``train.options``)."""
        return self.cfg.train.options

    @property
    def d_steps(self) -> int:
        """Discriminator updates per iteration (``d_steps`` or ``critic_steps``)."""
        return self.options.d_updates


class GanTask(Task):
    """One generator/discriminator pair trained on ``records`` (default: the training split)."""

    name = "gan"
    config_class = GanConfig
    reseed_each_epoch = False
    resumable_keys = GAN_RESUMABLE
    nan_advice = NAN_ADVICE
    pretrain_product = "generator"
    reproduce_overrides = "gan_overrides"

    def __init__(
        self,
        cfg: GanConfig,
        records: list[ImageRecord] | None = None,
        seed: int | None = None,
        cluster: int | None = None,
        reference: list[ImageRecord] | None = None,
    ) -> None:
        super().__init__(cfg)
        self.cfg: GanConfig = cfg
        self.records = records
        self.reference = reference  # held-out real images the measures compare with
        self.generated: dict[str, Any] | None = None  # the last measures
        self._space: Any = None
        self._reference_features: Any = None
        self.seed = cfg.seed if seed is None else seed
        self.cluster = cluster
        self.label = "" if cluster is None else f"cluster {cluster}: "
        self.stage = "gan" if cluster is None else f"gan_cluster_{cluster}"
        self.arch: type[GanArch] = GAN_ARCHS.get(cfg.model.arch)
        self.d_count = 0  # discriminator updates so far
        self.iteration = 0  # generator phases so far
        self.bad_streak = 0  # consecutive iterations that look collapsed

    @classmethod
    def trained_images(cls, cfg: GanConfig, real_images: Callable[[dict[str, Any]], int]) -> int:
        """Epochs (after the iteration floor) x real images, every critic step counted."""
        real = real_images(dict(cfg.data.options))
        return iteration_floor(cfg, real).train.epochs * real

    # ------------------------------------------------------------------ set-up
    def cpu_auto_bf16(self) -> bool:
        return GAN_ARCHS.get(self.cfg.model.arch).cpu_auto_bf16

    def setup(self, loop: Loop) -> None:
        cfg, t = self.cfg, self.cfg.train
        self.loop = loop
        if self.records is None:
            self.records = training_records(cfg)
        self.steps = steps = GanSteps(cfg, loop.device, loop.finite, loop.amp)
        self.G, self.D = steps.G, steps.D
        steps.G_net = loop.module("G", steps.G)
        steps.D_net = loop.module("D", steps.D)
        loop.optimizer("G", steps.optG)
        loop.optimizer("D", steps.optD)
        if steps.G_ema is not None:
            loop.module("G_ema", steps.G_ema, ddp_wrap=False)
        self.fixed_z = self.G.sample_z(t.grid_size, torch.Generator().manual_seed(self.seed + 7))
        world = loop.dist.world_size
        self.batch_size = min(t.batch_size, len(self.records) // world)
        if self.batch_size < 1:
            raise DatasetError(
                f"{self.label}{len(self.records)} images are too few for {world} processes"
            )
        d = cfg.data
        pipeline = GanTransform(d.size, d.flip)
        cache = d.cache == "on" or (d.cache == "auto" and cache_fits(self.records, pipeline))
        self.dataset = ImageDataset(self.records, pipeline, cache=cache)
        self.sampler = EpochSampler(
            len(self.records), self.seed, rank=loop.dist.rank, world_size=world
        )
        self.loader_gen = torch.Generator().manual_seed(self.seed)
        self.loader = DataLoader(
            self.dataset.batched(),
            collate_fn=self.dataset.collate,
            batch_size=self.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=cfg.data.workers,
            generator=self.loader_gen,
            pin_memory=loop.device.type == "cuda",
        )
        self.n_d = steps.d_steps
        if loop.is_main and not loop.resuming:
            (loop.out / "train_images.txt").write_text("".join(r.path + "\n" for r in self.records))
            if self.reference:
                (loop.out / "measure_images.txt").write_text(
                    "".join(r.path + "\n" for r in self.reference)
                )

    # ------------------------------------------------------------------ data
    def epoch_length(self, epoch: int) -> int:
        return (len(self.records) // self.loop.dist.world_size) // self.batch_size

    def batches(self, epoch: int, start: int) -> DataLoader:
        self.sampler.set_epoch(epoch, start * self.batch_size)
        return self.loader

    # ------------------------------------------------------------------ training
    def step(self, batch: dict[str, Any], at: StepInfo) -> dict[str, float]:
        self.G.train()
        self.D.train()
        last = self.steps.last
        self.steps.d_step(self.loop.images(batch["image"]))
        self.d_count += 1
        values = {"loss/d": last["loss/d"]}
        if self.d_count % self.n_d == 0:
            for _ in range(self.steps.options.g_steps):
                self.steps.g_step(self.batch_size)
            self.iteration += 1
            values["loss/g"] = last["loss/g"]
            self._guard()
            if self.iteration % self.cfg.train.log_every == 0:
                self.loop.log({"iter": self.iteration, **last})
        return values

    def _guard(self) -> None:
        patience = self.cfg.train.collapse_patience
        what = self.arch.collapsed(self.steps.last, self.steps.options, patience)
        self.bad_streak = self.bad_streak + 1 if what else 0
        if what and self.bad_streak >= patience:
            raise TrainingStopped(what, self.arch.collapse_advice)

    def finished(self) -> bool:
        cap = self.cfg.train.max_iters
        return cap is not None and self.iteration >= cap

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        sheet = self.sample_sheet()
        if self.loop.is_main:
            path = self.loop.rundir.figures / f"epoch_{epoch + 1:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            sheet.save(path)
            tb = self.loop.rundir.tensorboard()
            tb.add_image("samples", to_tensor(sheet), self.loop.step)  # C x H x W in [0, 1]
            tb.flush()
        return {"iteration": self.iteration}

    @torch.no_grad()
    def sample_sheet(self) -> Image.Image:
        """Samples of the fixed noise (eval mode: no RNG or BN-statistics side effects)."""
        G = self.steps.sampler
        was_training = G.training
        G.eval()
        try:
            images = G(self.fixed_z.to(self.loop.device))
        finally:
            G.train(was_training)
        return grid_image(images, nrow=8)

    # ------------------------------------------------------------------ measures
    def evaluate(self) -> dict[str, float]:
        """The generated-image measures (``measure`` section) on the main process."""
        if not self.cfg.measure.enabled or not self.loop.is_main:
            return {}
        have = len(self.reference or self.records or [])
        if have < K_NEAREST + 1:
            self.generated = {
                "skipped": f"{have} reference images; the measures need {K_NEAREST + 1}"
            }
            return {}
        with torch.random.fork_rng(devices=[]):  # training draws exactly what it would without
            q = self.measure_quality()
        against = "held-out training images" if self.reference else "the training images"
        self.generated = {**q.as_dict(), "against": against, "iteration": self.iteration}
        return {f"gen/{k}": getattr(q, k) for k in ("frechet", "kid", "precision", "recall")}

    @torch.no_grad()
    def measure_quality(self) -> Quality:
        """Generated images (seeded noise, eval mode) against the reference images in the
        synthetic space; the reference features are computed once per run."""
        m, device = self.cfg.measure, self.loop.device
        if self._space is None:
            reference = self.reference or self.records or []
            self._space = synthetic_space(device)
            paths = [r.path for r in reference]
            self._reference_features = image_features(self._space, paths, device=device)
        n = m.images or len(self._reference_features)
        G = self.steps.sampler
        was_training = G.training
        G.eval()
        try:
            fake = generator_features(G, self._space, n, m.seed, device)
        finally:
            G.train(was_training)
        return quality(self._reference_features, fake, m.seed)

    # ------------------------------------------------------------------ records
    def after_load(self) -> None:
        o = self.cfg.optim
        for opt, sec in ((self.steps.optG, o.gen), (self.steps.optD, o.dis)):
            for group in opt.param_groups:  # a resume may change lr/betas
                group["lr"] = sec.lr
                if "betas" in group:
                    group["betas"] = tuple(sec.betas)

    def state_dict(self) -> dict[str, Any]:
        return {
            "fixed_z": self.fixed_z,
            "d_count": self.d_count,
            "iteration": self.iteration,
            "bad_streak": self.bad_streak,
            "last": dict(self.steps.last),
            "loader_rng": self.loader_gen.get_state(),
            "ema_updates": self.steps.ema_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fixed_z = state["fixed_z"].cpu()
        for key in ("d_count", "iteration", "bad_streak"):
            setattr(self, key, int(state[key]))
        self.steps.last = {k: float(v) for k, v in state["last"].items()}
        self.loader_gen.set_state(state["loader_rng"])
        self.steps.ema_updates = int(state.get("ema_updates", 0))

    def meta(self) -> dict[str, Any]:
        return {"arch": self.cfg.model.arch, "cluster": self.cluster}

    @classmethod
    def train(
        cls, cfg: GanConfig, out: str | Path, resume: bool | str = False, hooks: Sequence[Hook] = ()
    ) -> dict[str, Any]:
        return train_gan(cfg, out, resume, hooks)

    def check_checkpoint(self, meta: dict[str, Any], path: Path) -> None:
        if meta.get("arch") != self.cfg.model.arch:
            raise RunFolderError(
                f"{path} holds a {meta.get('arch')} model but the config says model.arch="
                f"{self.cfg.model.arch}; resume with the run's own config."
            )

    def results(self) -> dict[str, Any]:
        return {
            "arch": self.cfg.model.arch,
            "cluster": self.cluster,
            "iteration": self.iteration,
            "discriminator_steps": self.d_count,
            "train_images": len(self.records or []),
            "batch_size": getattr(self, "batch_size", None),
            "last": dict(self.steps.last) if hasattr(self, "steps") else {},
            "pretrained": getattr(getattr(self, "steps", None), "pretrained", None),
            **({"generated": self.generated} if self.generated else {}),
        }


def train_gan(
    cfg: GanConfig, out: str | Path, resume: bool | str = False, hooks: Sequence[Hook] = ()
) -> dict[str, Any]:
    """Train one GAN, or one per cluster when ``data.clusters`` is set (``hooks``: more loop
    hooks, the same objects for every cluster's run); returns results."""
    out = Path(out)
    if resume is True:
        saved = out / "config.yaml"
        if not saved.is_file():
            raise RunFolderError(
                f"nothing to resume at {out}: no config.yaml there. Drop --resume to start "
                "a new run, or pass the --out folder of an existing run."
            )
        check_resumable(cfg, out, GanTask.resumable_keys)
    records = training_records(cfg)
    m = cfg.measure
    if not cfg.data.clusters:
        kept, held = holdout_split(records, m.holdout, cfg.seed)
        task = GanTask(iteration_floor(cfg, len(kept)), kept, reference=held)
        return Loop(task, out, resume, hooks=hooks).run()
    groups = read_cluster_manifest(cfg.data.clusters, records, cfg.data.root)
    split = {
        c: holdout_split(recs, m.holdout, cluster_seed(cfg.seed, c)) for c, recs in groups.items()
    }
    groups = {c: kept for c, (kept, _) in split.items()}
    top = RunDir(out)
    top.record_config(cfg, cfg.seed, stage="gan_clusters")
    results: dict[str, Any] = {"status": "done", "arch": cfg.model.arch, "clusters": {}}
    try:
        total = sum(len(recs) for recs in groups.values())
        floored = iteration_floor(cfg, total)  # min_iters: those of one GAN on all images
        for c, recs in groups.items():
            ccfg = cluster_config(floored, len(recs), total)
            task = GanTask(
                ccfg, recs, seed=cluster_seed(cfg.seed, c), cluster=c, reference=split[c][1]
            )
            res = Loop(task, out / f"cluster_{c}", "auto" if resume else False, hooks=hooks).run()
            results["clusters"][str(c)] = {
                "images": len(recs),
                "epochs": ccfg.train.epochs,
                "run": f"cluster_{c}",
                "status": res["status"],
                "iteration": res["iteration"],
                **({"generated": res["generated"]} if "generated" in res else {}),
            }
            if res["status"] != "done":
                results["status"] = "partial"
    except TrainingStopped:
        results["status"] = "stopped"
        top.write_results(results)
        raise
    top.write_results(results)
    return results
