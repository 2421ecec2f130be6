"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) with sparse encodings.

:func:`re_ranking` takes the three distance matrices and reproduces the authors' Python code
(zhunzhong07/person-re-ranking, ``python-version/re_ranking_ranklist.py``): distances are
squared, divided by their column maximum and transposed; neighbours come from a full-row
``np.argsort``; R*(p) adds the k-reciprocal set (k = round(k1 / 2)) of each k1-reciprocal
neighbour sharing more than 2/3 of it; V holds exp(-d) weights normalised per row, averaged
over the k2 nearest rows (query expansion); Jaccard = 1 - m / (2 - m), m = sum min(V_p, V_g);
the result is jaccard * (1 - lambda) + d * lambda for the query x gallery block.

:func:`re_ranking_features` gives the same result from features (Euclidean distances) without
dense N x N matrices: neighbours and column maxima come from blockwise top-k over the upper
triangle of the distance matrix (torch, CUDA when available), V is a scipy CSR matrix, query
expansion a sparse product and the Jaccard distance a min-sum over an inverted index.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from genreid.core.distributed import resolve_device
from genreid.eval.distance import as_float_tensor

CHUNK_ELEMENTS = 1 << 22  # scratch entries per chunk of the vectorised set operations
BLOCK = 2048  # tile size of the blockwise distance matrix in re_ranking_features


def _half(k1: int) -> int:
    """The candidates' k, ``int(np.around(k1 / 2))`` as in the reference (ties to even)."""
    return int(np.around(k1 / 2.0))


def _widths(n: int, k1: int, k2: int) -> tuple[int, int, int]:
    """Widths of the reference's slices ``[:k1 + 1]``, ``[:round(k1 / 2) + 1]``, ``[:k2]``."""
    return min(k1 + 1, n), min(_half(k1) + 1, n), min(k2, n)


def _reciprocal_mask(rank: np.ndarray, width: int) -> np.ndarray:
    """``mask[i, a]``: ``rank[i, a]`` is a k-reciprocal neighbour of ``i`` (k + 1 = width)."""
    n = len(rank)
    fwd = rank[:, :width]
    out = np.empty(fwd.shape, dtype=bool)
    step = max(1, CHUNK_ELEMENTS // (width * width))
    for s in range(0, n, step):
        e = min(n, s + step)
        out[s:e] = (fwd[fwd[s:e]] == np.arange(s, e)[:, None, None]).any(-1)
    return out


def expansion_sets(rank: np.ndarray, k1: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the sets R*(i), sorted by row then column.

    ``rank[i]`` lists i's nearest items, nearest first (at least ``k1 + 1`` columns, or all N).
    """
    n = len(rank)
    w1, wh, _ = _widths(n, k1, 1)
    fwd, hfwd = rank[:, :w1], rank[:, :wh]
    recip = _reciprocal_mask(rank, w1)
    half_recip = _reciprocal_mask(rank, wh)
    half_size = half_recip.sum(1)
    keys = []
    step = max(1, CHUNK_ELEMENTS // (w1 * wh * w1))
    for s in range(0, n, step):
        e = min(n, s + step)
        f, r = fwd[s:e], recip[s:e]
        cand, cand_mask = hfwd[f], half_recip[f]  # (b, w1, wh): each neighbour's half set
        member = ((cand[..., None] == f[:, None, None, :]) & r[:, None, None, :]).any(-1)
        common = (member & cand_mask).sum(-1)
        accept = r & (common > 2.0 / 3 * half_size[f])
        bi, ai = np.nonzero(r)
        keys.append((bi + s) * n + f[bi, ai])
        bi, ai, ci = np.nonzero(accept[..., None] & cand_mask)
        keys.append((bi + s) * n + cand[bi, ai, ci])
    keys = np.unique(np.concatenate(keys))
    rows = keys // n
    return rows, keys - rows * n


def _encode(rows: np.ndarray, cols: np.ndarray, dist: np.ndarray, n: int) -> sp.csr_matrix:
    """Sparse V: exp(-d) over each row's set R*(i), normalised to sum 1 (float32 weights)."""
    weight = np.exp(-dist.astype(np.float32)).astype(np.float64)
    total = np.bincount(rows, weights=weight, minlength=n)
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=n))))
    return sp.csr_matrix((weight / total[rows], cols, indptr), shape=(n, n))


