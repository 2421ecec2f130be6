"""SGD/Adam with a backbone group and a 10x-lr head group, and per-iteration lr schedules.

Schedules (factor on each group's base lr, evaluated at every iteration ``i``):
``step`` x gamma at each milestone epoch; ``inverse`` (1 + gamma*i)^(-power) (Caffe's "inv",
SLSR); ``cosine`` from 1 to ``min_lr_factor`` over all iterations; ``constant``.
"""

from __future__ import annotations

import math

import torch

from genreid.engine.reid_config import OptimConfig


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Param groups: ``backbone`` at lr, ``head`` (new layers) at lr * head_lr_mult."""
    groups = [
        {"params": model.backbone_parameters(), "lr": cfg.lr, "name": "backbone"},
        {"params": model.head_parameters(), "lr": cfg.lr * cfg.head_lr_mult, "name": "head"},
    ]
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"optim.name: unknown optimizer {cfg.name!r}; expected sgd or adam")


class LRSchedule:
    """Sets every group's lr to base_lr * factor(iteration); state is the iteration count."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: OptimConfig,
                 iters_per_epoch: int, epochs: int) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        self.iters_per_epoch = max(1, iters_per_epoch)
        self.total = max(1, self.iters_per_epoch * epochs)
        self.base = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        for g, b in zip(optimizer.param_groups, self.base, strict=True):
            g["initial_lr"] = b
        self.iteration = 0
        self._apply()

    def factor(self, i: int) -> float:
        c = self.cfg
        if c.schedule == "step":
            epoch = i // self.iters_per_epoch
            return c.gamma ** sum(epoch >= m for m in c.milestones)
        if c.schedule == "inverse":
            return (1 + c.inv_gamma * i) ** (-c.inv_power)
        if c.schedule == "cosine":
            t = min(i / self.total, 1.0)
            return c.min_lr_factor + (1 - c.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))
        if c.schedule == "constant":
            return 1.0
        raise ValueError(f"optim.schedule: unknown schedule {c.schedule!r}")

    def _apply(self) -> None:
        f = self.factor(self.iteration)
        for g, b in zip(self.optimizer.param_groups, self.base, strict=True):
            g["lr"] = b * f

    def step(self) -> None:
        """Advance one iteration."""
        self.iteration += 1
        self._apply()

    def lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, int]:
        return {"iteration": self.iteration}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.iteration = int(state["iteration"])
        self._apply()
