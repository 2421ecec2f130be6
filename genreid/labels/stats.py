"""What the generated images were taught over an epoch, for ``metrics.jsonl``.

A strategy that piles its generated images onto a few identities (FAPL-o's hard pseudo labels
on a small set do, docs/RESULTS.md) shows it here long before the test numbers do:

- ``gen/top_identity_share``: the share of all generated target mass on the one class that
  gets the most (1/K for LSRO's uniform targets, 1 when every image is labelled alike);
- ``gen/effective_identities``: exp(entropy) of that mass over the classes (K for LSRO,
  1 for a collapse);
- ``gen/target_entropy``: the mean entropy of one image's target over log C (0 one-hot, 1
  uniform).
"""

from __future__ import annotations

import math

import torch

from genreid.core.distributed import all_reduce_sum


class TargetStats:
    """Accumulates the generated images' targets of an epoch (summed over DDP ranks)."""

    def __init__(self, num_outputs: int, device: torch.device | str = "cpu") -> None:
        self.num_outputs, self.device = num_outputs, torch.device(device)
        self.reset()

    def reset(self) -> None:
        self.mass = torch.zeros(self.num_outputs, dtype=torch.float64, device=self.device)
        self.entropy = torch.zeros(2, dtype=torch.float64, device=self.device)  # sum, count

    @torch.no_grad()
    def add(self, q: torch.Tensor) -> None:
        """Targets (n x C) of the generated images that were trained on."""
        if q.numel() == 0:
            return
        q = q.detach().to(self.device, torch.float64)
        self.mass += q.sum(0)
        ent = -(q * q.clamp_min(1e-12).log()).sum(1) / math.log(max(2, self.num_outputs))
        self.entropy[0] += ent.sum()
        self.entropy[1] += q.shape[0]

    def summary(self) -> dict[str, float]:
        """The three figures above (nothing when no generated image was trained on); resets."""
        mass = all_reduce_sum(self.mass.clone())
        entropy = all_reduce_sum(self.entropy.clone())
        self.reset()
        total = float(mass.sum())
        if total <= 0:
            return {}
        p = mass / total
        spread = float(-(p[p > 0] * p[p > 0].log()).sum())
        return {
            "gen/top_identity_share": float(p.max()),
            "gen/effective_identities": math.exp(spread),
            "gen/target_entropy": float(entropy[0] / entropy[1]),
        }
