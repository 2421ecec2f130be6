"""The ``eval`` config section: how a trained run's test features are computed and compared."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genreid.core.errors import ConfigError


@dataclass
class EvalConfig:
    """Evaluation with flip-averaged (``flip``), L2-normalised features."""

    metric: Literal["cosine", "euclidean"] = "cosine"
    flip: bool = True
    batch_size: int = 128

    def check(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"eval.batch_size: expected 1 or more, got {self.batch_size}")
