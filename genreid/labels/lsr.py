"""``lsr``: label smoothing on real images, q = (1-eps)*onehot + eps/K (Szegedy; LSRO §4.1)."""

from __future__ import annotations

from genreid.labels.base import LabelStrategy


class LSR(LabelStrategy):
    """Real images only; eps = ``labels.epsilon`` (0.1) unless ``real_smoothing`` is set."""

    name = "lsr"
    uses_generated = False

    @property
    def real_epsilon(self) -> float:
        return float(self.cfg.real_smoothing or self.cfg.epsilon)
