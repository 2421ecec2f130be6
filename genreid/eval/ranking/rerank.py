"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) with sparse encodings.

:func:`re_ranking` takes the three distance matrices and reproduces the authors' Python code
(zhunzhong07/person-re-ranking, ``python-version/re_ranking_ranklist.py``): distances are
squared, divided by their column maximum and transposed; neighbours come from a full-row
``np.argsort``; R*(p) adds the k-reciprocal set (k = round(k1 / 2)) of each k1-reciprocal
neighbour sharing more than 2/3 of it; V holds exp(-d) weights normalised per row, averaged
over the k2 nearest rows (query expansion); Jaccard = 1 - m / (2 - m), m = sum min(V_p, V_g);
the result is jaccard * (1 - lambda) + d * lambda for the query x gallery block.

:func:`re_ranking_features` gives the same result from features (Euclidean distances) without
dense N x N matrices: neighbours and column maxima come from the upper triangle of the
distance matrix in tiles (torch, CUDA when available; float32 products through oneDNN on the
CPU), each tile merged into the neighbour lists below their current k-th value; R* comes from
sparse products of the reciprocal-neighbour matrices, V is a SciPy CSR matrix, query
expansion a sparse product and the Jaccard distance a min-sum over an inverted index (NumPy
in threads on the CPU, torch on a CUDA device).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from genreid.core.distributed import resolve_device
from genreid.eval.ranking.distance import as_float_tensor

CHUNK_ELEMENTS = 1 << 22  # scratch entries per chunk of the blockwise array operations
BLOCK = 2048  # tile size of the blockwise distance matrix in re_ranking_features
JACCARD_TERMS = 1 << 18  # min-sum terms per query batch on the CPU: it stays in cache
JACCARD_TERMS_TORCH = 1 << 24  # the same on a torch device, where large batches pay


def _half(k1: int) -> int:
    """The candidates' k, ``int(np.around(k1 / 2))`` as in the reference (ties to even)."""
    return int(np.around(k1 / 2.0))


def _widths(n: int, k1: int, k2: int) -> tuple[int, int, int]:
    """Widths of the reference's slices ``[:k1 + 1]``, ``[:round(k1 / 2) + 1]``, ``[:k2]``."""
    return min(k1 + 1, n), min(_half(k1) + 1, n), min(k2, n)


def _reciprocal(rank: np.ndarray, width: int) -> sp.csr_matrix:
    """Sparse ``R[i, j] = 1``: j is a k-reciprocal neighbour of i (k + 1 = width); symmetric.

    ``F[i, j]``: j is among i's ``width`` nearest; R = F and F.T, an elementwise product.
    """
    n = len(rank)
    ones = np.ones(n * width, dtype=np.int32)
    F = sp.csr_matrix(
        (ones, rank[:, :width].ravel(), np.arange(0, n * width + 1, width)), shape=(n, n)
    )
    return F.multiply(F.T).tocsr()


