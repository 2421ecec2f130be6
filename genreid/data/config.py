"""The ``data`` config sections: where images come from, their size, how they are augmented.

The keys every stage shares (``dataset``, ``root``, ``options``, ``height``, ``width``,
``flip``, ``workers``) live in :class:`ImageSourceConfig`; re-ID training adds generated
images, augmentation and batch sampling (:class:`DataConfig`), GAN training the cluster file
(:class:`GanDataConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from genreid.core.errors import ConfigError, RegistryError
from genreid.data.datasets import DATASETS


@dataclass
class ImageSourceConfig:
    """A dataset at ``root`` and the size its images are brought to."""

    dataset: str = "market1501"
    root: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # parser options, e.g. {split: 0}
    height: int = 256
    width: int = 128
    flip: bool = True  # random horizontal flip in training
    workers: int = 0  # DataLoader worker processes (0: load in the training process)
    # Decode and resize the training images once into memory (uint8): "auto" when they take
    # at most a quarter of the free memory, "on", or "off" (decode every image every epoch).
    cache: Literal["auto", "on", "off"] = "auto"

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    def check(self) -> None:
        try:
            DATASETS.key(self.dataset)
        except RegistryError as exc:
            raise ConfigError(f"data.dataset: {exc}") from None
        if self.height < 4 or self.width < 4:
            raise ConfigError(
                f"data.height/data.width: expected at least 4 pixels, got {self.height}x"
                f"{self.width}"
            )
        if self.workers < 0:
            raise ConfigError(f"data.workers: expected 0 or more, got {self.workers}")

    def require_root(self) -> str:
        """``root``, or a ConfigError saying to set it."""
        if not self.root:
            raise ConfigError(
                "data.root is empty; give the dataset folder, e.g. data.root=/data/Market-1501"
            )
        return self.root


@dataclass
class DataConfig(ImageSourceConfig):
    """Re-ID training data: real images, generated images, augmentation and batching."""

    generated: str | None = None  # folder with manifest.csv
    max_generated: int | None = None  # a seeded subset of N, stratified by cluster (LSRO Table 2)
    # FAPL Table IV: identities with 8 or more images keep this fraction of them (seeded),
    # the others all; 1, 1/2 or 1/3 (any fraction in (0, 1] works)
    label_fraction: float | str = 1.0
    # train: the training split; all: every identity of every split trains (pretraining on
    # synthetic pedestrians; nothing is left to evaluate on)
    train_splits: Literal["train", "all"] = "train"
    resize: list[int] = field(default_factory=list)  # [h, w] before the random crop
    pad: int = 0
    erasing_p: float = 0.0
    erasing_area: list[float] = field(default_factory=lambda: [0.02, 0.4])
    erasing_min_aspect: float = 0.3
    sampler: Literal["random", "pk"] = "random"
    pk_instances: int = 4
    gen_batch_share: float | None = None

    def check(self) -> None:
        super().check()
        if self.resize and len(self.resize) != 2:
            raise ConfigError(f"data.resize: expected [] or [height, width], got {self.resize}")
        if self.pad < 0:
            raise ConfigError(f"data.pad: expected 0 or more pixels, got {self.pad}")
        if not 0 <= self.erasing_p <= 1:
            raise ConfigError(f"data.erasing_p: expected a probability, got {self.erasing_p}")
        lo, hi = (self.erasing_area + [0, 0])[:2]
        if len(self.erasing_area) != 2 or not 0 < lo <= hi < 1:
            raise ConfigError(
                f"data.erasing_area: expected [min, max] with 0 < min <= max < 1, got "
                f"{self.erasing_area}"
            )
        if not 0 < self.erasing_min_aspect <= 1:
            raise ConfigError(
                f"data.erasing_min_aspect: expected a value in (0, 1], got "
                f"{self.erasing_min_aspect}"
            )
        if self.gen_batch_share is not None and not 0 <= self.gen_batch_share < 1:
            raise ConfigError(f"data.gen_batch_share: expected [0, 1), got {self.gen_batch_share}")
        if self.pk_instances < 1:
            raise ConfigError(f"data.pk_instances: expected 1 or more, got {self.pk_instances}")
        if self.max_generated is not None and self.max_generated < 0:
            raise ConfigError(f"data.max_generated: expected >= 0, got {self.max_generated}")
        self.label_fraction_value()

    def label_fraction_value(self) -> float:
        """``label_fraction`` as a number (it may be written 1/2 or 1/3)."""
        try:
            f = float(Fraction(str(self.label_fraction)))
        except (ValueError, ZeroDivisionError):
            f = -1.0
        if not 0 < f <= 1:
            raise ConfigError(
                f"data.label_fraction: expected a fraction in (0, 1] such as 1/2, got "
                f"{self.label_fraction!r}"
            )
        return f


@dataclass
class GanDataConfig(ImageSourceConfig):
    """The real training images a GAN learns from (never query or gallery)."""

    height: int = 128
    width: int = 64
    clusters: str | None = None  # CSV path,cluster: train one GAN per cluster (SLSR)
