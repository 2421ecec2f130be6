"""Plain reference versions of k-reciprocal re-ranking, to check the fast ones against.

- :func:`re_ranking_loop`: a step-by-step port of the authors' Python code
  (zhunzhong07/person-re-ranking, ``python-version/re_ranking_ranklist.py``), per-item loops,
  float32, full-row argsort: the semantics :func:`genreid.eval.ranking.rerank.re_ranking`
  reproduces.
- :func:`re_ranking_dense`: a dense, vectorised version written from the paper (Zhong et al.,
  "Re-ranking Person Re-identification with k-reciprocal Encoding", CVPR 2017) with dense
  boolean neighbour matrices, set sizes by matrix products, and the Jaccard distance in its
  min / max form; it keeps the code's conventions (squared distances over their column
  maximum, k + 1 neighbours counting the item itself, round(k1 / 2) for the candidates).

Both hold several N x N matrices (N = queries + gallery): for small problems only.
"""

from __future__ import annotations

import numpy as np


def _original_distance(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray) -> np.ndarray:
    """Squared distances of all N items over their column maximum, transposed (float32)."""
    full = np.concatenate(
        [np.concatenate([q_q, q_g], axis=1), np.concatenate([q_g.T, g_g], axis=1)], axis=0
    )
    full = np.power(full, 2).astype(np.float32)
    return np.transpose(full / np.max(full, axis=0))


def re_ranking_loop(
    q_g_dist: np.ndarray,
    q_q_dist: np.ndarray,
    g_g_dist: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """Re-ranked query x gallery distances, computed item by item as the authors' code does."""
    n_q = q_g_dist.shape[0]
    dist = _original_distance(q_g_dist, q_q_dist, g_g_dist)
    n = dist.shape[0]
    rank = np.argsort(dist).astype(np.int32)
    half = int(np.around(k1 / 2.0))

    def reciprocal(i: int, k: int) -> np.ndarray:
        forward = rank[i, : k + 1]
        backward = rank[forward, : k + 1]
        return forward[np.where(backward == i)[0]]

    V = np.zeros_like(dist, dtype=np.float32)
    for i in range(n):
        recip = reciprocal(i, k1)
        expansion = recip
        for cand in recip:
            cand_recip = reciprocal(cand, half)
            if len(np.intersect1d(cand_recip, recip)) > 2.0 / 3 * len(cand_recip):
                expansion = np.append(expansion, cand_recip)
        expansion = np.unique(expansion)
        weight = np.exp(-dist[i, expansion])
        V[i, expansion] = weight / np.sum(weight)
    if k2 != 1:
        V = np.stack([np.mean(V[rank[i, :k2], :], axis=0) for i in range(n)])

    holders = [np.where(V[:, k] != 0)[0] for k in range(n)]
    jaccard = np.zeros((n_q, n), dtype=np.float32)
    for i in range(n_q):
        overlap = np.zeros(n, dtype=np.float32)
        for k in np.where(V[i, :] != 0)[0]:
            rows = holders[k]
            overlap[rows] = overlap[rows] + np.minimum(V[i, k], V[rows, k])
        jaccard[i] = 1 - overlap / (2.0 - overlap)
    final = jaccard * (1 - lambda_value) + dist[:n_q] * lambda_value
    return final[:, n_q:]


def re_ranking_dense(
    q_g_dist: np.ndarray,
    q_q_dist: np.ndarray,
    g_g_dist: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """Re-ranked query x gallery distances from the paper's set definitions, dense matrices."""
    n_q = q_g_dist.shape[0]
    d = _original_distance(q_g_dist, q_q_dist, g_g_dist)
    n = d.shape[0]
    order = np.argsort(d, axis=1)
    rows = np.arange(n)[:, None]

    def nearest(k: int) -> np.ndarray:  # N(p, k): p's k + 1 nearest items, p included
        m = np.zeros((n, n), dtype=bool)
        m[rows, order[:, : k + 1]] = True
        return m

    def reciprocal(k: int) -> np.ndarray:  # R(p, k) = {g in N(p, k) : p in N(g, k)}
        m = nearest(k)
        return m & m.T

    R = reciprocal(k1)
    R_half = reciprocal(int(np.around(k1 / 2.0)))
    # R*(p): add R(q, k1/2) for q in R(p, k1) when |R(p, k1) & R(q, k1/2)| > 2/3 |R(q, k1/2)|
    common = R.astype(np.float64) @ R_half.T.astype(np.float64)
    accept = R & (common > 2.0 / 3 * R_half.sum(1)[None, :])
    R_star = R | ((accept.astype(np.float64) @ R_half.astype(np.float64)) > 0)
    # Gaussian-kernel encoding V_p on R*(p), then local query expansion over N(p, k2)
    V = np.where(R_star, np.exp(-d.astype(np.float64)), 0.0)
    V /= V.sum(1, keepdims=True)
    if k2 != 1:
        near = order[:, :k2]
        V = sum(V[near[:, j]] for j in range(near.shape[1])) / near.shape[1]
    # Jaccard distance 1 - sum(min(V_p, V_g)) / sum(max(V_p, V_g)), max = V_p + V_g - min
    V_g = V[n_q:]
    jaccard = np.empty((n_q, n - n_q))
    for p in range(n_q):
        support = np.flatnonzero(V[p])
        inter = np.minimum(V[p, support][None, :], V_g[:, support]).sum(1)
        union = V[p].sum() + V_g.sum(1) - inter
        jaccard[p] = 1.0 - inter / union
    return (jaccard * (1 - lambda_value) + d[:n_q, n_q:] * lambda_value).astype(np.float32)
