"""Label strategies for generated images (docs/TRAINING.md) and the soft cross-entropy loss."""

from genreid.labels.base import (
    STRATEGIES,
    LabelBatch,
    LabelStrategy,
    LabelTargets,
    TrainingSet,
    build_strategy,
    soft_cross_entropy,
    strategy_class,
)
from genreid.labels.config import LabelsConfig

__all__ = [
    "STRATEGIES",
    "LabelBatch",
    "LabelStrategy",
    "LabelTargets",
    "LabelsConfig",
    "TrainingSet",
    "build_strategy",
    "soft_cross_entropy",
    "strategy_class",
]
