"""The DG-Net task: appearance/structure encoders, decoder and discriminator trained jointly
with the re-ID network on batches of positive pairs (Zheng et al., CVPR 2019; METHODS §7).

One step is one iteration: encode the anchors, their positives and the anchors' structure
codes, decode the self-, same-identity and cross-identity images (anchor i and anchor
i + P/2 swapped both ways), update D once on the current fakes (LSGAN + R1 on the reals),
then update E_a (SGD, or Adam: optim.ea.name) and E_s + G (Adam) once on the weighted sum of
Eq. 10. As in the released trainer, L_id^c and L_code_a read the generated images through a
frozen E_a (they train what made the image, not E_a's weights), L_code_s through a frozen E_s
or, with probability ``loss.encoder_again``, re-encodes the detached image with the live E_s;
the identity losses on real images see randomly erased copies (``loss.erasing_p``), and the
fine-grained head also learns the real anchors' labels (``loss.fine_real``). The teacher (a
trained re-ID run) labels the cross-identity images for L_prim; L_fine uses the structure
donor's label; both start at ``loss.start`` and warm up linearly. The iteration's random
draws come from generators seeded by (run seed, iteration), so a resumed run repeats them.
Gradients are averaged over processes by hand (the iteration runs each network several times
before one backward pass, which DDP's hooks do not allow).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from genreid.core.config import CONFIG_VERSION, load_section
from genreid.core.distributed import all_reduce_sum, barrier, is_distributed
from genreid.core.errors import ConfigError
from genreid.data.config import DataConfig
from genreid.data.dataset import ImageDataset, cache_fits
from genreid.data.datasets import DATASETS
from genreid.data.pairs import PairBatchSampler
from genreid.data.transforms import (
    erase_,
    erasing_boxes,
    test_transform,
    to_tensor,
    train_transform,
)
from genreid.engine.dgnet_quality import reid_judge, swap_quality
from genreid.engine.dgnet_swap import unit
from genreid.engine.fastpath import autocast
from genreid.engine.loop import Hook, Loop, LoopConfig, StepInfo, Task, TrainingError
from genreid.engine.optim import OptimConfig, build_optimizer, check_unread, make_optimizer
from genreid.engine.tasks.reid import load_training_data
from genreid.eval.generation.gen_quality import MeasureConfig
from genreid.eval.ranking.config import EvalConfig
from genreid.eval.ranking.extract import evaluate_model
from genreid.models.dgnet import DGNetModelConfig, DGNetReID, build_dgnet
from genreid.models.dgnet.discriminator import lsgan_d_loss, lsgan_g_loss, r1_penalty
from genreid.models.dgnet.encoders import Appearance
from genreid.models.dgnet.frozen import frozen_call
from genreid.models.dgnet.losses import kl_to_teacher, l1, ramp, teacher_soft_labels
from genreid.models.loading import load_run_model
from genreid.models.reid import ReIDModel
from genreid.viz.swap import swap_sheet

NAN_ADVICE = (
    "lower learning rates (optim.ea.lr, optim.gen.lr, optim.dis.lr), train.precision=fp32, or a "
    "later loss.start (the re-ID losses on generated images joined too early)."
)
ERASING_AREA = (0.02, 0.4)  # the released code's RandomErasing: area fraction of the box
ERASING_MIN_ASPECT = 0.3  # and its aspect ratio in [0.3, 1 / 0.3]
STREAM_ENCODER, STREAM_ERASING = 0, 1  # per-iteration generators (erasing: + rank)


@dataclass
class DGNetLossConfig:
    """The weights of Eq. 10 and the schedule of the two losses on generated images."""

    img: float = 5.0  # lambda_img on L_recon^img1 (self) + L_recon^img2 (same identity)
    code_a: float = 1.0  # L_recon^code1: E_a(G(a_i, s_j)) against a_i
    code_s: float = 1.0  # L_recon^code2: E_s(G(a_i, s_j)) against s_j
    id: float = 1.0  # L_id^s: cross-entropy of the real images (primary head)
    id_cross: float = 0.5  # lambda_id on L_id^c: the appearance donor's label on G(a_i, s_j)
    adv: float = 1.0  # L_adv (LSGAN), generator side
    gp: float = 0.01  # gradient penalty on real images in D's loss
    prim: float = 2.0  # lambda_prim once warmed up: KL to the teacher (Eq. 8)
    fine: float = 0.4  # lambda_fine once warmed up (0.2 lambda_prim): structure donor's label
    start: int = 30000  # iteration at which L_prim and L_fine join
    warmup: int = 4000  # iterations of their linear ramp from 0
    # the fine-grained head's cross-entropy on the real anchors at fine_real x lambda_fine
    # (the released code's weight_B; the paper has no such term, 0 drops it)
    fine_real: float = 1.0
    # probability per image of an erasing box on the copies of the real images that the
    # identity losses see (never on what G encodes or reconstructs): the released code's 0.5
    erasing_p: float = 0.5
    # probability per iteration that L_code_s re-encodes the detached generated image with
    # the live E_s (trains E_s), else a frozen E_s reads the live image (trains G): released
    encoder_again: float = 0.5
    # true: G gets a detached appearance code, so only the identity losses train E_a (with
    # the frozen E_a of L_id^c and L_code_a, the released code's behaviour); false (the paper:
    # E_a, E_s and G are trained jointly "before the generated image"): generation trains E_a
    detach_appearance: bool = False
    # true: L_id^c and L_code_a read x_cross with the live E_a against the undetached code
    # (genreid before the second fidelity audit), so generated images train E_a from the
    # first iteration; false: a frozen E_a reads them (the released trainer, and the paper's
    # "until the generation quality is stable"). Validation (docs/RESULTS.md): +6.6 mAP on
    # VIPeR, -6.6 on PRID2011 at tiny scale, so the default follows paper and code.
    live_appearance_reader: bool = False

    def check(self) -> None:
        weights = ("img", "code_a", "code_s", "id", "id_cross", "adv", "gp", "prim", "fine")
        for key in (*weights, "fine_real"):
            if getattr(self, key) < 0:
                raise ConfigError(f"loss.{key}: expected a weight >= 0, got {getattr(self, key)}")
        for key in ("erasing_p", "encoder_again"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(
                    f"loss.{key}: expected a probability in [0, 1], got {getattr(self, key)}"
                )
        if self.start < 0 or self.warmup < 0:
            raise ConfigError(
                f"loss.start and loss.warmup: expected iterations >= 0, got {self.start}, "
                f"{self.warmup}"
            )


def appearance_optimiser() -> OptimConfig:
    """E_a's defaults, the heads at ``head_lr_mult`` x lr: the paper's SGD with momentum and a
    step schedule in iterations (or ``name: adam``, ``schedule: cosine``: the tiny re-ID
    recipe's, to 0 over all iterations)."""
    return OptimConfig(milestones=[60000])


def adam_optimiser() -> OptimConfig:
    """E_s + G's and D's defaults: Adam with a step schedule in iterations."""
    return OptimConfig(name="adam", lr=1e-4, betas=[0.0, 0.999], milestones=[60000])


# each optimiser's defaults and what DG-Net reads of its section (IterSchedule: step, or cosine
# to 0), besides adam's betas or sgd's momentum and nesterov; E_a alone has a head
_DGNET_READS = ("name", "lr", "weight_decay", "schedule", "milestones", "gamma")
DGNET_OPTIMISERS: dict[str, tuple[Callable[[], OptimConfig], tuple[str, ...]]] = {
    "ea": (appearance_optimiser, (*_DGNET_READS, "head_lr_mult")),
    "gen": (adam_optimiser, _DGNET_READS),
    "dis": (adam_optimiser, _DGNET_READS),
}


@dataclass
class DGNetOptimConfig:
    """Three optimisers, each with its own schedule (``step`` or ``cosine``, in iterations):
    ``ea`` (E_a), ``gen`` (E_s, G), ``dis`` (D)."""

    ea: OptimConfig = field(default_factory=appearance_optimiser)
    gen: OptimConfig = field(default_factory=adam_optimiser)
    dis: OptimConfig = field(default_factory=adam_optimiser)

    def check(self) -> None:
        """Step or cosine schedules in iterations, and no key set that DG-Net never reads (the
        inverse schedule's, min_lr_factor, gen's and dis's head_lr_mult, ...)."""
        for name in ("ea", "gen", "dis"):
            sec = getattr(self, name)
            if not 0 < sec.gamma <= 1:
                raise ConfigError(f"optim.{name}.gamma: expected 0 < gamma <= 1, got {sec.gamma}")
            if any(m < 1 for m in sec.milestones):
                raise ConfigError(f"optim.{name}.milestones: expected iterations >= 1")
            if sec.schedule not in ("step", "cosine"):
                raise ConfigError(
                    f"optim.{name}.schedule: DG-Net's schedules are step or cosine (in "
                    f"iterations), got {sec.schedule}"
                )
            default, reads = DGNET_OPTIMISERS[name]
            check_unread(sec, f"optim.{name}", default(), reads, "DG-Net")


@dataclass
class DGNetTrainSection(LoopConfig):
    """An epoch is ``epoch_iters`` iterations (checkpoint, metrics, evaluation, image grid)."""

    epochs: int = 100
    epoch_iters: int = 1000
    pairs: int = 8  # positive pairs per process and iteration (2 x pairs images)
    grid_images: int = 4  # images of the per-epoch swap sheet (n x n swaps)
    # at least this many passes over the training images (2 x pairs images an iteration, one
    # process): more epochs, the schedule (loss.start, loss.warmup, milestones) stretched alike
    min_passes: float = 0.0

    def check(self) -> None:
        super().check()
        for key in ("epoch_iters", "pairs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key}: expected 1 or more, got {getattr(self, key)}")
        if self.min_passes < 0:
            raise ConfigError(f"train.min_passes: expected >= 0 (0: off), got {self.min_passes}")
        if self.pairs < 2 or self.pairs % 2:
            raise ConfigError(
                f"train.pairs: expected an even number >= 2, got {self.pairs}: anchor i and "
                "anchor i + pairs/2 swap their codes both ways (the released code's halves A "
                "and B), so the pairs must split into two halves"
            )
        if self.grid_images < 0:
            raise ConfigError(f"train.grid_images: expected 0 or more, got {self.grid_images}")


@dataclass
class DGNetConfig:
    """Everything one DG-Net run needs (``genreid train`` with ``task: dgnet``)."""

    task: str = "dgnet"
    version: int = CONFIG_VERSION  # the key layout (version 1's keys are version 2's)
    seed: int = 0
    teacher: str | None = None  # a finished re-ID run on the same data (needed when loss.prim>0)
    data: DataConfig = field(default_factory=DataConfig)
    model: DGNetModelConfig = field(default_factory=DGNetModelConfig)
    loss: DGNetLossConfig = field(default_factory=DGNetLossConfig)
    optim: DGNetOptimConfig = field(default_factory=DGNetOptimConfig)
    train: DGNetTrainSection = field(default_factory=DGNetTrainSection)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # swaps scored at the end of the run: appearance-transfer rate and generated-image measures
    measure: MeasureConfig = field(default_factory=lambda: MeasureConfig(images=256))

    def check(self) -> None:
        if self.task != "dgnet":
            raise ConfigError(f"task: this is a DG-Net config, expected 'dgnet', got {self.task!r}")
        if self.measure.holdout > 0:
            raise ConfigError(
                "measure.holdout: DG-Net learns re-ID from every training image, so none can be "
                "held out; its swaps are measured against the training images (set it to 0)"
            )
        if self.data.generated:
            raise ConfigError(
                "data.generated: DG-Net generates its images online; leave it null (a folder "
                "of DG-Net images for other strategies comes from `genreid dgnet swap`)"
            )
        if self.data.erasing_p > 0:
            raise ConfigError(
                "data.erasing_p: DG-Net's generator must encode and reconstruct unerased "
                "images; set loss.erasing_p instead (erasing for the identity losses only)"
            )
        self.model.check_size(self.data.height, self.data.width)

    @property
    def iterations(self) -> int:
        return self.train.epochs * self.train.epoch_iters


def passes_floor(cfg: DGNetConfig, images: int) -> DGNetConfig:
    """The config stretched to ``train.min_passes`` passes over ``images`` training images:
    epochs raised, and loss.start, loss.warmup and every milestone scaled by the same factor
    (new epochs / old), so the schedule keeps its proportions. Unchanged when the configured
    iterations already make that many passes (or without ``min_passes``)."""
    t = cfg.train
    need = math.ceil(t.min_passes * images / (2 * t.pairs))
    if not t.min_passes or need <= cfg.iterations:
        return cfg
    epochs = math.ceil(need / t.epoch_iters)
    f = epochs / t.epochs

    def stretch(sec: Any) -> Any:
        return dataclasses.replace(sec, milestones=[round(m * f) for m in sec.milestones])

    o, L = cfg.optim, cfg.loss
    return dataclasses.replace(
        cfg,
        train=dataclasses.replace(t, epochs=epochs),
        loss=dataclasses.replace(L, start=round(L.start * f), warmup=round(L.warmup * f)),
        optim=dataclasses.replace(o, ea=stretch(o.ea), gen=stretch(o.gen), dis=stretch(o.dis)),
    )


class IterSchedule:
    """Every group's lr = its base lr x gamma^(milestones reached), per iteration; with
    ``cosine_over`` = N instead, base lr x (1 + cos(pi min(i/N, 1))) / 2."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        milestones: list[int],
        gamma: float,
        cosine_over: int | None = None,
    ) -> None:
        self.optimizer, self.milestones, self.gamma = optimizer, list(milestones), gamma
        self.cosine_over = cosine_over
        self.base = [g.setdefault("initial_lr", g["lr"]) for g in optimizer.param_groups]
        self.iteration = 0

    def factor(self) -> float:
        if self.cosine_over:
            return 0.5 * (1 + math.cos(math.pi * min(self.iteration / self.cosine_over, 1.0)))
        return self.gamma ** sum(self.iteration >= m for m in self.milestones)

    def _apply(self) -> None:
        f = self.factor()
        for g, b in zip(self.optimizer.param_groups, self.base, strict=True):
            g["lr"] = b * f

    def step(self) -> None:
        self.iteration += 1
        self._apply()

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, int]:
        return {"iteration": self.iteration}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.iteration = int(state["iteration"])
        self._apply()


class Teacher:
    """A trained re-ID network (eval mode, frozen) giving flip-averaged soft labels; images
    are resized to its training size when that differs."""

    def __init__(self, model: ReIDModel, size: tuple[int, int]) -> None:
        self.model = model.eval().requires_grad_(False)
        self.size = tuple(size)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return self.model.head(self.model.backbone(x))

    def soft_labels(self, x: torch.Tensor) -> torch.Tensor:
        return teacher_soft_labels(self.logits, x)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_teacher(
    cfg: DGNetConfig, num_classes: int, device: torch.device
) -> tuple[Teacher, dict[str, str]]:
    """The teacher run's network and its identity (path, checkpoint sha256); it must have been
    trained on the same dataset and split, with one output per training identity."""
    run = Path(str(cfg.teacher)).expanduser()
    model = load_run_model(run, device=device)
    if not isinstance(model, ReIDModel):
        raise ConfigError(f"teacher: {run} is not a re-ID run (train one with --config tiny)")
    tdata = load_section(run / "config.yaml", "data", DataConfig)
    same = DATASETS.key(tdata.dataset) == DATASETS.key(cfg.data.dataset)
    if not same or tdata.options != cfg.data.options:
        raise ConfigError(
            f"teacher: {run} was trained on {tdata.dataset} {tdata.options or ''}, this run "
            f"trains on {cfg.data.dataset} {cfg.data.options or ''}; give a teacher trained on "
            "the same dataset and split (its identities are this run's classes)"
        )
    if model.num_outputs != num_classes:
        raise ConfigError(
            f"teacher: {run} has {model.num_outputs} outputs, this run {num_classes} training "
            "identities; train the teacher on the same data with labels.strategy=baseline"
        )
    sha = file_sha256(run / "checkpoints" / "last.pt")
    return Teacher(model, tdata.size), {"run": str(run.resolve()), "sha256": sha}


def average_gradients(params: list[nn.Parameter]) -> None:
    """Mean of the gradients over processes, in one all-reduce (no-op in one process)."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    all_reduce_sum(flat)
    flat /= torch.distributed.get_world_size()
    at = 0
    for g in grads:
        g.copy_(flat[at : at + g.numel()].view_as(g))
        at += g.numel()


@dataclass
class Forward:
    """What one iteration's forward pass keeps for the joint update."""

    parts: dict[str, torch.Tensor]  # loss terms so far, unweighted
    a: torch.Tensor  # the anchors' appearance codes (as G received them)
    s: torch.Tensor  # their structure codes
    donor: torch.Tensor  # structure donor of each cross-identity image
    x_cross: torch.Tensor  # x_j^i = G(a_i, s_j), j = donor[i]
    lam_prim: float
    lam_fine: float
    encoder_again: bool = False  # L_code_s re-encodes the detached x_cross with the live E_s


def swap_partners(P: int, device: torch.device | None = None) -> torch.Tensor:
    """Structure donor of each anchor: i + P/2 mod P, so every pair of anchors (i, i + P/2)
    is swapped both ways (the released code's x_ba and x_ab of halves A and B)."""
    return (torch.arange(P, device=device) + P // 2) % P


def iteration_generator(seed: int, iteration: int, stream: int) -> torch.Generator:
    """A CPU generator for one iteration's draws of one kind: a function of (run seed,
    iteration, stream) alone, so a resumed run draws what an uninterrupted one drew."""
    return torch.Generator().manual_seed((((seed * 1_000_003 + iteration) << 20) + stream) % 2**63)


class DGNetSteps:
    """The four networks, the three optimisers and schedules, two gradient scalers, and one
    training iteration on a batch of pairs (no data, no I/O: benchmarks time it directly)."""

    def __init__(
        self,
        cfg: DGNetConfig,
        num_classes: int,
        device: torch.device,
        teacher: Teacher | None = None,
        amp: torch.dtype | None = None,
        finite: Callable[[str, torch.Tensor], float] | None = None,
        load_pretrained: bool = True,
        rank: int = 0,
    ) -> None:
        self.cfg, self.device, self.teacher, self.amp = cfg, device, teacher, amp
        self.rank = rank  # erasing boxes differ between processes (their images do)
        self.nets = build_dgnet(cfg.model, num_classes, load_pretrained).to(device)
        n = self.nets
        self.E_a, self.E_s, self.G, self.D = n.E_a, n.E_s, n.G, n.D
        o = cfg.optim
        # E_a: the backbone at lr, the heads at head_lr_mult x lr (the re-ID optimiser)
        self.opt_ea = build_optimizer(self.E_a, o.ea)
        self.opt_gen = make_optimizer([*self.E_s.parameters(), *self.G.parameters()], o.gen)
        self.opt_dis = make_optimizer(self.D.parameters(), o.dis)
        self.sched = {
            name: IterSchedule(
                opt, sec.milestones, sec.gamma, cfg.iterations if sec.schedule == "cosine" else None
            )
            for name, opt, sec in (
                ("E_a", self.opt_ea, o.ea), ("gen", self.opt_gen, o.gen), ("D", self.opt_dis, o.dis)
            )
        }  # fmt: skip
        fp16 = amp == torch.float16
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=fp16)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=fp16)
        self.finite = finite or (lambda what, loss: float(loss.detach()))
        self.gen_params = [*self.E_a.parameters(), *self.E_s.parameters(), *self.G.parameters()]

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.amp)

    def weights(self, iteration: int) -> tuple[float, float]:
        """(lambda_prim, lambda_fine) at a 0-based iteration."""
        L = self.cfg.loss
        r = ramp(iteration, L.start, L.warmup)
        return L.prim * r, L.fine * r

    def d_step(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
        """One update of D: LSGAN on the (detached) fakes and the reals, plus R1 on the reals."""
        gp = self.cfg.loss.gp
        real = real.detach().requires_grad_(gp > 0)
        with self.autocast():
            out_fake, out_real = self.D(fake.detach()), self.D(real)
        adv = lsgan_d_loss(out_fake, out_real)
        loss, stats = adv, {"d/adv": float(adv.detach())}
        if gp > 0:
            scale = float(self.scaler_d.get_scale()) if self.scaler_d.is_enabled() else 1.0
            penalty = r1_penalty(out_real, real, scale)
            loss = loss + gp * penalty
            stats["d/gp"] = float(penalty.detach())
        stats["loss/d"] = self.finite("discriminator loss", loss)
        self.opt_dis.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss).backward()
        average_gradients(list(self.D.parameters()))
        self.scaler_d.step(self.opt_dis)
        self.scaler_d.update()
        self.sched["D"].step()
        return stats

    def erased(self, x: torch.Tensor, xp: torch.Tensor, iteration: int) -> torch.Tensor:
        """Copies of anchors and positives (stacked) with random erasing boxes drawn from this
        iteration's and process's generator: what the identity losses see."""
        both = torch.cat([x, xp])
        g = iteration_generator(self.cfg.seed, iteration, STREAM_ERASING + self.rank)
        boxes = erasing_boxes(
            both.shape[0], both.shape[-2:], self.cfg.loss.erasing_p, ERASING_AREA,
            ERASING_MIN_ASPECT, g,
        )  # fmt: skip
        return erase_(both, boxes)

    def identity_losses(
        self,
        x: torch.Tensor,
        xp: torch.Tensor,
        y: torch.Tensor,
        iteration: int,
        seen: tuple[Appearance, Appearance],
    ) -> dict[str, torch.Tensor]:
        """L_id^s on anchors and positives, and the fine-grained head's cross-entropy on the
        anchors when its weight fine_real x lambda_fine is above 0; ``seen`` is E_a's output
        on the unerased images, used as it is when loss.erasing_p is 0 (no extra pass)."""
        L = self.cfg.loss
        app, app_pos = seen
        if L.erasing_p > 0:
            x_er, xp_er = self.erased(x, xp, iteration).chunk(2)
            app, app_pos = self.E_a(x_er), self.E_a(xp_er)
        prim = F.cross_entropy(app.prim.float(), y) + F.cross_entropy(app_pos.prim.float(), y)
        parts = {"id": prim / 2}
        if L.fine_real * self.weights(iteration)[1] > 0:
            parts["fine_real"] = F.cross_entropy(app.fine.float(), y)
        return parts

    def forward(
        self, x: torch.Tensor, xp: torch.Tensor, y: torch.Tensor, iteration: int
    ) -> Forward:
        """Encode anchors (x), positives (xp) and the anchors' structure, decode the self,
        same-identity and cross-identity images x_j^i = G(a_i, s_j) (j = i + P/2 mod P:
        another identity, as every batch holds distinct identities)."""
        P = x.shape[0]
        donor = swap_partners(P, x.device)
        L = self.cfg.loss
        with self.autocast():
            app, app_pos = self.E_a(x), self.E_a(xp)
            s = self.E_s(x)
            a, a_pos = app.code, app_pos.code
            if L.detach_appearance:
                a, a_pos = a.detach(), a_pos.detach()
            x_self, x_pos, x_cross = self.G(a, s), self.G(a_pos, s), self.G(a, s[donor])
            parts = {"img1": l1(x_self, x), "img2": l1(x_pos, x)}
            parts.update(self.identity_losses(x, xp, y, iteration, (app, app_pos)))
        g = iteration_generator(self.cfg.seed, iteration, STREAM_ENCODER)
        again = bool(torch.rand((), generator=g) < L.encoder_again)
        return Forward(parts, a, s, donor, x_cross, *self.weights(iteration), again)

    def structure_code_loss(self, fwd: Forward) -> torch.Tensor:
        """L_code_s against the donor's (detached) code: the live E_s on the detached image
        (trains E_s only) or a frozen E_s on the live image (trains what made the image)."""
        target = fwd.s[fwd.donor].detach()
        if fwd.encoder_again:
            return l1(self.E_s(fwd.x_cross.detach()), target)
        return l1(frozen_call(self.E_s, fwd.x_cross), target)

    def g_step(self, fwd: Forward, y: torch.Tensor) -> dict[str, float]:
        """One joint update of E_a and E_s + G on the weighted sum of Eq. 10 (plus the fine
        head's real-label term, loss.fine_real x lambda_fine)."""
        L, parts, x_cross = self.cfg.loss, fwd.parts, fwd.x_cross
        self.D.requires_grad_(False)
        try:
            with self.autocast():
                if L.live_appearance_reader:
                    rec = self.E_a(x_cross)
                    parts["code_a"] = l1(rec.code, fwd.a)
                else:
                    rec = frozen_call(self.E_a, x_cross)  # trains G (and its inputs), not E_a
                    parts["code_a"] = l1(rec.code, fwd.a.detach())
                parts["code_s"] = self.structure_code_loss(fwd)
                parts["id_cross"] = F.cross_entropy(rec.prim.float(), y)
                parts["adv"] = lsgan_g_loss(self.D(x_cross))
                if fwd.lam_prim > 0 or fwd.lam_fine > 0:
                    fed = x_cross.detach()  # online feeding trains E_a, not G (released code)
                    out = self.E_a(fed)
                    if fwd.lam_prim > 0:
                        if self.teacher is None:
                            raise TrainingError("loss.prim > 0 needs a teacher")
                        parts["prim"] = kl_to_teacher(out.prim, self.teacher.soft_labels(fed))
                    if fwd.lam_fine > 0:
                        parts["fine"] = F.cross_entropy(out.fine.float(), y[fwd.donor])
        finally:
            self.D.requires_grad_(True)
        weight = {
            "img1": L.img, "img2": L.img, "code_a": L.code_a, "code_s": L.code_s, "id": L.id,
            "id_cross": L.id_cross, "adv": L.adv, "prim": fwd.lam_prim, "fine": fwd.lam_fine,
            "fine_real": L.fine_real * fwd.lam_fine,
        }  # fmt: skip
        total = sum(weight[k] * v for k, v in parts.items())
        value = self.finite("generator loss", total)
        self.opt_ea.zero_grad(set_to_none=True)
        self.opt_gen.zero_grad(set_to_none=True)
        self.scaler_g.scale(total).backward()
        average_gradients(self.gen_params)
        self.scaler_g.step(self.opt_ea)
        self.scaler_g.step(self.opt_gen)
        self.scaler_g.update()
        self.sched["E_a"].step()
        self.sched["gen"].step()
        out = {"loss/g": value, **{f"g/{k}": float(v.detach()) for k, v in parts.items()}}
        out["lambda_prim"] = fwd.lam_prim
        return out

    def iteration(
        self, x: torch.Tensor, xp: torch.Tensor, y: torch.Tensor, iteration: int
    ) -> dict[str, float]:
        """One DG-Net iteration: forward, one D step on the current fakes, one joint step."""
        for net in (self.E_a, self.E_s, self.G, self.D):
            net.train()
        fwd = self.forward(x, xp, y, iteration)
        stats = self.d_step(x, fwd.x_cross)
        return {**stats, **self.g_step(fwd, y)}


