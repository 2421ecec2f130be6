"""Market-1501 multi-query: pool the ``gt_bbox`` features of each query's identity and camera.

Convention (as in Zheng et al.'s Market-1501 evaluation code): for every query, the
features of all multi-query images with the same identity *and* the same camera are pooled
(element-wise mean or max); a query whose (identity, camera) has no multi-query image keeps
its own feature. With ``normalize=True`` (the default, for the cosine metric) every input
feature is L2-normalised before pooling and the pooled feature is L2-normalised again; with
``normalize=False`` raw features are pooled (for Euclidean distances on raw features).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

POOL_METHODS: tuple[str, ...] = ("mean", "max")


def _l2n(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, p=2, dim=1)


def _keys(pids: Any, camids: Any) -> np.ndarray:
    p = np.asarray(pids, dtype=np.int64).reshape(-1)
    c = np.asarray(camids, dtype=np.int64).reshape(-1)
    if p.shape != c.shape:
        raise ValueError(f"pids ({p.shape[0]}) and camids ({c.shape[0]}) differ in length")
    return np.stack([p, c], axis=1)


def pool_multiquery(
    query_feats: Any,
    query_pids: Any,
    query_camids: Any,
    mq_feats: Any,
    mq_pids: Any,
    mq_camids: Any,
    method: str = "mean",
    normalize: bool = True,
) -> np.ndarray:
    """Pooled query features (nq, d), float32: mean/max over same-(pid, cam) mq images."""
    if method not in POOL_METHODS:
        raise ValueError(f"unknown multi-query pooling {method!r}; expected mean or max")
    q = torch.as_tensor(np.asarray(query_feats), dtype=torch.float32)
    mq = torch.as_tensor(np.asarray(mq_feats), dtype=torch.float32).reshape(-1, q.shape[1])
    q_keys = _keys(query_pids, query_camids)
    mq_keys = _keys(mq_pids, mq_camids)
    if len(q_keys) != q.shape[0] or len(mq_keys) != mq.shape[0]:
        raise ValueError("features and pids/camids differ in length")
    if normalize:
        q, mq = _l2n(q), _l2n(mq)
    # One group id per distinct (pid, cam) over both sets, so queries find their group.
    _, inverse = np.unique(np.concatenate([mq_keys, q_keys]), axis=0, return_inverse=True)
    inverse = torch.as_tensor(inverse.reshape(-1), dtype=torch.long)
    mq_group, q_group = inverse[: len(mq_keys)], inverse[len(mq_keys) :]
    num_groups = int(inverse.max()) + 1 if len(inverse) else 0
    counts = torch.bincount(mq_group, minlength=num_groups)
    pooled = torch.zeros(num_groups, q.shape[1], dtype=torch.float32)
    if method == "mean":
        pooled.index_add_(0, mq_group, mq)
        pooled /= counts.clamp(min=1).unsqueeze(1).to(pooled.dtype)
    else:
        index = mq_group.unsqueeze(1).expand_as(mq)
        pooled.scatter_reduce_(0, index, mq, reduce="amax", include_self=False)
    has_mq = counts[q_group] > 0
    out = torch.where(has_mq.unsqueeze(1), pooled[q_group], q)
    if normalize:
        out = _l2n(out)
    return out.numpy()
