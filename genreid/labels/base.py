"""The label-strategy interface, its registry, and the one soft cross-entropy loss.

A strategy turns a batch (logits, features, label indices with -1 for generated images,
generated flags, cluster ids, epoch) into a target distribution ``q`` (B x C) and a per-image
weight ``w`` (B), plus optionally an auxiliary loss (FAPL's center term). Every method then
trains with :func:`soft_cross_entropy`.

Loss normalisation: ``L = sum_i w_i * (-sum_k q_ik log p_ik) / n`` with ``n`` the number of
images whose weight is non-zero. With all weights 1 this is the batch mean that LSRO's Eq. 7
averages. A generated image of weight 0.1 (pseudo_label, dmprl2) counts 0.1 in the numerator
and 1 in the denominator, as in the released MatConvNet code, so when generated images join
(``gen_start_epoch``) the real images' share of the loss shrinks and the logged loss drops;
images switched off (weight 0) do not count at all. The training task therefore also logs
the mean loss of the real and of the generated images apart (``loss/real``,
``loss/generated``). FAPL's center loss uses the same ``n`` (:meth:`LabelStrategy.forward`), so
``lambda`` keeps the meaning of the paper's Eq. 13 (both terms summed over the batch) at any
batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from genreid.core.errors import ConfigError
from genreid.data.records import ImageRecord
from genreid.labels.center import CenterLoss, CenterWeight
from genreid.labels.config import LabelsConfig, StrategyOptions
from genreid.labels.registry import STRATEGIES

__all__ = [
    "STRATEGIES", "LabelBatch", "LabelStrategy", "LabelTargets", "TrainingSet",
    "build_strategy", "labeled_cross_entropy", "soft_cross_entropy", "strategy_class",
]  # fmt: skip


@dataclass
class TrainingSet:
    """What a strategy may read once the data is known (``LabelStrategy.prepare``)."""

    records: list[ImageRecord]  # real first, then generated; positions are batch indices
    label_map: dict[int, int]  # dataset pid -> class index
    root: str | None = None  # the dataset folder (cluster manifests may be relative to it)
    run_dir: Path | None = None  # the training run folder, for files a strategy derives
    device: torch.device = torch.device("cpu")


@dataclass
class LabelBatch:
    """What a strategy sees of one mini-batch."""

    logits: torch.Tensor
    features: torch.Tensor
    labels: torch.Tensor  # label index 0..K-1, -1 for generated images
    generated: torch.Tensor  # bool
    clusters: torch.Tensor  # cluster id, -1 if none
    epoch: int  # 0-based
    index: torch.Tensor | None = None  # position in the training set


@dataclass
class LabelTargets:
    """Target distribution (B x C), per-image weight (B) and an optional auxiliary loss."""

    q: torch.Tensor
    weight: torch.Tensor
    aux_loss: torch.Tensor | None = None


def cross_entropy_per_image(logits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``-sum_k q_k log softmax(logits)_k`` of every image (B)."""
    return -(q * torch.log_softmax(logits.float(), dim=1)).sum(dim=1)


def used_images(weight: torch.Tensor) -> torch.Tensor:
    """The loss denominator: images with a non-zero weight (at least 1)."""
    return (weight > 0).sum().clamp(min=1)


