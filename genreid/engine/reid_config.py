"""The re-ID training config (``genreid train``): data, model, labels, optim, train, eval."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class DataConfig:
    """Where the images come from and how they are augmented and batched."""

    dataset: str = "market1501"
    root: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # parser options, e.g. split
    generated: str | None = None  # folder with manifest.csv
    max_generated: int | None = None  # use the first N generated images (LSRO Table 2 sweep)
    height: int = 256
    width: int = 128
    resize: list[int] = field(default_factory=list)  # [h, w] before the random crop
    pad: int = 0
    flip: bool = True
    erasing_p: float = 0.0
    erasing_area: list[float] = field(default_factory=lambda: [0.02, 0.4])
    erasing_min_aspect: float = 0.3
    sampler: Literal["random", "pk"] = "random"
    pk_instances: int = 4
    gen_batch_share: float | None = None
    workers: int = 0


@dataclass
class ModelConfig:
    """``arch``: ide, bottleneck, ide_tiny, bottleneck_tiny; empty/0 fields take its defaults."""

    arch: str = "ide"
    backbone: str = ""
    width: int = 0
    dropout: float | None = None
    bottleneck_dim: int = 512
    pretrained: str | None = None  # "imagenet" or a state-dict file


@dataclass
class LabelsConfig:
    """Label strategy for generated images and its options (METHODS §2-3)."""

    strategy: str = "baseline"
    gen_start_epoch: int | str = "default"  # int, "auto" (0.4*epochs) or "default"
    gen_weight: float | None = None
    real_smoothing: float = 0.0
    epsilon: float = 0.1
    center_lambda: float | None = None
    center_alpha: float = 0.5
    temperature: float = 1.0
    smprl_from: str | None = None  # a trained baseline run folder
    smprl_targets: str | None = None  # or a ready .npz of fixed targets
    clusters: str | None = None  # slsr: path,cluster CSV of the real training images


@dataclass
class OptimConfig:
    """Optimizer and lr schedule; new layers (the head) get ``head_lr_mult`` x lr."""

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


@dataclass
class TrainConfig:
    """Loop settings."""

    epochs: int = 50
    batch_size: int = 64  # per process
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    device: str = "auto"
    eval_every: int = 0  # epochs; 0 = only at the end
    progress: bool = True
    keep_checkpoints: bool = False  # also keep checkpoints/epoch_NNN.pt
    max_iters: int | None = None  # cap iterations per epoch (benchmarks, smoke tests)
    threads: int | None = None  # torch CPU threads


@dataclass
class EvalConfig:
    """Evaluation with flip-averaged, L2-normalised features."""

    metric: Literal["cosine", "euclidean"] = "cosine"
    flip: bool = True
    batch_size: int = 128


@dataclass
class ReIDTrainConfig:
    """Everything one re-ID training run needs."""

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
