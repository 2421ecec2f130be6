"""FAPL (Ding et al., TMM): feature-affinity pseudo labels and center regularization (§3).

Centers c_k start at 0 and move only with the labeled images of each mini-batch:
Δc_k = Σ_{i real, y_i=k} (c_k − x_i) / (1 + n_k),  c_k ← c_k − α Δc_k  (α = 0.5; the paper's
"+αΔc" is a sign slip). The center loss L_C = ½ Σ_{i real} ‖x_i − c_{y_i}‖² reaches only the
labeled images. A generated image's target is one-hot at argmax_k cos(f, c_k) (Eq. 3-4) or
softmax_k(cos(f, c_k) / T) (Eq. 7); a never-updated center has similarity 0. Until some center
has been updated (all still 0: no labelled information yet) generated images get weight 0.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional

from genreid.labels.base import LabelBatch, LabelStrategy

EPS = 1e-12


class CenterLoss(nn.Module):
    """Class centers (buffers, so they are saved in checkpoints) with the §3 update rule."""

    def __init__(self, num_classes: int, feat_dim: int, alpha: float = 0.5) -> None:
        super().__init__()
        if feat_dim <= 0:
            raise ValueError("center loss needs the feature dimension")
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, feat_dim))
        self.register_buffer("updated", torch.zeros(num_classes, dtype=torch.bool))

    def loss(
        self, features: torch.Tensor, labels: torch.Tensor, real: torch.Tensor
    ) -> torch.Tensor:
        """½ Σ over labeled images of ‖x_i − c_{y_i}‖² (a sum over the batch, as in §3)."""
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
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(sums)
            dist.all_reduce(counts)
        delta = (counts[:, None] * self.centers - sums) / (1.0 + counts[:, None])
        self.centers -= self.alpha * delta
        self.updated |= counts > 0

    def cosine(self, features: torch.Tensor) -> torch.Tensor:
        """cos(f, c_k) for every center (B x K); 0 for centers never updated."""
        f = functional.normalize(features.float(), dim=1, eps=EPS)
        c = functional.normalize(self.centers, dim=1, eps=EPS)
        return (f @ c.t()) * self.updated.float()


class FAPLOneHot(LabelStrategy):
    """FAPL one-hot pseudo label: argmax of the cosine affinity to the class centers."""

    name = "fapl_onehot"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.center is None:  # lambda 0: the centers are still needed for the labels
            self.center = CenterLoss(self.num_classes, self.feat_dim, self.options.center_alpha)

    @property
    def center_lambda(self) -> float:
        lam = self.options.center_lambda
        return 1e-4 if lam is None else float(lam)

    def generated_weight(self) -> torch.Tensor:
        """``gen_weight`` once a center has been updated, 0 before (all cosines would be 0)."""
        # argmax of all-zero cosines would label every image class 0 (fapl_onehot) and their
        # softmax would be plain LSRO (fapl_dist): neither carries labelled information.
        return self.gen_weight * self.center.updated.any().float()

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        cos = self.center.cosine(batch.features[mask].detach())
        q = torch.zeros_like(cos)
        q.scatter_(1, cos.argmax(dim=1, keepdim=True), 1.0)
        return q


class FAPLDist(FAPLOneHot):
    """FAPL distributed pseudo label: softmax of the cosine affinities over temperature T."""

    name = "fapl_dist"

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        cos = self.center.cosine(batch.features[mask].detach())
        return torch.softmax(cos / self.options.temperature, dim=1)
