"""``lsr``: label smoothing on real images, q = (1-eps)*onehot + eps/K (Szegedy; LSRO §4.1)."""

from __future__ import annotations

from dataclasses import dataclass

from genreid.core.errors import ConfigError
from genreid.labels.base import LabelStrategy
from genreid.labels.config import StrategyOptions


class LSR(LabelStrategy):
    """Real images only; eps = ``labels.options.epsilon`` (0.1) unless ``real_smoothing`` is set."""

    name = "lsr"
    uses_generated = False

    @dataclass
    class Options(StrategyOptions):
        """``labels.options`` of lsr."""

        epsilon: float = 0.1  # the smoothing of the real images' targets

        def check(self) -> None:
            """epsilon in [0, 1): some of each target stays on the true identity."""
            if not 0 <= self.epsilon < 1:
                raise ConfigError(
                    f"labels.options.epsilon: expected a value in [0, 1), got {self.epsilon}"
                )

    @property
    def real_epsilon(self) -> float:
        return float(self.cfg.real_smoothing or self.options.epsilon)
