"""The ``labels`` config section: the strategy for generated images, the keys every strategy
shares, and (``labels.options``) the chosen strategy's own options, a dataclass the strategy
class declares as ``Options`` (docs/TRAINING.md, Strategies).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from genreid.core.config import chosen_by
from genreid.core.errors import ConfigError, RegistryError
from genreid.labels.registry import STRATEGIES

# labels.* keys of config version 1 that were one strategy's options (now labels.options.*)
V1_OPTION_KEYS = (
    "epsilon",
    "temperature",
    "smprl_from",
    "smprl_targets",
    "clusters",
    "cluster_ids",
)


@dataclass
class StrategyOptions:
    """The options of a strategy that has none; a strategy with options subclasses it as its
    ``Options`` (fields with defaults, and a ``check()`` naming ``labels.options.KEY``)."""

    def check(self) -> None:
        """Every option's value is valid (nothing to check here)."""


def strategy_options(name: str) -> type[StrategyOptions]:
    """The ``Options`` dataclass of the strategy ``name`` (an unknown name raises)."""
    return STRATEGIES.get(name).Options


@dataclass
class LabelsConfig:
    """Label strategy for generated images, the shared keys, and the strategy's options."""

    strategy: str = "baseline"
    # the strategy's own keys (LSR's epsilon, FAPL-d's temperature, ...); null: its defaults
    options: StrategyOptions | None = chosen_by("strategy", strategy_options, STRATEGIES.names)
    gen_start_epoch: int | str = "default"  # int, "auto" (0.4*epochs) or "default"
    gen_weight: float | None = None
    real_smoothing: float = 0.0
    triplet: float = 0.0  # weight of a batch-hard triplet loss on the real images (pk sampler)
    triplet_margin: float = 0.3  # on L2-normalised features; 0: the soft margin
    # lambda of the center term (any strategy; FAPL's Eq. 13): a number, "auto" (set at the
    # first steps so that lambda * L_C / L_S = center_ratio) or null (the strategy's default:
    # fapl auto, others 0)
    center_lambda: float | Literal["auto"] | None = None
    center_ratio: float = 0.03  # validated: docs/RESULTS.md, FAPL's center term
    center_calibration: int = 2  # auto: epochs matched step by step; lambda from the last
    center_alpha: float = 0.5
    center_update: Literal["step", "epoch"] = "step"  # epoch: class means of the last epoch

    def __post_init__(self) -> None:
        if self.options is None and self.strategy in STRATEGIES:
            self.options = strategy_options(self.strategy)()

    def check(self) -> None:
        try:
            expected = strategy_options(self.strategy)
        except RegistryError as exc:
            raise ConfigError(f"labels.strategy: {exc}") from None
        if type(self.options) is not expected:
            raise ConfigError(
                f"labels.options: {type(self.options).__qualname__} given for strategy "
                f"{self.strategy}, whose options are {expected.__qualname__}"
            )
        g = self.gen_start_epoch
        if not (isinstance(g, int) and g >= 0) and g not in ("auto", "default"):
            raise ConfigError(
                f"labels.gen_start_epoch: expected an integer >= 0, 'auto' or 'default', got {g!r}"
            )
        if not 0 <= self.real_smoothing < 1:
            got = self.real_smoothing
            raise ConfigError(f"labels.real_smoothing: expected a value in [0, 1), got {got}")
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


def migrate_labels_v2(section: dict[str, Any]) -> dict[str, Any]:
    """Config version 1 -> 2 of a ``labels`` mapping: the chosen strategy's flat keys
    (``labels.epsilon``) move to ``labels.options``; the other strategies' keys, which every
    version-1 run folder holds and which never did anything, are dropped."""
    name = section.get("strategy", "baseline")
    try:
        own = {f.name for f in dataclasses.fields(strategy_options(str(name)))}
    except RegistryError:
        own = set()  # the unknown strategy's error comes when the section is read
    moved = {k: section[k] for k in V1_OPTION_KEYS if k in section and k in own}
    out = {k: v for k, v in section.items() if k not in V1_OPTION_KEYS}
    given = section.get("options")
    if moved and (given is None or isinstance(given, dict)):
        out["options"] = {**moved, **(given or {})}  # a version-2 override wins
    return out
