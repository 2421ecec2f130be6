"""Label strategies for generated images (METHODS §2-3) and the soft cross-entropy loss."""

from genreid.labels.base import (
    STRATEGIES,
    LabelBatch,
    LabelOptions,
    LabelStrategy,
    LabelTargets,
    build_strategy,
    soft_cross_entropy,
    strategy_class,
)

__all__ = [
    "STRATEGIES",
    "LabelBatch",
    "LabelOptions",
    "LabelStrategy",
    "LabelTargets",
    "build_strategy",
    "soft_cross_entropy",
    "strategy_class",
]
