"""The ``labels`` config section: the strategy for generated images and its options.

Strategies read this section directly (docs/TRAINING.md, Strategies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genreid.core.errors import ConfigError, RegistryError
from genreid.labels.registry import STRATEGIES


@dataclass
class LabelsConfig:
    """Label strategy for generated images and its options."""

    strategy: str = "baseline"
    gen_start_epoch: int | str = "default"  # int, "auto" (0.4*epochs) or "default"
    gen_weight: float | None = None
    real_smoothing: float = 0.0
    triplet: float = 0.0  # weight of a batch-hard triplet loss on the real images (pk sampler)
    triplet_margin: float = 0.3  # on L2-normalised features; 0: the soft margin
    epsilon: float = 0.1
    # lambda of FAPL's center term: a number, "auto" (set at the first steps so that
    # lambda * L_C / L_S = center_ratio) or null (the strategy's default: fapl auto, others 0)
    center_lambda: float | Literal["auto"] | None = None
    center_ratio: float = 0.03  # validated: docs/RESULTS.md, FAPL's center term
    center_calibration: int = 2  # auto: epochs matched step by step; lambda from the last
    center_alpha: float = 0.5
    center_update: Literal["step", "epoch"] = "step"  # epoch: class means of the last epoch
    temperature: float = 1.0
    smprl_from: str | None = None  # a trained baseline run folder
    smprl_targets: str | None = None  # or a ready .npz of fixed targets
    clusters: str | None = None  # slsr: path,cluster CSV of the real training images
    cluster_ids: Literal["majority", "any"] = "majority"  # slsr: how a cluster's identities form

    def check(self) -> None:
        try:
            STRATEGIES.key(self.strategy)
        except RegistryError as exc:
            raise ConfigError(f"labels.strategy: {exc}") from None
        g = self.gen_start_epoch
        if not (isinstance(g, int) and g >= 0) and g not in ("auto", "default"):
            raise ConfigError(
                f"labels.gen_start_epoch: expected an integer >= 0, 'auto' or 'default', got {g!r}"
            )
        for key in ("real_smoothing", "epsilon"):
            value = getattr(self, key)
            if not 0 <= value < 1:
                raise ConfigError(f"labels.{key}: expected a value in [0, 1), got {value}")
        if self.triplet < 0 or self.triplet_margin < 0:
            raise ConfigError(
                f"labels.triplet and labels.triplet_margin: expected >= 0, got {self.triplet} "
                f"and {self.triplet_margin}"
            )
        if self.gen_weight is not None and self.gen_weight < 0:
            raise ConfigError(f"labels.gen_weight: expected >= 0, got {self.gen_weight}")
        lam = self.center_lambda
        if lam is not None and lam != "auto" and lam < 0:
            raise ConfigError(f"labels.center_lambda: expected >= 0 or auto, got {lam}")
        if self.center_ratio <= 0:
            raise ConfigError(f"labels.center_ratio: expected > 0, got {self.center_ratio}")
        if self.center_calibration < 1:
            got = self.center_calibration
            raise ConfigError(f"labels.center_calibration: expected 1 or more epochs, got {got}")
        if not 0 < self.center_alpha <= 1:
            raise ConfigError(f"labels.center_alpha: expected (0, 1], got {self.center_alpha}")
        if self.temperature <= 0:
            raise ConfigError(f"labels.temperature: expected > 0, got {self.temperature}")