def _query_expansion(V: sp.csr_matrix, rank: np.ndarray, k2: int) -> sp.csr_matrix:
    """Each row of V replaced by the mean of the rows of its ``k2`` nearest items."""
    n = V.shape[0]
    w2 = min(k2, n)
    if k2 == 1 or w2 == 0:
        return V
    avg = sp.csr_matrix(
        (np.full(n * w2, 1.0 / w2), rank[:, :w2].ravel(), np.arange(0, n * w2 + 1, w2)),
        shape=(n, n),
    )
    return (avg @ V).tocsr()


def _min_overlap(Vq: sp.csr_matrix, Vg: sp.csc_matrix) -> np.ndarray:
    """Dense ``m[i, j] = sum_k min(Vq[i, k], Vg[j, k])`` via the inverted index of ``Vg``.

    Every stored ``Vq[i, k]`` meets the stored entries of column k of ``Vg`` (the gallery
    items that share k); their minima are summed per (i, j) with one ``bincount``.
    """
    n_q, n_g = Vq.shape[0], Vg.shape[0]
    k, a = Vq.indices, Vq.data.astype(np.float32)
    row = np.repeat(np.arange(n_q, dtype=np.int64) * n_g, np.diff(Vq.indptr))
    lo = Vg.indptr[k].astype(np.int64)
    length = Vg.indptr[k + 1] - lo
    pos = np.repeat(lo - (np.cumsum(length) - length), length)
    pos += np.arange(len(pos))
    val = np.minimum(np.repeat(a, length), Vg.data[pos])
    flat = np.repeat(row, length)
    flat += Vg.indices[pos]
    return np.bincount(flat, weights=val, minlength=n_q * n_g).reshape(n_q, n_g)


