"""CMC, mAP and mINP of a query x gallery distance matrix, without sorting whole rows.

Only the ranks of each query's true matches matter, so instead of an argsort per row the
evaluation compares each row with its hardest true match's distance (one vectorised pass,
in blocks of rows), keeps the few gallery items below it, and places them among the true
matches with a binary search. Ranks are those of a *stable* ascending sort of the row: equal
distances are ordered by gallery index (``np.argsort(row, kind="stable")``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

PROTOCOLS: tuple[str, ...] = ("market", "cuhk03_classic")
AP_KINDS: tuple[str, ...] = ("standard", "trapezoid")
BLOCK_ELEMENTS = 1 << 24  # distance-matrix entries compared per block of query rows


def _labels(x: Any, name: str, n: int) -> np.ndarray:
    """Integer label vector of length ``n``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x).astype(np.int64).ravel()
    if a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} entries, the distance matrix needs {n}")
    return a


def _as_distmat(distmat: Any) -> np.ndarray | torch.Tensor:
    """A 2-D float32/float64 matrix: NumPy on the CPU, a tensor kept on its CUDA device."""
    if isinstance(distmat, torch.Tensor):
        t = distmat.detach()
        if t.device.type != "cpu":
            if t.dim() != 2:
                raise ValueError(f"distmat must be 2-D (n_query, n_gallery), got {tuple(t.shape)}")
            return t.to(torch.float64 if t.dtype == torch.float64 else torch.float32)
        distmat = t.numpy()
    d = np.asarray(distmat)
    if d.ndim != 2:
        raise ValueError(f"distmat must be 2-D (n_query, n_gallery), got {d.shape}")
    if d.dtype == np.float64 or not np.issubdtype(d.dtype, np.floating):
        return np.ascontiguousarray(d, dtype=np.float64)
    return np.ascontiguousarray(d, dtype=np.float32)


def _row(dist: np.ndarray | torch.Tensor, q: int) -> np.ndarray:
    """One row of the distance matrix as a NumPy array."""
    return dist[q].cpu().numpy() if isinstance(dist, torch.Tensor) else dist[q]