def expansion_sets(rank: np.ndarray, k1: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the sets R*(i), sorted by row then column.

    ``rank[i]`` lists i's nearest items, nearest first (at least ``k1 + 1`` columns, or all N).
    With R = R(., k1) and H = R(., round(k1 / 2)) as sparse matrices, ``(R @ H)[i, j]`` is
    ``|R(i) & H(j)|`` (H is symmetric); H(j) joins R*(i) for the j in R(i) where it exceeds
    2/3 ``|H(j)|``, i.e. R* = R | (accepted @ H), with SciPy's sparse products.
    """
    n = len(rank)
    w1, wh, _ = _widths(n, k1, 1)
    R, H = _reciprocal(rank, w1), _reciprocal(rank, wh)
    common = (R @ H).multiply(R).tocoo()
    take = common.data > 2.0 / 3 * np.diff(H.indptr)[common.col]
    accepted = sp.csr_matrix(
        (np.ones(int(take.sum()), np.int32), (common.row[take], common.col[take])), shape=(n, n)
    )
    star = (R + accepted @ H).tocsr()
    star.sort_indices()
    return np.repeat(np.arange(n), np.diff(star.indptr)), star.indices.astype(np.int64)


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


def _min_overlap(Vq: sp.csr_matrix, gT: sp.csr_matrix) -> np.ndarray:
    """Dense ``m[i, j] = sum_k min(Vq[i, k], Vg[j, k])`` via the inverted index ``gT = Vg.T``.

    Row k of ``gT`` (CSR) lists the gallery items that hold k; SciPy gathers it once per
    stored ``Vq[i, k]`` and the minima are summed per (i, j) with one ``bincount``.
    """
    n_q, n_g = Vq.shape[0], gT.shape[1]
    terms = gT[Vq.indices]
    length = np.diff(terms.indptr)
    val = np.minimum(np.repeat(Vq.data.astype(np.float32), length), terms.data)
    flat = np.repeat(np.repeat(np.arange(n_q, dtype=np.int64) * n_g, np.diff(Vq.indptr)), length)
    flat += terms.indices
    m = np.bincount(flat, weights=val, minlength=n_q * n_g)  # int64 when there are no terms
    return m.astype(np.float64, copy=False).reshape(n_q, n_g)


def _min_overlap_torch(
    q_ptr: torch.Tensor,
    q_idx: torch.Tensor,
    q_val: torch.Tensor,
    g_ptr: torch.Tensor,
    g_idx: torch.Tensor,
    g_val: torch.Tensor,
    n_g: int,
) -> torch.Tensor:
    """:func:`_min_overlap` in torch on the tensors' device (float64, n_q x n_g), from the CSR
    arrays of the query rows (``q_ptr`` from 0) and of the inverted index ``Vg.T``."""
    lo = g_ptr.index_select(0, q_idx)
    length = g_ptr.index_select(0, q_idx + 1) - lo
    entry = torch.repeat_interleave(length)  # each term's stored query entry
    start = torch.cumsum(length, 0) - length
    pos = torch.arange(len(entry), device=entry.device) + (lo - start).index_select(0, entry)
    val = torch.minimum(q_val.index_select(0, entry), g_val.index_select(0, pos))
    owner = torch.repeat_interleave(torch.diff(q_ptr)) * n_g
    flat = owner.index_select(0, entry) + g_idx.index_select(0, pos)
    m = torch.zeros((len(q_ptr) - 1) * n_g, dtype=torch.float64, device=flat.device)
    return m.index_add_(0, flat, val.to(torch.float64)).view(-1, n_g)


def _query_batches(Vq: sp.csr_matrix, gT: sp.csr_matrix, terms: int) -> list[tuple[int, int]]:
    """Consecutive query ranges of about ``terms`` min-sum terms each (at least one query)."""
    n_q, n_g = Vq.shape[0], gT.shape[1]
    owner = np.repeat(np.arange(n_q), np.diff(Vq.indptr))
    per_query = np.bincount(owner, weights=np.diff(gT.indptr)[Vq.indices], minlength=n_q)
    budget = np.cumsum(per_query).astype(np.int64) // max(1, terms)
    rows_cap = max(1, terms // max(1, n_g))
    spans, s = [], 0
    while s < n_q:
        e = min(n_q, s + rows_cap, max(s + 1, int(np.searchsorted(budget, budget[s] + 1))))
        spans.append((s, e))
        s = e
    return spans


def _mix_rows(
    Vq: sp.csr_matrix,
    gT: sp.csr_matrix,
    original: np.ndarray,
    lambda_value: float,
    span: tuple[int, int],
) -> None:
    """Query rows ``s:e`` of ``original`` <- jaccard * (1 - lambda) + original * lambda."""
    s, e = span
    m = _min_overlap(Vq[s:e], gT)
    np.divide(m, 2.0 - m, out=m)
    np.subtract(1.0, m, out=m)  # the Jaccard distance 1 - m / (2 - m)
    m *= 1 - lambda_value
    m += original[s:e] * lambda_value
    original[s:e] = m


def _mix_rows_torch(
    Vq: sp.csr_matrix,
    g_arrays: list[torch.Tensor],
    original: np.ndarray,
    lambda_value: float,
    span: tuple[int, int],
) -> None:
    """:func:`_mix_rows` in torch on the device of ``g_arrays`` (the inverted index's CSR)."""
    s, e = span
    lo, hi = Vq.indptr[s], Vq.indptr[e]
    q_ptr = (Vq.indptr[s : e + 1] - lo).astype(np.int64)
    q_arrays = [
        torch.from_numpy(a).to(g_arrays[0].device)
        for a in (q_ptr, Vq.indices[lo:hi].astype(np.int64), Vq.data[lo:hi].astype(np.float32))
    ]
    m = _min_overlap_torch(*q_arrays, *g_arrays, original.shape[1])
    m = (1.0 - m / (2.0 - m)) * (1 - lambda_value)
    m += torch.from_numpy(original[s:e]).to(m.device) * lambda_value
    original[s:e] = m.to(torch.float32).cpu().numpy()


def _jaccard_mix(
    Vq: sp.csr_matrix,
    gT: sp.csr_matrix,
    original: np.ndarray,
    lambda_value: float,
    device: torch.device | None,
    terms: int,
) -> None:
    """``original <- jaccard * (1 - lambda) + original * lambda``, batch by batch of queries:
    NumPy/SciPy on the CPU when ``device`` is None, the batches spread over torch's number of
    threads (they release the GIL), else torch on ``device``."""
    spans = _query_batches(Vq, gT, terms)
    if device is None:
        with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
            list(pool.map(functools.partial(_mix_rows, Vq, gT, original, lambda_value), spans))
        return
    g_arrays = [
        torch.from_numpy(a).to(device)
        for a in (gT.indptr.astype(np.int64), gT.indices.astype(np.int64), gT.data)
    ]
    for span in spans:
        _mix_rows_torch(Vq, g_arrays, original, lambda_value, span)


def rerank_from_neighbours(
    rank: np.ndarray,
    pair_dist: Callable[[np.ndarray, np.ndarray], np.ndarray],
    original: np.ndarray,
    k1: int,
    k2: int,
    lambda_value: float,
    work_elements: int | None = None,
    device: torch.device | None = None,
) -> np.ndarray:
    """Re-ranked distances from neighbour lists; ``original`` (n_q x n_g) is overwritten.

    ``rank``: each item's nearest items (N rows); ``pair_dist(rows, cols)``: the normalised
    original distances of any pairs; ``original``: their query x gallery block, float32.
    The Jaccard step runs in torch on ``device``, or with NumPy/SciPy on the CPU when None;
    queries go in batches of about ``work_elements`` (query, gallery, k) terms (default:
    small enough to stay in cache on the CPU, large on a torch device).
    """
    n = len(rank)
    n_q = original.shape[0]
    rows, cols = expansion_sets(rank, k1)
    V = _query_expansion(_encode(rows, cols, pair_dist(rows, cols), n), rank, k2)
    Vq, gT = V[:n_q].tocsr(), V[n_q:].T.tocsr().astype(np.float32)
    gT.sort_indices()
    terms = work_elements or (JACCARD_TERMS if device is None else JACCARD_TERMS_TORCH)
    _jaccard_mix(Vq, gT, original, lambda_value, device, terms)
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


@functools.cache
def _onednn_linear() -> bool:
    """Whether torch's oneDNN linear kernel runs here (x86 builds): float32 products at float32
    accuracy, 2.2x faster than ``torch.mm`` on an AMD EPYC, where MKL's sgemm runs AVX2 code."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        a = torch.arange(6.0).view(2, 3)
        out = torch.ops.mkldnn._linear_pointwise(a, a, None, "none", [], "")
    except (AttributeError, RuntimeError, TypeError):
        return False
    return bool(torch.equal(out, a @ a.t()))


def _gemm_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T``: oneDNN for float32 on the CPU where available, else ``torch.mm``."""
    if a.device.type == "cpu" and a.dtype == torch.float32 and _onednn_linear():
        return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    return torch.mm(a, b.t())


def _flat_nonzero(mask: torch.Tensor) -> torch.Tensor:
    """Flat (C-order) indices of the True entries; NumPy's is 3x faster than torch's on CPU."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return torch.nonzero(mask.reshape(-1), as_tuple=True)[0]


def _merge_nearest(
    values: torch.Tensor, index: torch.Tensor, d: torch.Tensor, first: int, by_column: bool
) -> None:
    """Merge the entries of tile ``d`` below each list's current k-th smallest into the k
    nearest so far (``values``/``index``: unsorted, inf where unknown; updated in place).

    The lists belong to the rows of ``d`` (candidates numbered from ``first`` by column) or,
    ``by_column``, to its columns (numbered from ``first`` by row). The threshold leaves few
    candidates, so a top-k over them replaces a top-k over the tile.
    """
    k, dev, cols = values.shape[1], d.device, d.shape[1]
    if by_column:
        flat = _flat_nonzero(d < values.amax(1))
        flat = flat[torch.argsort(flat % cols, stable=True)]
        cand, owner = flat // cols, flat % cols
    else:
        flat = _flat_nonzero(d < values.amax(1, keepdim=True))
        owner, cand = flat // cols, flat % cols
    if len(flat) == 0:
        return
    count = torch.bincount(owner)
    rows = torch.nonzero(count, as_tuple=True)[0]
    count = count[rows]
    pos = torch.repeat_interleave(torch.arange(len(rows), device=dev), count)
    start = torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
    slot = torch.arange(len(owner), device=dev) - start + k
    cand_v = values.new_full((len(rows), k + int(count.max())), float("inf"))
    cand_i = index.new_zeros(cand_v.shape)
    cand_v[:, :k], cand_i[:, :k] = values[rows], index[rows]
    cand_v[pos, slot], cand_i[pos, slot] = d.reshape(-1)[flat], cand + first
    best, pick = torch.topk(cand_v, k, dim=1, largest=False, sorted=False)
    values[rows], index[rows] = best, torch.gather(cand_i, 1, pick)


def _keep_query_gallery(qg: torch.Tensor, d: torch.Tensor, s: int, t: int, n_q: int) -> None:
    """Copy the query x gallery part of tile ``d`` (rows from ``s``, columns from ``t``) into
    ``qg`` (n_q x n_g, on the CPU)."""
    rows, first = min(s + d.shape[0], n_q) - s, max(t, n_q)
    if rows > 0 and t + d.shape[1] > first:
        qg[s : s + rows, first - n_q : t + d.shape[1] - n_q].copy_(d[:rows, first - t :])


def _augmented(
    q: torch.Tensor, g: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[x, |x|^2, 1]`` and ``[-2x, 1, |x|^2]`` for the items x (queries, then gallery): the
    product of a row of one and a row of the other is their squared distance."""
    n_q, dim = q.shape
    left = torch.empty((n_q + len(g), dim + 2), dtype=dtype, device=q.device)
    left[:n_q, :dim], left[n_q:, :dim] = q, g
    x = left[:, :dim]
    left[:, dim], left[:, dim + 1] = (x * x).sum(1), 1.0
    right = torch.empty_like(left)
    torch.mul(x, -2.0, out=right[:, :dim])
    right[:, dim], right[:, dim + 1] = 1.0, left[:, dim]
    return left, right


def _neighbours_and_maxima(
    left: torch.Tensor, right: torch.Tensor, n_q: int, width: int, block: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Each item's ``width`` nearest (squared distance, index), sorted, and largest squared
    distance, plus the query x gallery squared distances, from :func:`_augmented` features.

    Only the upper triangle of the N x N matrix is computed, in ``block`` x ``block`` tiles,
    each by one product ``left[rows] . right[cols]``. The diagonal tiles come first: a top-k
    gives every item its nearest within its block. Each other tile then updates its rows'
    and (transposed) its columns' lists by :func:`_merge_nearest`.
    """
    n = len(left)
    spans = [(s, min(n, s + block)) for s in range(0, n, block)]
    values = torch.full((n, width), float("inf"), dtype=left.dtype, device=left.device)
    index = torch.zeros((n, width), dtype=torch.int64, device=left.device)
    maxima = torch.empty(n, dtype=left.dtype, device=left.device)
    qg = np.empty((n_q, n - n_q), dtype=np.float32 if left.dtype == torch.float32 else np.float64)
    for s, e in spans:
        d = _gemm_nt(left[s:e], right[s:e])
        d.diagonal().zero_()  # exact self-distances
        maxima[s:e] = d.amax(1)
        k = min(width, e - s)
        values[s:e, :k], pick = torch.topk(d, k, dim=1, largest=False, sorted=False)
        index[s:e, :k] = pick + s
        _keep_query_gallery(torch.from_numpy(qg), d, s, s, n_q)
    for a, (s, e) in enumerate(spans):
        for t, u in spans[a + 1 :]:
            d = _gemm_nt(left[s:e], right[t:u])
            maxima[s:e] = torch.maximum(maxima[s:e], d.amax(1))
            maxima[t:u] = torch.maximum(maxima[t:u], d.amax(0))
            _merge_nearest(values[s:e], index[s:e], d, t, by_column=False)
            _merge_nearest(values[t:u], index[t:u], d, s, by_column=True)
            _keep_query_gallery(torch.from_numpy(qg), d, s, t, n_q)
    torch.from_numpy(qg).clamp_(min=0.0)
    values, order = torch.sort(values.clamp_(min=0.0), dim=1, stable=True)
    return values, torch.gather(index, 1, order), maxima, qg


def _pair_sq_distances(
    x: torch.Tensor,
    sq: torch.Tensor,
    known_v: np.ndarray,
    known_i: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
) -> np.ndarray:
    """Squared distances of pairs: looked up in the neighbour lists (the row's first, then
    the column's), the rest computed from the features."""
    out = np.zeros(len(rows), dtype=known_v.dtype)
    found = np.zeros(len(rows), dtype=bool)
    step = max(1, CHUNK_ELEMENTS // known_i.shape[1])
    for s in range(0, len(rows), step):
        part = slice(s, s + step)
        for a, b in ((rows[part], cols[part]), (cols[part], rows[part])):
            hit = known_i[a] == b[:, None]
            new = hit.any(1) & ~found[part]
            out[part][new] = known_v[a[new], hit[new].argmax(1)]
            found[part] |= new
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
    given float64) on ``device`` (default: CUDA when available), the Jaccard step too on a
    CUDA device; the distance matrix is computed in ``block_size`` x ``block_size`` tiles
    (default 2048).
    """
    dev = resolve_device(device)
    q, g = as_float_tensor(qf, dev), as_float_tensor(gf, dev)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"feature dimensions differ: query {q.shape[1]}, gallery {g.shape[1]}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    n_q, n_g = len(q), len(g)
    if n_q == 0 or n_g == 0:
        return np.zeros((n_q, n_g), dtype=np.float32)
    left, right = _augmented(q, g, dtype)
    x, sq = left[:, :-2], left[:, -2]
    width = max(_widths(len(x), k1, k2))
    block = block_size or BLOCK
    values, index, maxima, qg = _neighbours_and_maxima(left, right, n_q, width, block)
    del right  # from here on only the features themselves (in left) are needed
    rank = index.cpu().numpy()
    mx = maxima.cpu().numpy()
    known_v = values.cpu().numpy()

    def pair_dist(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        d2 = _pair_sq_distances(x, sq, known_v, rank, rows, cols).astype(mx.dtype)
        return (d2 / mx[rows]).astype(np.float32)

    torch.from_numpy(qg).div_(maxima.cpu()[:n_q, None])
    original = qg.astype(np.float32, copy=False)
    del qg
    jaccard_device = dev if dev.type == "cuda" else None
    return rerank_from_neighbours(
        rank, pair_dist, original, k1, k2, lambda_value, device=jaccard_device
    )