def rerank_from_neighbours(
    rank: np.ndarray,
    pair_dist: Callable[[np.ndarray, np.ndarray], np.ndarray],
    original: np.ndarray,
    k1: int,
    k2: int,
    lambda_value: float,
    work_elements: int = CHUNK_ELEMENTS,
) -> np.ndarray:
    """Re-ranked distances from neighbour lists; ``original`` (n_q x n_g) is overwritten.

    ``rank``: each item's nearest items (N rows); ``pair_dist(rows, cols)``: the normalised
    original distances of any pairs; ``original``: their query x gallery block, float32.
    Queries are processed in batches of about ``work_elements`` (query, gallery, k) terms.
    """
    n = len(rank)
    n_q, n_g = original.shape
    rows, cols = expansion_sets(rank, k1)
    V = _query_expansion(_encode(rows, cols, pair_dist(rows, cols), n), rank, k2)
    Vq, Vg = V[:n_q].tocsr(), V[n_q:].tocsc().astype(np.float32)
    # terms per query: sum over its stored k of the gallery entries in column k
    owner = np.repeat(np.arange(n_q), np.diff(Vq.indptr))
    per_query = np.bincount(owner, weights=np.diff(Vg.indptr)[Vq.indices], minlength=n_q)
    budget = np.cumsum(per_query).astype(np.int64) // max(1, work_elements)
    rows_cap = max(1, work_elements // max(1, n_g))
    s = 0
    while s < n_q:
        e = min(n_q, s + rows_cap, max(s + 1, int(np.searchsorted(budget, budget[s] + 1))))
        m = _min_overlap(Vq[s:e], Vg)
        jaccard = 1.0 - m / (2.0 - m)
        original[s:e] = jaccard * (1 - lambda_value) + original[s:e] * lambda_value
        s = e
    return original


def re_ranking(
    q_g_dist: Any,
    q_q_dist: Any,
    g_g_dist: Any,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """k-reciprocal re-ranked query x gallery distances (float32), from distance matrices.

    Same semantics as the authors' reference code (see the module docstring), including its
    full-row ``np.argsort`` (ties broken as NumPy does) and ``round(k1 / 2)``; it holds the
    N x N float32 original-distance matrix (N = queries + gallery) but no dense V.
    """
    q_g = np.asarray(q_g_dist)
    q_q, g_g = np.asarray(q_q_dist), np.asarray(g_g_dist)
    n_q, n_g = q_g.shape
    if q_q.shape != (n_q, n_q) or g_g.shape != (n_g, n_g):
        raise ValueError(f"shapes do not fit: q_g {q_g.shape}, q_q {q_q.shape}, g_g {g_g.shape}")
    if n_q == 0 or n_g == 0:
        return np.zeros((n_q, n_g), dtype=np.float32)
    full = np.concatenate(
        [np.concatenate([q_q, q_g], axis=1), np.concatenate([q_g.T, g_g], axis=1)], axis=0
    )
    full = np.power(full, 2).astype(np.float32)
    n = full.shape[0]
    # the reference's transpose(full / column max), laid out row-major for the row sorts
    dist = np.divide(full.T, np.max(full, axis=0)[:, None], out=np.empty((n, n), np.float32))
    del full
    width = max(_widths(n, k1, k2))
    rank = np.empty((n, width), dtype=np.int64)
    step = max(1, CHUNK_ELEMENTS // n)
    for s in range(0, n, step):
        rank[s : s + step] = np.argsort(dist[s : s + step], axis=1)[:, :width]
    original = np.array(dist[:n_q, n_q:], dtype=np.float32)
    return rerank_from_neighbours(
        rank, lambda r, c: dist[r, c], original, k1, k2, lambda_value
    ).astype(np.float32, copy=False)


def _smallest(
    values: list[torch.Tensor], index: list[torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest candidates per row (sorted) among column blocks of candidates."""
    v, i = torch.cat(values, dim=1), torch.cat(index, dim=1)
    best, pick = torch.topk(v, min(k, v.shape[1]), dim=1, largest=False, sorted=True)
    return best, torch.gather(i, 1, pick)


def _neighbours_and_maxima(
    x: torch.Tensor, sq: torch.Tensor, n_q: int, width: int, block: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Each item's ``width`` nearest (squared distance, index), sorted, and largest squared
    distance, plus the query x gallery squared distances.

    Only the upper triangle of the N x N matrix is computed, in ``block`` x ``block`` tiles,
    each by one product of augmented features ``[x, |x|^2, 1] . [-2y, 1, |y|^2]``: a tile
    gives candidates to its rows, and its transpose to its columns' rows.
    """
    n = len(x)
    one = torch.ones_like(sq).unsqueeze(1)
    left = torch.cat([x, sq.unsqueeze(1), one], dim=1)
    right = torch.cat([x * -2.0, one, sq.unsqueeze(1)], dim=1)
    starts = list(range(0, n, block))
    pending: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {
        s: ([], []) for s in starts
    }
    values = torch.empty((n, width), dtype=x.dtype, device=x.device)
    index = torch.empty((n, width), dtype=torch.int64, device=x.device)
    maxima = torch.zeros(n, dtype=x.dtype, device=x.device)
    qg = np.empty((n_q, n - n_q), dtype=np.float32 if x.dtype == torch.float32 else np.float64)
    for s in starts:
        e = min(n, s + block)
        row_max = maxima[s:e]
        cand_v, cand_i = pending.pop(s)
        for t in range(s, n, block):
            u = min(n, t + block)
            d = torch.mm(left[s:e], right[t:u].t())
            if t == s:
                d.diagonal().zero_()  # exact self-distances
            row_max = torch.maximum(row_max, d.max(dim=1).values)
            v, i = torch.topk(d, min(width, u - t), dim=1, largest=False, sorted=False)
            cand_v.append(v)
            cand_i.append(i + t)
            if t > s:  # the transpose: candidates for rows t:u
                dt = d.t().contiguous()
                maxima[t:u] = torch.maximum(maxima[t:u], dt.max(dim=1).values)
                v, i = torch.topk(dt, min(width, e - s), dim=1, largest=False, sorted=False)
                pending[t][0].append(v)
                pending[t][1].append(i + s)
            if s < n_q and u > n_q:
                rows, first = min(e, n_q) - s, max(t, n_q)
                qg[s : s + rows, first - n_q : u - n_q] = d[:rows, first - t :].cpu().numpy()
        maxima[s:e] = row_max
        best, pick = _smallest(cand_v, cand_i, width)
        values[s:e], index[s:e] = best.clamp_(min=0.0), pick
    np.maximum(qg, 0.0, out=qg)
    return values, index, maxima, qg


def _pair_sq_distances(
    x: torch.Tensor,
    sq: torch.Tensor,
    known_v: np.ndarray,
    known_i: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
) -> np.ndarray:
    """Squared distances of pairs: looked up in the neighbour lists (either direction), the
    rest computed from the features."""
    n, width = known_i.shape
    owner = np.repeat(np.arange(n), width)
    keys = np.concatenate([owner * n + known_i.ravel(), known_i.ravel() * n + owner])
    vals = np.concatenate([known_v.ravel(), known_v.ravel()])
    keys, first = np.unique(keys, return_index=True)
    vals = vals[first]
    want = rows * n + cols
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    found = keys[pos] == want
    out = np.where(found, vals[pos], 0.0)
    miss = np.flatnonzero(~found)
    step = max(1, CHUNK_ELEMENTS // max(1, x.shape[1]))
    for s in range(0, len(miss), step):
        m = miss[s : s + step]
        r = torch.from_numpy(rows[m]).to(x.device)
        c = torch.from_numpy(cols[m]).to(x.device)
        d = (sq[r] + sq[c] - 2.0 * (x[r] * x[c]).sum(1)).clamp_(min=0.0)
        d[r == c] = 0.0
        out[m] = d.cpu().numpy()
    return out


def re_ranking_features(
    qf: Any,
    gf: Any,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    device: str | torch.device | None = None,
    block_size: int | None = None,
) -> np.ndarray:
    """k-reciprocal re-ranked query x gallery distances (float32) from features.

    Equals ``re_ranking(euclid(qf, gf), euclid(qf, qf), euclid(gf, gf), ...)`` with plain
    Euclidean distances (up to float rounding and the order of exactly tied neighbours),
    without any dense N x N matrix. Runs in the features' dtype (float32, or float64 when
    given float64) on ``device`` (default: CUDA when available); the distance matrix is
    computed in ``block_size`` x ``block_size`` tiles (default 2048).
    """
    dev = resolve_device(device)
    q, g = as_float_tensor(qf, dev), as_float_tensor(gf, dev)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"feature dimensions differ: query {q.shape[1]}, gallery {g.shape[1]}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    n_q, n_g = len(q), len(g)
    if n_q == 0 or n_g == 0:
        return np.zeros((n_q, n_g), dtype=np.float32)
    x = torch.cat([q.to(dtype), g.to(dtype)])
    n = len(x)
    sq = (x * x).sum(1)
    width = max(_widths(n, k1, k2))
    block = block_size or BLOCK
    values, index, maxima, qg = _neighbours_and_maxima(x, sq, n_q, width, block)
    rank = index.cpu().numpy()
    mx = maxima.cpu().numpy()
    known_v = values.cpu().numpy()

    def pair_dist(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        d2 = _pair_sq_distances(x, sq, known_v, rank, rows, cols).astype(mx.dtype)
        return (d2 / mx[rows]).astype(np.float32)

    qg /= mx[:n_q, None].astype(qg.dtype)
    original = qg.astype(np.float32, copy=False)
    del qg
    return rerank_from_neighbours(rank, pair_dist, original, k1, k2, lambda_value)
