"""Query x gallery distance matrices computed blockwise with torch, on CPU or CUDA."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genreid.core.distributed import resolve_device

METRICS: tuple[str, ...] = ("cosine", "euclidean", "sqeuclidean")


def as_float_tensor(x: Any, device: torch.device) -> torch.Tensor:
    """A 2-D float32/float64 tensor on ``device`` from a NumPy array or a tensor."""
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    if t.dim() != 2:
        raise ValueError(f"features must be 2-D (n, d), got shape {tuple(t.shape)}")
    return t.to(device)


def _block_rows(n_g: int, itemsize: int, memory_budget_mb: float) -> int:
    """Query rows per block so that a block's temporaries stay within the budget."""
    per_row = max(1, n_g) * itemsize * 3  # product, result and the copy to host
    return max(1, int(memory_budget_mb * 2**20 // per_row))


def compute_distance(
    qf: Any,
    gf: Any,
    metric: str = "cosine",
    device: str | torch.device | None = None,
    block_size: int | None = None,
    memory_budget_mb: float = 512,
) -> np.ndarray:
    """Distance matrix (n_q x n_g, float32) between query and gallery features.

    ``cosine`` is 1 - cosine similarity (features are L2-normalised inside), ``euclidean``
    the L2 distance (squared distance clamped at 0 before the square root) and
    ``sqeuclidean`` its square. Query rows are processed in blocks of ``block_size`` rows, or
    as many as ``memory_budget_mb`` allows; computations run in the inputs' dtype (float32,
    or float64 when either input is float64) on ``device`` (default: CUDA when available).
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    dev = resolve_device(device)
    q, g = as_float_tensor(qf, dev), as_float_tensor(gf, dev)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"feature dimensions differ: query {q.shape[1]}, gallery {g.shape[1]}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    q, g = q.to(dtype), g.to(dtype)
    n_q, n_g = q.shape[0], g.shape[0]
    out = np.empty((n_q, n_g), dtype=np.float32)
    if n_q == 0 or n_g == 0:
        return out
    if metric == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
        g = torch.nn.functional.normalize(g, dim=1)
    else:
        g_sq = (g * g).sum(1)
    rows = block_size or _block_rows(n_g, q.element_size(), memory_budget_mb)
    if rows < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    gt = g.t()
    for start in range(0, n_q, rows):
        qb = q[start : start + rows]
        if metric == "cosine":
            d = torch.mm(qb, gt).neg_().add_(1.0)
        else:
            d = torch.addmm(g_sq.unsqueeze(0), qb, gt, alpha=-2.0)
            d.add_((qb * qb).sum(1, keepdim=True)).clamp_(min=0.0)
            if metric == "euclidean":
                d.sqrt_()
        out[start : start + len(qb)] = d.to("cpu", torch.float32).numpy()
    return out