def _same_pid_pairs(q_pids: np.ndarray, g_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (query, gallery) index pairs of one identity; junk (-1) never pairs."""
    order = np.argsort(g_pids, kind="stable")
    sorted_pids = g_pids[order]
    lo = np.searchsorted(sorted_pids, q_pids, "left")
    counts = np.searchsorted(sorted_pids, q_pids, "right") - lo
    counts[q_pids == -1] = 0
    qi = np.repeat(np.arange(len(q_pids)), counts)
    first = np.cumsum(counts) - counts
    gi = order[np.repeat(lo - first, counts) + np.arange(counts.sum())]
    return qi, gi


def _orderable(d: np.ndarray) -> np.ndarray:
    """Non-negative int64 keys of float32 values with the same order (-0.0 == 0.0)."""
    bits = (d.astype(np.float32) + np.float32(0.0)).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -1 - bits, bits + 2**31)  # 0 <= key < 2**32


def _gather(dist: np.ndarray | torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Entries ``dist[rows, cols]`` as a NumPy array."""
    if isinstance(dist, np.ndarray):
        return dist[rows, cols]
    r = torch.from_numpy(rows).to(dist.device)
    c = torch.from_numpy(cols).to(dist.device)
    return dist[r, c].cpu().numpy()


def _below(block: np.ndarray | torch.Tensor, thr: np.ndarray):
    """Row, column and value of the entries of ``block`` at most their row's threshold."""
    if isinstance(block, np.ndarray):
        flat = np.flatnonzero(block <= thr[:, None].astype(block.dtype))
        vals = block.reshape(-1)[flat]
    else:
        t = torch.from_numpy(thr).to(block.device, block.dtype)
        flat_t = torch.nonzero((block <= t[:, None]).view(-1)).squeeze(1)
        vals = block.reshape(-1)[flat_t].cpu().numpy()
        flat = flat_t.cpu().numpy()
    r = flat // block.shape[1]
    return r, flat - r * block.shape[1], vals


def _negatives_below(
    dist: np.ndarray | torch.Tensor,
    thresh: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    valid: np.ndarray,
):
    """Yield (rows, cols, distances) of kept non-matches with distance <= the row threshold."""
    n_q, n_g = dist.shape
    step = max(1, BLOCK_ELEMENTS // max(1, n_g))
    for start in range(0, n_q, step):
        stop = min(n_q, start + step)
        if not valid[start:stop].any():
            continue
        r, c, vals = _below(dist[start:stop], thresh[start:stop])
        r += start
        gp = g_pids[c]
        keep = (gp != q_pids[r]) & (gp != -1)
        yield r[keep], c[keep], vals[keep]


def _count_less(pd, pg, lo, hi, nd, nc) -> np.ndarray:
    """For each i, how many positives in ``lo[i]:hi[i]`` have (distance, index) < (nd, nc)."""
    lengths = hi - lo
    owner = np.repeat(np.arange(len(lo)), lengths)
    idx = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths - lo, lengths)
    d, c = nd[owner], nc[owner]
    less = (pd[idx] < d) | ((pd[idx] == d) & (pg[idx] < c))
    return np.bincount(owner, weights=less, minlength=len(lo)).astype(np.int64)


def _positive_ranks(dist, pq, pg, pd, thresh, q_pids, g_pids, valid):
    """Positives sorted by (query, distance, gallery index), their index j among the query's
    true matches and their 0-based rank among its kept gallery items.

    Each kept non-match below the query's threshold is placed among the sorted positives by
    a binary search on (query, float32 distance) integer keys; equal keys (ties, or float64
    values equal once rounded) are settled exactly by (distance, gallery index).
    """
    n_q = dist.shape[0]
    order = np.lexsort((pg, pd, pq))
    pq, pg, pd = pq[order], pg[order], pd[order]
    pkey = (pq << 32) | _orderable(pd)
    counts = np.bincount(pq, minlength=n_q)
    rowstart = np.cumsum(counts) - counts
    hist = np.zeros(len(pq) + n_q, dtype=np.int64)
    for r, c, v in _negatives_below(dist, thresh, q_pids, g_pids, valid):
        nkey = (r << 32) | _orderable(v)
        left = np.searchsorted(pkey, nkey, "left")
        tie = np.flatnonzero(pkey[np.minimum(left, len(pkey) - 1)] == nkey)
        if len(tie):
            right = np.searchsorted(pkey, nkey[tie], "right")
            left[tie] += _count_less(pd, pg, left[tie], right, v[tie], c[tie])
        hist += np.bincount(left + r, minlength=len(hist))
    # slot left + r: row r owns slots rowstart[r] + r ... rowstart[r] + counts[r] + r
    cpad = np.concatenate(([0], np.cumsum(hist)))
    g = np.arange(len(pq))
    j = g - rowstart[pq]
    ranks = j + cpad[g + pq + 1] - cpad[rowstart[pq] + pq]
    return pq, j, ranks


def _cuhk03_cmc(
    dist: np.ndarray | torch.Tensor,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    valid: np.ndarray,
    max_rank: int,
    seed: int,
    repeats: int,
) -> np.ndarray:
    """Per-query CMC with one random gallery image per identity, averaged over repeats."""
    rng = np.random.default_rng(seed)
    kept = np.flatnonzero(g_pids != -1)
    order = kept[np.argsort(g_pids[kept], kind="stable")]
    pids, starts, sizes = np.unique(g_pids[order], return_index=True, return_counts=True)
    ks = np.arange(max_rank)
    out = np.zeros((int(valid.sum()), max_rank))
    for n, q in enumerate(np.flatnonzero(valid)):
        row = _row(dist, q)
        pos = np.flatnonzero((g_pids == q_pids[q]) & (g_camids != q_camids[q]))
        own = np.searchsorted(pids, q_pids[q])
        pick = starts + (rng.random((repeats, len(pids))) * sizes).astype(np.int64)
        cols = order[pick]
        p = pos[rng.integers(0, len(pos), size=repeats)][:, None]
        d, dp = row[cols], row[p]
        before = (d < dp) | ((d == dp) & (cols < p))
        before[:, own] = False
        rank = before.sum(1)
        out[n] = (rank[:, None] <= ks[None, :]).mean(0)
    return out


def evaluate_rank(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    protocol: str = "market",
    return_per_query: bool = False,
    ap: str = "standard",
    seed: int = 0,
    repeats: int = 10,
) -> tuple[np.ndarray, float] | tuple[np.ndarray, float, dict[str, Any]]:
    """CMC curve and mAP (and per-query AP / INP, mINP) of a query x gallery distance matrix.

    Market-1501 evaluation as in torchreid and fast-reid: for each query, gallery images of
    the same identity *and* camera are removed, as are junk images (gallery identity -1);
    true matches are the remaining images of the query's identity (distractors, e.g. identity
    0, stay as non-matches). Queries without a true match are skipped (``ValueError`` when
    none has one). Gallery items are ranked by ascending distance, ties by gallery index.

    - ``cmc[k]``: fraction of valid queries with a true match within the top ``k + 1``; when
      ``max_rank`` exceeds the gallery size a warning is issued and the curve keeps its
      length, its tail repeating the value at the gallery size (it cannot change there).
    - ``ap="standard"``: non-interpolated AP, the mean over true matches of the precision at
      their ranks (torchreid, fast-reid). ``ap="trapezoid"``: the interpolated AP of the
      Market-1501 MATLAB ``compute_AP.m``, sum over true matches of
      ``(old_precision + precision) / 2 / n_true``, where ``old_precision`` is the precision
      just before the match (``j / r`` for the ``j``-th match, 0-based, at 0-based rank ``r``,
      1 at rank 0): it averages the precision at and just before each match; as the
      precision just before is never higher, it is never above the standard AP, and lower
      whenever a true match follows a miss (a lone match at rank 2: 1/4 instead of 1/2).
    - INP = (number of true matches) / (1-based rank of the last true match), per query;
      mINP is its mean (Ye et al., "Deep learning for person re-identification", fast-reid).
    - ``protocol="cuhk03_classic"``: the CMC draws one gallery image per identity (among that
      query's kept images) at random, ``repeats`` times with ``seed``, and averages (the old
      CUHK03 protocol, as torchreid's ``eval_cuhk03``); AP and INP use the full ranked list.

    Returns ``(cmc, mAP)``, plus with ``return_per_query`` a dict: ``ap`` and ``inp`` (over
    valid queries, in query order), ``valid`` (bool mask over all queries), ``mINP`` and
    ``first_rank`` (0-based rank of each valid query's first true match).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if ap not in AP_KINDS:
        raise ValueError(f"unknown ap {ap!r}; choose one of {', '.join(AP_KINDS)}")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    if protocol == "cuhk03_classic" and repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    dist = _as_distmat(distmat)
    n_q, n_g = dist.shape
    q_pids, q_camids = _labels(q_pids, "q_pids", n_q), _labels(q_camids, "q_camids", n_q)
    g_pids, g_camids = _labels(g_pids, "g_pids", n_g), _labels(g_camids, "g_camids", n_g)
    if max_rank > n_g:
        warnings.warn(
            f"max_rank={max_rank} exceeds the gallery size {n_g}; CMC values beyond rank "
            f"{n_g} repeat the value at rank {n_g}",
            stacklevel=2,
        )

    pq, pg = _same_pid_pairs(q_pids, g_pids)
    keep = g_camids[pg] != q_camids[pq]
    pq, pg = pq[keep], pg[keep]
    n_true = np.bincount(pq, minlength=n_q)
    valid = n_true > 0
    if not valid.any():
        raise ValueError(
            "no query has a true match in the gallery (same identity, another camera, not "
            "junk): CMC and mAP are undefined"
        )
    pd = _gather(dist, pq, pg)
    thresh = np.full(n_q, -np.inf)
    np.maximum.at(thresh, pq, pd.astype(np.float64))
    pq, j, ranks = _positive_ranks(dist, pq, pg, pd, thresh, q_pids, g_pids, valid)

    m = n_true[pq]
    precision = (j + 1) / (ranks + 1)
    if ap == "trapezoid":
        old = np.where(ranks > 0, j / np.maximum(ranks, 1), 1.0)
        precision = (old + precision) / 2
    ap_all = np.bincount(pq, weights=precision / m, minlength=n_q)
    last = np.flatnonzero(j == m - 1)
    first = np.flatnonzero(j == 0)
    inp = n_true[pq[last]] / (ranks[last] + 1)
    first_rank = ranks[first]

    if protocol == "market":
        hits = np.bincount(np.minimum(first_rank, max_rank), minlength=max_rank + 1)
        cmc = np.cumsum(hits[:max_rank]) / len(first_rank)
    else:
        cmc = _cuhk03_cmc(
            dist, q_pids, g_pids, q_camids, g_camids, valid, max_rank, seed, repeats
        ).mean(0)
    ap_valid = ap_all[valid]
    mAP = float(ap_valid.mean())
    if not return_per_query:
        return cmc, mAP
    per_query = {
        "ap": ap_valid,
        "inp": inp,
        "valid": valid,
        "mINP": float(inp.mean()),
        "first_rank": first_rank,
    }
    return cmc, mAP, per_query
