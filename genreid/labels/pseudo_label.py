"""``pseudo_label``: one-hot at the current network's argmax, weight 0.1, late start (LSRO §4.2)."""

from __future__ import annotations

import torch

from genreid.labels.base import LabelBatch, LabelStrategy


class PseudoLabel(LabelStrategy):
    """Recomputed at every forward; generated images enter at ``gen_start_epoch`` (auto: 0.4*E)."""

    name = "pseudo_label"
    default_gen_weight = 0.1
    delayed_by_default = True

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        logits = batch.logits[mask].detach()
        q = torch.zeros_like(logits, dtype=torch.float32)
        q.scatter_(1, logits.argmax(dim=1, keepdim=True), 1.0)
        return q
