"""Batch-hard triplet loss on the real images of a batch (Hermans et al. 2017, "In Defense of
the Triplet Loss"): each anchor's farthest positive against its nearest negative.

Features are L2-normalised first, so the loss works in the cosine geometry the test
features are ranked in. ``margin`` 0 is the soft margin, log(1 + exp(d_ap - d_an)). Anchors
with no positive (or no negative) in the batch add nothing: the PK sampler
(``data.sampler=pk``) gives every identity ``data.pk_instances`` images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_hard_triplet(feats: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over anchors with a positive and a negative in the batch (0 if none has)."""
    x = F.normalize(feats.float(), dim=1)
    dist = (2.0 - 2.0 * x @ x.t()).clamp_min(1e-12).sqrt()
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=feats.device)
    pos = same & ~eye
    valid = pos.any(1) & (~same).any(1)
    if not valid.any():
        return feats.sum() * 0.0
    d_ap = dist.masked_fill(~pos, -1.0).amax(1)[valid]
    d_an = dist.masked_fill(same, float("inf")).amin(1)[valid]
    if margin > 0:
        return F.relu(d_ap - d_an + margin).mean()
    return F.softplus(d_ap - d_an).mean()