def weighted_mean(per_image: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i * loss_i / #(w_i > 0)`` (0 when every weight is 0)."""
    return (weight * per_image).sum() / used_images(weight)


def soft_cross_entropy(logits: torch.Tensor, q: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i * CE(q_i, softmax(logits_i)) / #(w_i > 0)`` (0 when every weight is 0)."""
    return weighted_mean(cross_entropy_per_image(logits, q), weight)


def labeled_cross_entropy(
    logits: torch.Tensor, q: torch.Tensor, labeled: torch.Tensor, n: torch.Tensor | int
) -> torch.Tensor:
    """The labeled images' share of the batch loss: Σ_{labeled} CE_i / n (n: the loss's
    image count). FAPL's center term is compared with it: generated images' soft targets keep
    their own cross-entropy near ln K, which says nothing about the labeled features."""
    return (cross_entropy_per_image(logits, q) * labeled.float()).sum() / n


def resolve_gen_start(value: int | str, default_auto: bool, epochs: int) -> int:
    """``gen_start_epoch``: an int, ``auto`` (round(0.4*epochs)) or ``default`` (per strategy)."""
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"labels.gen_start_epoch must be >= 0, got {value}")
        return value
    if value == "auto" or (value == "default" and default_auto):
        return round(0.4 * epochs)
    if value == "default":
        return 0
    raise ConfigError(f"labels.gen_start_epoch: expected an integer or 'auto', got {value!r}")


class LabelStrategy(nn.Module):
    """Base strategy: real images get one-hot targets (optionally smoothed); subclasses fill
    in the generated images' targets. State (e.g. FAPL centers) lives in buffers; the shared
    keys are read from the ``labels`` config section (``self.cfg``), a strategy's own from
    ``labels.options`` (``self.options``, of the class's ``Options`` dataclass)."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions
    uses_generated: ClassVar[bool] = True
    default_gen_weight: ClassVar[float] = 1.0
    delayed_by_default: ClassVar[bool] = False  # gen_start_epoch 'default' means 'auto'
    extra_class: ClassVar[bool] = False
    default_center_lambda: ClassVar[float | str] = 0.0  # fapl: "auto"

    def __init__(
        self,
        num_classes: int,
        cfg: LabelsConfig | None = None,
        feat_dim: int = 0,
        epochs: int = 50,
    ) -> None:
        super().__init__()
        self.cfg = cfg or LabelsConfig(strategy=self.name)
        if type(self.cfg.options) is not self.Options:  # exactly, as LabelsConfig.check
            raise ConfigError(
                f"labels.options: {type(self.cfg.options).__qualname__} given to strategy "
                f"{self.name}, whose options are {self.Options.__qualname__}"
            )
        self.options = self.cfg.options
        self.num_classes = num_classes
        self.num_outputs = num_classes + 1 if self.extra_class else num_classes
        self.feat_dim = feat_dim
        self.gen_start_epoch = resolve_gen_start(
            self.cfg.gen_start_epoch, self.delayed_by_default, epochs
        )
        gw = self.cfg.gen_weight
        self.gen_weight = self.default_gen_weight if gw is None else gw
        self.center: CenterLoss | None = None
        self.center_weight: CenterWeight | None = None
        lam = self.center_lambda
        if lam == "auto" or float(lam) > 0:
            self.center = self.make_centers()
            c = self.cfg
            literal = None if lam == "auto" else float(lam)
            self.center_weight = CenterWeight(literal, c.center_ratio, c.center_calibration)

    @property
    def center_lambda(self) -> float | str:
        """λ of the center term: ``labels.center_lambda``, else the strategy's default."""
        lam = self.cfg.center_lambda
        return self.default_center_lambda if lam is None else lam

    def make_centers(self) -> CenterLoss:
        c = self.cfg
        return CenterLoss(self.num_classes, self.feat_dim, c.center_alpha, c.center_update)

    def generated_active(self, epoch: int) -> bool:
        """Whether generated images take part at this (0-based) epoch."""
        return self.uses_generated and epoch >= self.gen_start_epoch

    def real_targets(self, labels: torch.Tensor) -> torch.Tensor:
        """One-hot, smoothed by ``real_smoothing`` over the K identities: (1-eps)onehot + eps/K."""
        K = self.num_classes  # all_in_one's extra generated class gets no smoothing mass
        q = torch.zeros(labels.numel(), self.num_outputs, device=labels.device)
        q.scatter_(1, labels.clamp(min=0).view(-1, 1), 1.0)
        eps = self.real_epsilon
        if eps > 0:
            q[:, :K] = q[:, :K] * (1 - eps) + eps / K
        return q

    @property
    def real_epsilon(self) -> float:
        return float(self.cfg.real_smoothing)

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        """Targets of the generated images ``batch.*[mask]`` (n x C)."""
        raise NotImplementedError

    def generated_weight(self) -> float | torch.Tensor:
        """Instance weight of the generated images of the current batch."""
        return self.gen_weight

    def forward(self, batch: LabelBatch) -> LabelTargets:
        gen = batch.generated.bool()
        real = ~gen
        B = gen.numel()
        q = torch.zeros(B, self.num_outputs, device=batch.logits.device)
        weight = torch.zeros(B, device=batch.logits.device)
        if real.any():
            q[real] = self.real_targets(batch.labels[real])
            weight[real] = 1.0
        if gen.any() and self.generated_active(batch.epoch):
            q[gen] = self.generated_targets(batch, gen).to(q.dtype)
            weight[gen] = self.generated_weight()
        aux = None
        if self.center is not None and self.center_weight is not None:
            # lambda * L_C over the same n as the cross-entropy; an auto lambda matches it to
            # the labeled images' share of L_S (the images L_C acts on)
            n = used_images(weight)
            l_c = self.center.loss(batch.features, batch.labels, real) / n
            ce = None
            if self.center_weight.calibrating:
                ce = labeled_cross_entropy(batch.logits.detach(), q, real, n)
            aux = self.center_weight(l_c, ce, batch.epoch)
        return LabelTargets(q.detach(), weight, aux)

    @torch.no_grad()
    def after_step(self, batch: LabelBatch) -> None:
        """Update state after the optimizer step (FAPL centers from the labeled images)."""
        if self.center is not None:
            self.center.update(batch.features.detach(), batch.labels, ~batch.generated.bool())

    @torch.no_grad()
    def end_epoch(self, epoch: int) -> dict[str, float]:
        """State at an epoch's end (centers from the epoch's means, an auto λ fixed) and what
        to log: λ (0 while an auto λ still matches every step)."""
        if self.center is None:
            return {}
        self.center.end_epoch()
        if self.center_weight is None:
            return {}
        self.center_weight.end_epoch(epoch)
        return {"center_lambda": float(self.center_weight.value)}

    def prepare(self, data: TrainingSet) -> None:
        """Set-up that needs the data (SLSR clusters, sMpRL targets); runs once per run."""


def strategy_class(name: str) -> type[LabelStrategy]:
    """The strategy class of a name; unknown names list the known ones."""
    return STRATEGIES.get(name)


def build_strategy(
    cfg: LabelsConfig | str, num_classes: int, feat_dim: int = 0, epochs: int = 50
) -> LabelStrategy:
    """The strategy ``cfg.strategy`` reading its options from ``cfg`` (or a bare name)."""
    if isinstance(cfg, str):
        cfg = LabelsConfig(strategy=cfg)
    return strategy_class(cfg.strategy)(num_classes, cfg, feat_dim=feat_dim, epochs=epochs)
