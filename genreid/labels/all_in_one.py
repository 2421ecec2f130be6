"""``all_in_one``: generated images form one extra class K (LSRO §4.2); K+1 outputs."""

from __future__ import annotations

import torch

from genreid.labels.base import LabelBatch, LabelStrategy


class AllInOne(LabelStrategy):
    """The classifier has K+1 outputs; a generated image is one-hot on class K."""

    name = "all_in_one"
    extra_class = True

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        q = torch.zeros(int(mask.sum()), self.num_outputs, device=batch.logits.device)
        q[:, self.num_classes] = 1.0
        return q
