"""Class centers and the center loss (FAPL §III-C, Eq. 12; docs/TRAINING.md, FAPL centers).

Centers c_k start at 0 and move only with the labeled images of each mini-batch:
Δc_k = Σ_{i real, y_i=k} (c_k − x_i) / (1 + n_k),  c_k ← c_k − α Δc_k  (α = 0.5; the paper's
"+αΔc" is a sign slip). The center loss L_C = ½ Σ_{i real} ‖x_i − c_{y_i}‖² reaches only the
labeled images; the strategy divides it by the cross-entropy's image count, so that
λ·L_C / L_S is that of Eq. 13 at any batch size. Under DDP the center updates' sums and
counts are summed over ranks.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from genreid.core.distributed import all_reduce_sum
from genreid.core.errors import ConfigError

EPS = 1e-12


class CenterLoss(nn.Module):
    """Class centers (buffers, so they are saved in checkpoints) with the update rule above."""

    def __init__(self, num_classes: int, feat_dim: int, alpha: float = 0.5) -> None:
        super().__init__()
        if feat_dim <= 0:
            raise ConfigError("center loss needs the feature dimension")
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, feat_dim))
        self.register_buffer("updated", torch.zeros(num_classes, dtype=torch.bool))

    def loss(
        self, features: torch.Tensor, labels: torch.Tensor, real: torch.Tensor
    ) -> torch.Tensor:
        """½ Σ over labeled images of ‖x_i − c_{y_i}‖² (the batch sum of FAPL §III-C)."""
        if not real.any():
            return features.sum() * 0.0
        x = features[real].float()
        c = self.centers[labels[real]]
        return 0.5 * ((x - c) ** 2).sum()

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor, real: torch.Tensor) -> None:
        """c_k ← c_k − α Σ_i (c_k − x_i) / (1 + n_k); summed over ranks under DDP."""
        K, D = self.centers.shape
        x = features[real].float()
        y = labels[real]
        sums = torch.zeros(K, D, device=self.centers.device).index_add_(0, y, x)
        counts = torch.zeros(K, device=self.centers.device).index_add_(
            0, y, torch.ones_like(y, dtype=torch.float32)
        )
        all_reduce_sum(sums)
        all_reduce_sum(counts)
        delta = (counts[:, None] * self.centers - sums) / (1.0 + counts[:, None])
        self.centers -= self.alpha * delta
        self.updated |= counts > 0

    def cosine(self, features: torch.Tensor) -> torch.Tensor:
        """cos(f, c_k) for every center (B x K); 0 for centers never updated."""
        f = functional.normalize(features.float(), dim=1, eps=EPS)
        c = functional.normalize(self.centers, dim=1, eps=EPS)
        return (f @ c.t()) * self.updated.float()
