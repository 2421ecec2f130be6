"""One optimiser config for every optimiser genreid trains with, SGD/Adam built from it (a
re-ID network's with a backbone group and a 10x-lr head group), and per-iteration lr schedules.

:class:`OptimConfig` is re-ID's ``optim`` section, a GAN's ``optim.gen`` and ``optim.dis`` and
DG-Net's ``optim.ea``, ``optim.gen`` and ``optim.dis``; each owner gives its own defaults (a
``field(default_factory=...)``, which partial YAML sections start from) and reads the keys
that apply to it. The learning rate is ``lr`` in every one.

Schedules (factor on each group's base lr, updated at every iteration ``i``):
``step`` x gamma at each milestone epoch; ``inverse`` (1 + gamma*i)^(-power) (Caffe's "inv",
SLSR); ``cosine`` from 1 to ``min_lr_factor`` over the epochs; ``constant``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from genreid.core.errors import ConfigError


@dataclass
class OptimConfig:
    """An optimiser and its lr schedule (re-ID's ``optim``; a GAN's and DG-Net's sections).

    ``lr`` and ``betas`` null: the owner's default (a GAN's architecture fills them in).
    ``head_lr_mult``: the head's lr over the backbone's, for a network with both (re-ID, DG-Net's
    E_a). ``milestones`` count epochs for re-ID and iterations for DG-Net; a GAN trains at a
    constant lr."""

    name: Literal["sgd", "adam"] = "sgd"
    lr: float | None = 0.002
    head_lr_mult: float = 10.0
    momentum: float = 0.9  # sgd
    nesterov: bool = False  # sgd
    betas: list[float] | None = field(default_factory=lambda: [0.9, 0.999])  # adam (torch's)
    weight_decay: float = 5e-4
    schedule: Literal["step", "inverse", "cosine", "constant"] = "step"
    milestones: list[int] = field(default_factory=lambda: [40])  # step: epochs
    gamma: float = 0.1  # step factor
    inv_gamma: float = 0.1  # inverse: lr0 * (1 + inv_gamma * iter) ** -inv_power
    inv_power: float = 0.025
    min_lr_factor: float = 0.0  # cosine floor

    def check(self, key: str = "optim") -> None:
        """Valid values, named at ``key`` (the section's place: optim, optim.gen, ...)."""
        nulls = [f"{key}.{name}" for name in ("lr", "betas") if getattr(self, name) is None]
        if nulls:
            raise ConfigError(f"{' and '.join(nulls)}: expected a value, got null")
        if self.lr <= 0 or self.head_lr_mult <= 0:
            raise ConfigError(
                f"{key}.lr and {key}.head_lr_mult: expected > 0, got {self.lr}, {self.head_lr_mult}"
            )
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ConfigError(f"{key}.weight_decay must be >= 0 and {key}.momentum in [0, 1)")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"{key}.betas: expected two values in [0, 1), got {self.betas}")
        if not 0 <= self.min_lr_factor <= 1:
            raise ConfigError(f"{key}.min_lr_factor: expected [0, 1], got {self.min_lr_factor}")


OPTIM_KEYS = tuple(f.name for f in dataclasses.fields(OptimConfig))  # in the class's order


def check_unread(
    sec: OptimConfig, key: str, default: OptimConfig, read: Iterable[str], owner: str
) -> None:
    """Refuse a value other than ``default``'s (the owner's default section) in a field that
    ``owner`` never reads: it would load, be recorded in config.yaml and change nothing.
    ``read``: the fields it reads whatever ``name`` says (adam adds betas, sgd momentum and
    nesterov)."""
    used = {*read, *(("betas",) if sec.name == "adam" else ("momentum", "nesterov"))}
    for f in dataclasses.fields(OptimConfig):
        value, wanted = getattr(sec, f.name), getattr(default, f.name)
        if f.name not in used and value != wanted:
            raise ConfigError(
                f"{key}.{f.name}: has no effect for {owner} ({key}.name={sec.name}), which "
                f"reads only {', '.join(n for n in OPTIM_KEYS if n in used)}; leave it at "
                f"{wanted!r} (got {value!r})"
            )


def make_optimizer(params: Iterable[Any], cfg: OptimConfig) -> torch.optim.Optimizer:
    """``cfg``'s SGD or Adam over ``params`` (tensors, or param groups with their own lr)."""
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
    if cfg.name == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay
        )
    raise ConfigError(f"optim.name: unknown optimizer {cfg.name!r}; expected sgd or adam")


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Param groups: ``backbone`` at lr, ``head`` (new layers) at lr * head_lr_mult."""
    groups = [
        {"params": model.backbone_parameters(), "lr": cfg.lr, "name": "backbone"},
        {"params": model.head_parameters(), "lr": cfg.lr * cfg.head_lr_mult, "name": "head"},
    ]
    return make_optimizer(groups, cfg)


class LRSchedule:
    """Sets every group's lr to base_lr * factor; state: iterations and epochs done (fractional).

    ``step`` and ``cosine`` follow the epoch progress (so epochs of different lengths, e.g.
    once generated images join, are handled), ``inverse`` the iteration count.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: OptimConfig, epochs: int) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        self.epochs = max(1, epochs)
        self.base = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        for g, b in zip(optimizer.param_groups, self.base, strict=True):
            g["initial_lr"] = b
        self.iteration = 0
        self.progress = 0.0
        self._apply()

    def factor(self, i: int, progress: float) -> float:
        """The lr factor after ``i`` iterations and ``progress`` epochs."""
        c = self.cfg
        if c.schedule == "step":
            epoch = math.floor(progress)
            return c.gamma ** sum(epoch >= m for m in c.milestones)
        if c.schedule == "inverse":
            return (1 + c.inv_gamma * i) ** (-c.inv_power)
        if c.schedule == "cosine":
            t = min(progress / self.epochs, 1.0)
            return c.min_lr_factor + (1 - c.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))
        if c.schedule == "constant":
            return 1.0
        raise ConfigError(f"optim.schedule: unknown schedule {c.schedule!r}")

    def _apply(self) -> None:
        f = self.factor(self.iteration, self.progress)
        for g, b in zip(self.optimizer.param_groups, self.base, strict=True):
            g["lr"] = b * f

    def step(self, progress: float) -> None:
        """Advance one iteration; ``progress`` = epochs done so far (e.g. 2 + 5/10)."""
        self.iteration += 1
        self.progress = float(progress)
        self._apply()

    def lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, float]:
        return {"iteration": self.iteration, "progress": self.progress}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.iteration = int(state["iteration"])
        self.progress = float(state["progress"])
        self._apply()
