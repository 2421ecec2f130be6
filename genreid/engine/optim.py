"""SGD/Adam with a backbone group and a 10x-lr head group, and per-iteration lr schedules.

Schedules (factor on each group's base lr, updated at every iteration ``i``):
``step`` x gamma at each milestone epoch; ``inverse`` (1 + gamma*i)^(-power) (Caffe's "inv",
SLSR); ``cosine`` from 1 to ``min_lr_factor`` over the epochs; ``constant``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

from genreid.core.errors import ConfigError


@dataclass
class OptimConfig:
    """The ``optim`` section: optimizer and lr schedule; the head gets ``head_lr_mult`` x lr."""

    name: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.002
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: Literal["step", "inverse", "cosine", "constant"] = "step"
    milestones: list[int] = field(default_factory=lambda: [40])  # step: epochs
    gamma: float = 0.1  # step factor
    inv_gamma: float = 0.1  # inverse: lr0 * (1 + inv_gamma * iter) ** -inv_power
    inv_power: float = 0.025
    min_lr_factor: float = 0.0  # cosine floor

    def check(self) -> None:
        if self.lr <= 0 or self.head_lr_mult <= 0:
            raise ConfigError(
                f"optim.lr and optim.head_lr_mult: expected > 0, got {self.lr}, {self.head_lr_mult}"
            )
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ConfigError("optim.weight_decay must be >= 0 and optim.momentum in [0, 1)")
        if not 0 <= self.min_lr_factor <= 1:
            raise ConfigError(f"optim.min_lr_factor: expected [0, 1], got {self.min_lr_factor}")


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Param groups: ``backbone`` at lr, ``head`` (new layers) at lr * head_lr_mult."""
    groups = [
        {"params": model.backbone_parameters(), "lr": cfg.lr, "name": "backbone"},
        {"params": model.head_parameters(), "lr": cfg.lr * cfg.head_lr_mult, "name": "head"},
    ]
    if cfg.name == "sgd":
        return torch.optim.SGD(
            groups,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"optim.name: unknown optimizer {cfg.name!r}; expected sgd or adam")


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