class DGNetTask(Task):
    """DG-Net on the training identities of ``data``; the test model is E_a's two heads."""

    name = "dgnet"
    config_class = DGNetConfig
    stage = "dgnet"
    nan_advice = NAN_ADVICE
    reproduce_overrides = "dgnet_overrides"

    def __init__(self, cfg: DGNetConfig) -> None:
        super().__init__(cfg)
        self.cfg: DGNetConfig = cfg
        self.teacher_id: dict[str, str] = {}
        self.swaps: dict[str, Any] = {}  # the last swap measures (transfer, generated)

    @classmethod
    def train(
        cls,
        cfg: DGNetConfig,
        out: str | Path,
        resume: bool | Literal["auto"] = False,
        hooks: Sequence[Hook] = (),
    ) -> dict[str, Any]:
        """Run (or resume) a run, stretched to ``train.min_passes`` over its training images
        first; the run's config.yaml records the stretched schedule."""
        if cfg.train.min_passes:
            images = len(load_training_data(cfg, uses_generated=False)[1])
            stretched = passes_floor(cfg, images)
            if stretched is not cfg:
                print(
                    f"train.min_passes={cfg.train.min_passes:g}: {images} training images -> "
                    f"{stretched.iterations} iterations (epochs {cfg.train.epochs} -> "
                    f"{stretched.train.epochs}; loss.start, loss.warmup, milestones x "
                    f"{stretched.train.epochs / cfg.train.epochs:.3g})",
                    flush=True,
                )
            cfg = stretched
        return Loop(cls(cfg), out, resume, hooks=hooks).run()

    # ------------------------------------------------------------------ set-up
    def setup(self, loop: Loop) -> None:
        cfg, d = self.cfg, self.cfg.data
        self.loop = loop
        self.ds, self.records, self.label_map = load_training_data(cfg, uses_generated=False)
        K = len(self.label_map)
        teacher = None
        if cfg.loss.prim > 0:
            if not cfg.teacher:
                raise ConfigError(
                    "teacher: loss.prim > 0 needs a teacher, a finished re-ID run on the same "
                    "data (e.g. `genreid train --config tiny data.root=... --out RUN`), given "
                    "as teacher=RUN; or set loss.prim=0"
                )
            teacher, self.teacher_id = load_teacher(cfg, K, loop.device)
        self.steps = steps = DGNetSteps(
            cfg, K, loop.device, teacher, loop.amp, loop.finite, rank=loop.dist.rank
        )
        for name in ("E_a", "E_s", "G", "D"):
            loop.module(name, getattr(steps, name), ddp_wrap=False)
        loop.optimizer("E_a", steps.opt_ea)
        loop.optimizer("gen", steps.opt_gen)
        loop.optimizer("D", steps.opt_dis)
        for name, sched in steps.sched.items():
            loop.scheduler(name, sched)
        steps.scaler_g, steps.scaler_d = loop.scaler("scaler_g"), loop.scaler("scaler_d")
        pipeline = train_transform(d)
        cache = d.cache == "on" or (d.cache == "auto" and cache_fits(self.records, pipeline))
        self.train_set = ImageDataset(self.records, pipeline, self.label_map, cache=cache)
        self.sampler = PairBatchSampler(
            self.train_set.labels, cfg.train.pairs, cfg.train.epoch_iters, seed=cfg.seed,
            rank=loop.dist.rank, world_size=loop.dist.world_size,
        )  # fmt: skip
        self.loader = DataLoader(
            self.train_set.batched(),
            batch_sampler=self.sampler,
            collate_fn=self.train_set.collate,
            num_workers=d.workers,
            pin_memory=loop.device.type == "cuda",
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        self.sheet_images = self._sheet_images()

    def _sheet_images(self) -> torch.Tensor | None:
        """The first image of each of the first ``grid_images`` identities (test transform)."""
        n = self.cfg.train.grid_images
        firsts: dict[int, int] = {}
        for i, y in enumerate(self.train_set.labels):
            firsts.setdefault(y, i)
        chosen = [firsts[y] for y in sorted(firsts)[:n]]
        data = ImageDataset([self.records[i] for i in chosen], test_transform(self.cfg.data.size))
        return torch.stack([data[k]["image"] for k in range(len(data))]) if chosen else None

    # ------------------------------------------------------------------ data
    def epoch_length(self, epoch: int) -> int:
        return self.cfg.train.epoch_iters

    def batches(self, epoch: int, start: int) -> DataLoader:
        self.sampler.set_epoch(epoch, start)
        return self.loader

    # ------------------------------------------------------------------ training
    def step(self, batch: dict[str, Any], at: StepInfo) -> dict[str, float]:
        dev = self.loop.device
        images = self.loop.images(batch["image"])
        P = images.shape[0] // 2
        y = batch["label"][:P].to(dev)
        return self.steps.iteration(images[:P], images[P:], y, at.step)

    @torch.no_grad()
    def sample_sheet(self) -> Image.Image | None:
        """The swap sheet of the fixed images (eval mode: no RNG or statistics side effects)."""
        if self.sheet_images is None:
            return None
        nets = self.steps.nets
        was = {n: m.training for n, m in nets.named_children()}
        nets.eval()
        try:
            x = self.sheet_images.to(self.loop.device)
            n = x.shape[0]
            code, s = self.steps.E_a(x).code, self.steps.E_s(x)
            rows = [self.steps.G(code[i : i + 1].expand(n, -1, -1, -1), s) for i in range(n)]
            swapped = torch.stack(rows)  # appearance i x structure j
        finally:
            for name, mode in was.items():
                getattr(nets, name).train(mode)
        return swap_sheet(unit(x), unit(x), unit(swapped.flatten(0, 1)).unflatten(0, (n, n)))

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        sheet = self.sample_sheet()
        if sheet is not None and self.loop.is_main:
            path = self.loop.rundir.figures / f"swap_{epoch + 1:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            sheet.save(path)
            tb = self.loop.rundir.tensorboard()
            tb.add_image("swap", to_tensor(sheet), self.loop.step)
            tb.flush()
        return {
            "lr_ea": self.steps.sched["E_a"].lr(),
            "lr_gen": self.steps.sched["gen"].lr(),
            "lr_d": self.steps.sched["D"].lr(),
            "iteration": self.loop.step,
        }

    def test_model(self) -> DGNetReID:
        m = self.cfg.model
        return DGNetReID(self.steps.E_a, m.feature, m.beta)

    def measure_swaps(self) -> dict[str, float]:
        """The appearance-transfer rate and the swaps' measures (eval mode, own RNG), judged
        by the teacher when the run has one, else by E_a's test feature."""
        nets = self.steps.nets
        was = {n: m.training for n, m in nets.named_children()}
        nets.eval()
        teacher = self.steps.teacher
        if teacher is not None:
            judge, name = reid_judge(teacher.model, teacher.size), f"teacher {self.cfg.teacher}"
        else:
            judge, name = reid_judge(self.test_model(), self.cfg.data.size), "the run's own E_a"
        try:
            with torch.random.fork_rng(devices=[]):
                self.swaps = swap_quality(
                    self.steps.E_a, self.steps.E_s, self.steps.G, self.records,
                    self.cfg.data.size, judge, name, self.cfg.measure, self.loop.device,
                )  # fmt: skip
        finally:
            for n, mode in was.items():
                getattr(nets, n).train(mode)
        t, g = self.swaps["transfer"], self.swaps.get("generated", {})
        out = {"swap/appearance": t["appearance"], "swap/structure": t["structure"]}
        return out | {f"gen/{k}": g[k] for k in ("frechet", "kid", "precision", "recall") if k in g}

    def evaluate(self) -> dict[str, float]:
        swaps = {}
        if self.cfg.measure.enabled and self.loop.is_main:
            swaps = self.measure_swaps()
        if not self.ds.query or not self.ds.gallery:
            return swaps
        metrics: dict[str, float] = {}
        if self.loop.is_main:
            e = self.cfg.eval
            metrics, _, _ = evaluate_model(
                self.test_model(), self.ds, self.cfg.data.size, e.metric, e.flip, e.batch_size,
                self.loop.device,
            )  # fmt: skip
        barrier()
        return {**metrics, **swaps}

    # ------------------------------------------------------------------ records
    def meta(self) -> dict[str, Any]:
        return {
            "arch": "dgnet",
            "num_classes": len(self.label_map),
            "code_dim": self.steps.E_a.code_dim,
            "teacher": dict(self.teacher_id),
        }

    def check_checkpoint(self, meta: dict[str, Any], path: Path) -> None:
        if int(meta.get("num_classes", -1)) != len(self.label_map):
            raise TrainingError(
                f"{path} has {meta.get('num_classes')} classes, this data {len(self.label_map)}: "
                "resume with the run's config and data"
            )
        saved = meta.get("teacher", {}).get("sha256")
        if saved and self.teacher_id and saved != self.teacher_id["sha256"]:
            raise TrainingError(
                f"the teacher {self.teacher_id['run']} changed since {path} was written (its "
                "checkpoint's sha256 differs); resume with the teacher the run started with"
            )

    def results(self) -> dict[str, Any]:
        return {
            "num_classes": len(getattr(self, "label_map", {})),
            "train_images": len(getattr(self, "records", [])),
            "iterations": self.loop.step if hasattr(self, "loop") else 0,
            "teacher": dict(self.teacher_id),
            **self.swaps,
        }
