"""Class centers, the center loss and its weight (FAPL §III-C, Eq. 12-13; docs/TRAINING.md).

Centers c_k start at 0 and move only with the labeled images of each mini-batch:
Δc_k = Σ_{i real, y_i=k} (c_k − x_i) / (1 + n_k),  c_k ← c_k − α Δc_k  (α = 0.5; the paper's
"+αΔc" is a sign slip). With ``update="epoch"`` they are instead set, at the end of every
epoch, to the mean feature of each class's labeled images over that epoch (the per-step rule
runs during the first epoch only, when no such mean exists yet). The center loss
L_C = ½ Σ_{i real} ‖x_i − c_{y_i}‖² reaches only the labeled images; the strategy divides it
by the cross-entropy's image count, so that λ·L_C / L_S is that of Eq. 13 at any batch size.
λ is a number tied to one network's feature scale; :class:`CenterWeight` can instead set it
from the first steps so that λ·L_C / L_S equals a target ratio (the paper's "comparable").
Under DDP the center updates' sums and counts are summed over ranks.
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

    def __init__(
        self, num_classes: int, feat_dim: int, alpha: float = 0.5, update: str = "step"
    ) -> None:
        super().__init__()
        if feat_dim <= 0:
            raise ConfigError("center loss needs the feature dimension")
        if update not in ("step", "epoch"):
            raise ConfigError(f"labels.center_update: expected step or epoch, got {update!r}")
        self.alpha, self.mode = alpha, update
        self.register_buffer("centers", torch.zeros(num_classes, feat_dim))
        self.register_buffer("updated", torch.zeros(num_classes, dtype=torch.bool))
        if update == "epoch":  # this epoch's sums and counts, and how many epochs ended
            self.register_buffer("epoch_sums", torch.zeros(num_classes, feat_dim))
            self.register_buffer("epoch_counts", torch.zeros(num_classes))
            self.register_buffer("epochs_done", torch.zeros((), dtype=torch.long))

    def loss(
        self, features: torch.Tensor, labels: torch.Tensor, real: torch.Tensor
    ) -> torch.Tensor:
        """½ Σ over labeled images of ‖x_i − c_{y_i}‖² (the batch sum of FAPL §III-C), over
        the images whose center exists: a never-updated center (still 0) is no center yet,
        and pulling towards it would only shrink the features."""
        use = real.clone()
        use[real] = self.updated[labels[real]]
        if not use.any():
            return features.sum() * 0.0
        x = features[use].float()
        c = self.centers[labels[use]]
        return 0.5 * ((x - c) ** 2).sum()

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor, real: torch.Tensor) -> None:
        """c_k ← c_k − α Σ_i (c_k − x_i) / (1 + n_k); summed over ranks under DDP. In epoch
        mode the batch is added to the epoch's class sums, and the rule applies in the first
        epoch only."""
        K, D = self.centers.shape
        x = features[real].float()
        y = labels[real]
        sums = torch.zeros(K, D, device=self.centers.device).index_add_(0, y, x)
        counts = torch.zeros(K, device=self.centers.device).index_add_(
            0, y, torch.ones_like(y, dtype=torch.float32)
        )
        all_reduce_sum(sums)
        all_reduce_sum(counts)
        if self.mode == "epoch":
            self.epoch_sums += sums
            self.epoch_counts += counts
            if self.epochs_done > 0:
                return
        delta = (counts[:, None] * self.centers - sums) / (1.0 + counts[:, None])
        self.centers -= self.alpha * delta
        self.updated |= counts > 0

    @torch.no_grad()
    def end_epoch(self) -> None:
        """Epoch mode: every class seen this epoch gets the mean of its labeled features."""
        if self.mode != "epoch":
            return
        seen = self.epoch_counts > 0
        self.centers[seen] = self.epoch_sums[seen] / self.epoch_counts[seen, None]
        self.updated |= seen
        self.epoch_sums.zero_()
        self.epoch_counts.zero_()
        self.epochs_done += 1

    def cosine(self, features: torch.Tensor) -> torch.Tensor:
        """cos(f, c_k) for every center (B x K); 0 for centers never updated."""
        f = functional.normalize(features.float(), dim=1, eps=EPS)
        c = functional.normalize(self.centers, dim=1, eps=EPS)
        return (f @ c.t()) * self.updated.float()


class CenterWeight(nn.Module):
    """λ of the center term: a number, or (``lam=None``) ``auto``. Auto matches the ratio in
    every step of the first ``epochs`` epochs (λ_t = ratio·L_S/L_C) while the centers form,
    then fixes λ = ratio·ΣL_S/ΣL_C summed over the last of those epochs (centers then exist
    and have settled: matching the very first steps, against centers still near 0, gave a
    ratio 5x below the target for the rest of a run). Sums are over ranks under DDP; the
    state is in buffers (checkpoints, resume)."""

    def __init__(self, lam: float | None, ratio: float = 0.3, epochs: int = 2) -> None:
        super().__init__()
        self.auto, self.ratio, self.epochs = lam is None, float(ratio), int(epochs)
        self.register_buffer("value", torch.tensor(float(lam or 0.0), dtype=torch.float64))
        self.register_buffer("sums", torch.zeros(2, dtype=torch.float64))  # ΣL_S, ΣL_C
        self.register_buffer("fixed", torch.tensor(lam is not None))

    @property
    def calibrating(self) -> bool:
        return not bool(self.fixed)

    def forward(
        self, center_loss: torch.Tensor, ce: torch.Tensor | None = None, epoch: int = 0
    ) -> torch.Tensor:
        """λ·L_C for this step; while calibrating, L_S = ``ce`` (a constant) is needed."""
        if not self.calibrating:
            return self.value.to(center_loss.dtype) * center_loss
        if ce is None:
            raise ValueError("CenterWeight: an auto lambda needs L_S while it calibrates")
        pair = torch.stack([ce.detach(), center_loss.detach()]).double()
        all_reduce_sum(pair)
        if not (pair[0] > 0 and pair[1] > 0):  # no center or no loss yet: nothing to match
            return center_loss * 0.0
        if epoch >= self.epochs - 1:
            with torch.no_grad():
                self.sums += pair
        lam = self.ratio * pair[0] / pair[1]
        return lam.to(center_loss.dtype) * center_loss

    @torch.no_grad()
    def end_epoch(self, epoch: int) -> None:
        """After the last calibration epoch (0-based ``epoch``), fix λ from its sums."""
        if self.calibrating and epoch >= self.epochs - 1 and self.sums[1] > 0:
            self.value.copy_(self.ratio * self.sums[0] / self.sums[1])
            self.fixed.fill_(True)
