"""``lsro``: a generated image's target is uniform over the K classes (LSRO Eq. 6-7)."""

from __future__ import annotations

import torch

from genreid.labels.base import LabelBatch, LabelStrategy


class LSRO(LabelStrategy):
    """Label smoothing regularization for outliers: q(k) = 1/K, weight 1."""

    name = "lsro"

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        n = int(mask.sum())
        return torch.full((n, self.num_outputs), 1.0 / self.num_outputs, device=batch.logits.device)
