"""FAPL (Ding et al., TMM): feature-affinity pseudo labels with center regularization (§III).

A generated image's target is one-hot at argmax_k cos(f, c_k) (Eq. 3-4) or
softmax_k(cos(f, c_k) / T) (Eq. 7) over the class centers of :mod:`genreid.labels.center`;
a never-updated center has similarity 0. Until some center has been updated (all still 0: no
labelled information yet) generated images get weight 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genreid.core.errors import ConfigError
from genreid.labels.base import LabelBatch, LabelStrategy
from genreid.labels.config import StrategyOptions


class FAPLOneHot(LabelStrategy):
    """FAPL one-hot pseudo label: argmax of the cosine affinity to the class centers."""

    name = "fapl_onehot"
    default_center_lambda = "auto"  # lambda * L_C / L_S = labels.center_ratio (FAPL §V-C4)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.center is None:  # lambda 0: the centers are still needed for the labels
            self.center = self.make_centers()

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

    @dataclass
    class Options(StrategyOptions):
        """``labels.options`` of fapl_dist."""

        temperature: float = 1.0  # T of Eq. 7 (1: the paper's softmax of the cosines)

        def check(self) -> None:
            """A temperature > 0 (the softmax divides by it)."""
            if self.temperature <= 0:
                raise ConfigError(
                    f"labels.options.temperature: expected > 0, got {self.temperature}"
                )

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        cos = self.center.cosine(batch.features[mask].detach())
        return torch.softmax(cos / self.options.temperature, dim=1)
