"""DG-Net's re-ID losses on generated images and their schedule: the teacher's flip-averaged
soft label, the KL divergence of Eq. 8, and the linear warm-up of lambda_prim / lambda_fine."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F


def ramp(iteration: int, start: int, warmup: int) -> float:
    """The factor (0 to 1) on lambda_prim and lambda_fine at 0-based ``iteration``: 0 before
    ``start``, then rising linearly by 1/``warmup`` per iteration (the first one with the
    losses has 1/warmup), 1 from ``start + warmup - 1`` on; ``warmup=0`` jumps to 1."""
    if iteration < start:
        return 0.0
    if warmup <= 0:
        return 1.0
    return min(1.0, (iteration - start + 1) / warmup)


@torch.no_grad()
def teacher_soft_labels(
    logits_of: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """q = (softmax(t(x)) + softmax(t(mirrored x))) / 2, no temperature (float32, no grad)."""
    p = F.softmax(logits_of(x).float(), dim=1)
    return (p + F.softmax(logits_of(x.flip(-1)).float(), dim=1)) / 2


def kl_to_teacher(logits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Eq. 8: mean over images of KL(q || p) = sum_k q_k (log q_k - log p_k), p =
    softmax(logits); terms with q_k = 0 count 0."""
    log_p = F.log_softmax(logits.float(), dim=1)
    return (torch.xlogy(q, q) - q * log_p).sum(dim=1).mean()


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference (the reconstruction losses of Eq. 1, 2, 4, 5)."""
    return (a.float() - b.float()).abs().mean()
