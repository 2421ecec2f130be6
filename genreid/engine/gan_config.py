"""GAN training config (``genreid gan train``): data, model and optimisation sections.

Fields left ``null`` take the paper default of the chosen ``model.arch`` (METHODS §5), so
``model.arch=wgangp`` on a DCGAN config also switches noise size, lr, betas and steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from genreid.config import ConfigError

ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "dcgan": {"z_dim": 100, "depth": 4, "lr": 2e-4, "betas": [0.5, 0.999], "g_steps": 2},
    "wgangp": {"z_dim": 128, "depth": 5, "lr": 1e-4, "betas": [0.0, 0.9], "g_steps": 1},
}


@dataclass
class GanDataConfig:
    """Where the real training images come from and how they are shaped."""

    dataset: str = "market1501"
    root: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # parser options, e.g. {split: 0}
    clusters: str | None = None  # CSV path,cluster: train one GAN per cluster
    size: list[int] = field(default_factory=lambda: [128, 64])  # [height, width]
    flip: bool = True
    num_workers: int = 0


@dataclass
class GanModelConfig:
    """Which generator/discriminator pair and how big."""

    arch: Literal["dcgan", "wgangp"] = "dcgan"
    z_dim: int | None = None  # dcgan 100, wgangp 128
    width: int = 64  # d: channels of the last generator layer / first critic layer
    depth: int | None = None  # stride-2 stages: dcgan 4, wgangp 5; start map = size / 2^depth
    kernel: int = 5  # DCGAN (de)convolution size


@dataclass
class GanTrainConfig:
    """Optimisation, schedule, logging and stability guards."""

    epochs: int = 30
    batch_size: int = 64
    lr: float | None = None  # dcgan 2e-4, wgangp 1e-4
    betas: list[float] | None = None  # dcgan [0.5, 0.999], wgangp [0.0, 0.9]
    d_steps: int = 1  # DCGAN: discriminator updates per iteration (one real batch each)
    g_steps: int | None = None  # generator updates per iteration: dcgan 2, wgangp 1
    critic_steps: int = 5  # WGAN-GP: critic updates per generator update
    gp_weight: float = 10.0
    max_iters: int | None = None  # stop after this many iterations (tests, smoke runs)
    device: str = "auto"  # auto, cpu, cuda, cuda:1
    log_every: int = 10  # iterations between metrics.jsonl records
    checkpoint_every: int = 0  # iterations between mid-epoch checkpoints (0: epoch ends only)
    grid_size: int = 16  # images in the per-epoch sample grid
    progress: bool = True  # tqdm bar with ETA on stderr
    collapse_patience: int = 200  # consecutive bad iterations before stopping
    collapse_loss: float = 1e-3  # DCGAN: D loss below this with D(real)>0.99, D(fake)<0.01
    max_critic_gap: float = 1e3  # WGAN-GP: |E D(real) - E D(fake)| above this is divergence


@dataclass
class GanConfig:
    """Everything ``genreid gan train`` needs."""

    seed: int = 0
    data: GanDataConfig = field(default_factory=GanDataConfig)
    model: GanModelConfig = field(default_factory=GanModelConfig)
    train: GanTrainConfig = field(default_factory=GanTrainConfig)


def resolve(cfg: GanConfig) -> GanConfig:
    """A copy with the architecture's defaults filled in and every value checked."""
    cfg = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data),
        model=dataclasses.replace(cfg.model),
        train=dataclasses.replace(cfg.train),
    )
    d = ARCH_DEFAULTS[cfg.model.arch]
    if cfg.model.z_dim is None:
        cfg.model.z_dim = d["z_dim"]
    if cfg.model.depth is None:
        cfg.model.depth = d["depth"]
    if cfg.train.lr is None:
        cfg.train.lr = d["lr"]
    if cfg.train.g_steps is None:
        cfg.train.g_steps = d["g_steps"]
    if cfg.train.betas is None:
        cfg.train.betas = list(d["betas"])
    check(cfg)
    return cfg


def check(cfg: GanConfig) -> None:
    """Raise ConfigError naming the key and a valid value for anything out of range."""
    if len(cfg.data.size) != 2 or min(cfg.data.size) < 4:
        raise ConfigError(
            f"data.size: expected [height, width] such as [128, 64], got {cfg.data.size}"
        )
    if not cfg.data.root:
        raise ConfigError(
            "data.root is empty; pass the dataset folder, e.g. data.root=/data/Market"
        )
    positive = {
        "train.epochs": cfg.train.epochs,
        "train.batch_size": cfg.train.batch_size,
        "train.d_steps": cfg.train.d_steps,
        "train.g_steps": cfg.train.g_steps,
        "train.critic_steps": cfg.train.critic_steps,
        "train.log_every": cfg.train.log_every,
        "train.collapse_patience": cfg.train.collapse_patience,
        "model.width": cfg.model.width,
        "model.z_dim": cfg.model.z_dim,
        "model.depth": cfg.model.depth,
    }
    for key, value in positive.items():
        if value is None or value < 1:
            raise ConfigError(f"{key}: expected an integer >= 1, got {value}")
    if cfg.train.max_iters is not None and cfg.train.max_iters < 1:
        raise ConfigError(f"train.max_iters: expected >= 1 or null, got {cfg.train.max_iters}")
    if not cfg.train.lr or cfg.train.lr <= 0:
        raise ConfigError(f"train.lr: expected a positive learning rate, got {cfg.train.lr}")
    if len(cfg.train.betas) != 2 or not all(0 <= b < 1 for b in cfg.train.betas):
        raise ConfigError(f"train.betas: expected two values in [0, 1), got {cfg.train.betas}")
    if cfg.model.kernel % 2 == 0:
        raise ConfigError(f"model.kernel: expected an odd size such as 5, got {cfg.model.kernel}")
    h, w = cfg.data.size
    f = 2**cfg.model.depth
    if h % f or w % f:
        raise ConfigError(
            f"data.size {h}x{w} cannot be reached with model.depth={cfg.model.depth}: both sides "
            f"must be multiples of 2^depth = {f}. Use e.g. data.size=[128,64] or a lower depth."
        )


def d_steps_per_iter(cfg: GanConfig) -> int:
    """Discriminator updates per iteration: d_steps (DCGAN) or critic_steps (WGAN-GP)."""
    return cfg.train.critic_steps if cfg.model.arch == "wgangp" else cfg.train.d_steps
