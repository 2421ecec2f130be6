"""CMC, mAP and mINP of a query x gallery distance matrix, without sorting whole rows.

Only the ranks of each query's true matches matter. One vectorised pass over blocks of
rows compares each row with its hardest true match's distance (the row's threshold), then
each row takes one of two exact paths, whichever a cost model expects to be cheaper:

- *sparse* rows (good features: few gallery items at or below the threshold): the items
  below are kept and placed among the row's sorted true matches by a binary search;
- *dense* rows (weak or random features: many items below): each true match's rank is
  counted directly, comparing the row with every true-match distance at once (or, for a
  query with many true matches, sorting the row's values and searching them).

Ranks are those of a *stable* ascending sort of the row: equal distances are ordered by
gallery index (``np.argsort(row, kind="stable")``). NaN distances raise ``ValueError``;
``+inf`` and ``-inf`` are ordinary distances (ranked last / first, ties by gallery index).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

PROTOCOLS: tuple[str, ...] = ("market", "cuhk03_classic")
AP_KINDS: tuple[str, ...] = ("standard", "trapezoid")
BLOCK_ELEMENTS = 1 << 24  # most distance-matrix entries handled at once (a block of rows)
CPU_BLOCK_ELEMENTS = 1 << 20  # at most this many for NumPy: cache-sized blocks are faster
COMPARE_ELEMENTS = 1 << 21  # comparisons at once on the dense path with NumPy (cache-sized)
# Cost model choosing a row's path: nanoseconds per operation with NumPy on one core of the
# x86 machine the defaults were timed on (Market-1501 sized problems from easy to random
# features, and many true matches per query; see benchmarks/eval_speed.py):
SPARSE_NS = 38.0  # placing one gallery item at or below the threshold (sparse path)
DENSE_ENTRY_NS = 4.0  # copying a kept row entry and building its key (dense path)
COMPARE_NS = 0.5  # comparing a row entry with one true-match distance (dense path)
SORT_NS = 18.0  # sorting a row's values, per entry (dense path, many true matches)


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


def _np(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """A NumPy copy (or the array itself) of ``x``."""
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else x


def _like(x: np.ndarray, ref: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """``x`` as a tensor on ``ref``'s device when ``ref`` is a tensor, else as it is."""
    return torch.from_numpy(x).to(ref.device) if isinstance(ref, torch.Tensor) else x


def _row(dist: np.ndarray | torch.Tensor, q: int) -> np.ndarray:
    """One row of the distance matrix as a NumPy array."""
    return _np(dist[q])


def _nan_error(dist: np.ndarray | torch.Tensor) -> ValueError:
    """The error for a distance matrix holding NaN: how many, and the first one."""
    n_q, n_g = dist.shape
    n_bad, first = 0, -1
    step = max(1, BLOCK_ELEMENTS // max(1, n_g))
    for start in range(0, n_q, step):
        if isinstance(dist, np.ndarray):
            bad = np.isnan(dist[start : start + step]).reshape(-1)
        else:
            bad = _np(torch.isnan(dist[start : start + step]).reshape(-1))
        count = int(np.count_nonzero(bad))
        if count and first < 0:
            first = start * n_g + int(np.argmax(bad))
        n_bad += count
    q, g = divmod(first, n_g)
    return ValueError(
        f"distmat has {n_bad} NaN entr{'y' if n_bad == 1 else 'ies'} of {n_q * n_g} (first at "
        f"query {q}, gallery {g}): check the query and gallery features for NaN/inf values "
        "(+inf and -inf distances themselves are allowed)"
    )


def _segments(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner ``i`` and index ``starts[i] + k`` of every element of the ranges, in order."""
    owner = np.repeat(np.arange(len(starts)), lengths)
    first = np.cumsum(lengths) - lengths
    return owner, np.arange(int(lengths.sum())) - np.repeat(first - starts, lengths)


def _same_pid_pairs(q_pids: np.ndarray, g_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (query, gallery) index pairs of one identity, by query; junk (-1) never pairs."""
    order = np.argsort(g_pids, kind="stable")
    sorted_pids = g_pids[order]
    lo = np.searchsorted(sorted_pids, q_pids, "left")
    counts = np.searchsorted(sorted_pids, q_pids, "right") - lo
    counts[q_pids == -1] = 0
    qi, idx = _segments(lo, counts)
    return qi, order[idx]


def _orderable(d: np.ndarray) -> np.ndarray:
    """Non-negative int64 keys of float32 values with the same order (-0.0 == 0.0).

    float64 values are rounded to float32 first (a monotone map: equal keys may hide
    different values, which callers settle exactly)."""
    with np.errstate(over="ignore"):  # beyond float32's range: +-inf, same order
        bits = (d.astype(np.float32) + np.float32(0.0)).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -1 - bits, bits + 2**31)  # 0 <= key < 2**32


def _stable_keys(v: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """int64 keys of float32 ``v`` at columns ``cols``, ordered by (value, column)."""
    s = (v + np.float32(0.0)).view(np.int32)  # -0.0 -> 0.0
    s = s ^ ((s >> 31) & np.int32(0x7FFFFFFF))  # signed, same order as the floats
    return (s.astype(np.int64) << 32) | cols


def _gather(dist: np.ndarray | torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Entries ``dist[rows, cols]`` as a NumPy array."""
    if isinstance(dist, np.ndarray):
        return dist[rows, cols]
    return _np(dist[_like(rows, dist), _like(cols, dist)])


def _not_above(block: np.ndarray | torch.Tensor, thr: np.ndarray) -> np.ndarray | torch.Tensor:
    """Mask of the entries of ``block`` not above their row's threshold (NaN included)."""
    if isinstance(block, np.ndarray):
        mask = np.greater(block, thr[:, None].astype(block.dtype))
        return np.logical_not(mask, out=mask)
    return ~(block > _like(thr, block).to(block.dtype)[:, None])


def _masked(block: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor):
    """Row, column and value of the entries of ``block`` where ``mask`` holds."""
    if isinstance(block, np.ndarray):
        flat = np.flatnonzero(mask)
        vals = block.reshape(-1)[flat]
    else:
        flat_t = torch.nonzero(mask.view(-1)).squeeze(1)
        vals = _np(block.reshape(-1)[flat_t])
        flat = _np(flat_t)
    r = flat // block.shape[1]
    return r, flat - r * block.shape[1], vals


def _count_less(pd, pg, lo, hi, nd, nc) -> np.ndarray:
    """For each i, how many positives in ``lo[i]:hi[i]`` have (distance, index) < (nd, nc)."""
    owner, idx = _segments(lo, hi - lo)
    d, c = nd[owner], nc[owner]
    less = (pd[idx] < d) | ((pd[idx] == d) & (pg[idx] < c))
    return np.bincount(owner, weights=less, minlength=len(lo)).astype(np.int64)


class _Positives:
    """The true matches sorted by (query, distance, gallery index), with per-query ranges,
    and the removed same-identity-same-camera items; filled with ranks by the two paths."""

    def __init__(self, pq, pg, pd, removed, g_pids, n_q):
        order = np.lexsort((pg, pd, pq))
        self.pq, self.pg, self.pd = pq[order], pg[order], pd[order]
        self.counts = np.bincount(self.pq, minlength=n_q)
        self.rowstart = np.cumsum(self.counts) - self.counts
        self.key = (self.pq << 32) | _orderable(self.pd)
        self.hist = np.zeros(len(self.pq) + n_q, dtype=np.int64)  # sparse path
        self.dense = np.zeros(n_q, dtype=bool)
        self.dense_rank = np.zeros(len(self.pq), dtype=np.int64)
        kept = g_pids != -1
        self.cols = None if kept.all() else np.flatnonzero(kept)  # gallery minus junk
        colpos = np.cumsum(kept) - 1  # gallery index -> index among kept columns
        self.n_cols = int(kept.sum())
        self.pgc = colpos[self.pg]
        rq, rg = removed
        self.rgc = colpos[rg]
        rcounts = np.bincount(rq, minlength=n_q)
        self.rstart, self.rcounts = np.cumsum(rcounts) - rcounts, rcounts


def _compare_passes(dist: np.ndarray | torch.Tensor) -> int:
    """Comparisons per (row entry, true match) on the dense path: float32 NumPy rows use
    exact (distance, column) keys; other rows compare with ``<`` and ``<=`` (ties)."""
    return 1 if isinstance(dist, np.ndarray) and dist.dtype == np.float32 else 2


def _dense_ranks(block, rows: np.ndarray, qrows: np.ndarray, P: _Positives, dist) -> None:
    """Exact 0-based ranks among kept gallery items of the true matches of ``block``'s rows
    ``rows`` (queries ``qrows``), into ``P.dense_rank``.

    The rows are copied without junk columns and with their removed same-camera items set
    to NaN (never below anything). A true match's rank is the number of entries before it
    in (distance, gallery index) order, counted by comparing each entry with all the row's
    true-match distances at once; NumPy rows whose query has many true matches are sorted
    instead and searched. float32 NumPy rows (and float64 ones whose values are all exact
    in float32, e.g. integer distances) compare int64 (distance, column) keys, which
    settles ties in the same comparison; other rows count ``<`` and ``<=`` and settle the
    true matches that tie with another entry by counting equal entries at lower index.
    """
    x = block[_like(rows, block)]
    if bool(x.isnan().any() if isinstance(x, torch.Tensor) else np.isnan(x).any()):
        raise _nan_error(dist)
    if P.cols is not None:
        x = x[:, _like(P.cols, x)]
    if isinstance(x, np.ndarray) and x.dtype == np.float64:
        with np.errstate(over="ignore"):
            x32 = x.astype(np.float32)
        if (x32 == x).all():  # e.g. integer distances: exact keys
            x = x32
    owner, idx = _segments(P.rstart[qrows], P.rcounts[qrows])
    x[_like(owner, x), _like(P.rgc[idx], x)] = float("nan")
    n_cols = x.shape[1]
    budget = COMPARE_ELEMENTS if isinstance(x, np.ndarray) else BLOCK_ELEMENTS
    m = P.counts[qrows]
    passes = _compare_passes(x)
    order = np.argsort(-m, kind="stable")  # most true matches first: little padding
    sort = isinstance(x, np.ndarray) & (COMPARE_NS * passes * m > SORT_NS)
    n_sorted = int(np.count_nonzero(sort))
    lt = np.zeros(len(P.pq), dtype=np.int64)  # entries before the true match
    le = np.zeros(len(P.pq), dtype=np.int64)  # entries at most its distance (itself too)
    i = 0
    while i < len(order):
        if i < n_sorted:
            k = order[i : min(n_sorted, i + max(1, budget // n_cols))]
            owner, src = _segments(P.rowstart[qrows[k]], m[k])
            s = np.sort(x[k], axis=1)  # NaN last, as searchsorted expects
            bounds = np.cumsum(m[k])
            for n, (a, b) in enumerate(zip(bounds - m[k], bounds, strict=True)):
                lt[src[a:b]] = np.searchsorted(s[n], P.pd[src[a:b]], "left")
                le[src[a:b]] = np.searchsorted(s[n], P.pd[src[a:b]], "right")
            i += len(k)
            continue
        width = int(m[order[i]])
        k = order[i : i + max(1, budget // (n_cols * width))]
        owner, src = _segments(P.rowstart[qrows[k]], m[k])
        within = src - np.repeat(P.rowstart[qrows[k]], m[k])  # padded (row, true match)
        if passes == 1:
            xs = _stable_keys(x[k], np.arange(n_cols))[:, None, :]
            vs = np.full((len(k), width), np.iinfo(np.int64).min)  # padding: nothing below
            vs[owner, within] = _stable_keys(P.pd[src].astype(np.float32), P.pgc[src])
            lt[src] = np.count_nonzero(xs < vs[:, :, None], axis=-1)[owner, within]
            le[src] = lt[src] + 1
        else:
            v = np.full((len(k), width), np.nan, dtype=P.pd.dtype)  # padding: never counted
            v[owner, within] = P.pd[src]
            xs, vs = x[_like(k, x)][:, None, :], _like(v, x)[:, :, None]
            lt[src] = _np((xs < vs).sum(-1))[owner, within]
            le[src] = _np((xs <= vs).sum(-1))[owner, within]
        i += len(k)
    owner, src = _segments(P.rowstart[qrows], m)
    rank = lt[src]
    tied = np.flatnonzero(le[src] - rank > 1)  # another kept entry has the same distance
    step = max(1, budget // n_cols)
    cols = _like(np.arange(n_cols), x)
    for a in range(0, len(tied), step):
        t = tied[a : a + step]
        d = _like(P.pd[src[t]], x)[:, None]
        before = cols[None, :] < _like(P.pgc[src[t]], x)[:, None]
        rank[t] += _np(((x[_like(owner[t], x)] == d) & before).sum(-1))
    P.dense_rank[src] = rank


def _positive_ranks(dist, P: _Positives, thresh, q_pids, g_pids, valid):
    """Positives sorted by (query, distance, gallery index), their index j among the query's
    true matches and their 0-based rank among its kept gallery items.

    Per block of rows, the entries not above each row's threshold are marked; a sample of
    the mask estimates how many there are per row, and the cost model sends the row to
    ``_dense_ranks`` or keeps it sparse. Each kept non-match of a sparse row below its
    threshold is placed among the sorted positives by a binary search on (query, float32
    distance) integer keys; equal keys (ties, or float64 values equal once rounded) are
    settled exactly by (distance, gallery index).
    """
    n_q, n_g = dist.shape
    budget = (
        min(BLOCK_ELEMENTS, CPU_BLOCK_ELEMENTS) if isinstance(dist, np.ndarray) else BLOCK_ELEMENTS
    )
    step = max(1, budget // max(1, n_g))
    stride = max(1, n_g // 1024)  # columns sampled to estimate a row's count below
    sort_ns = SORT_NS if isinstance(dist, np.ndarray) else np.inf
    compare_ns = COMPARE_NS * _compare_passes(dist) * P.counts
    dense_ns = P.n_cols * (DENSE_ENTRY_NS + np.minimum(compare_ns, sort_ns))
    for start in range(0, n_q, step):
        stop = min(n_q, start + step)
        block = dist[start:stop]
        mask = _not_above(block, thresh[start:stop])
        below = _np(mask[:, ::stride].sum(1)) * stride
        rows = np.flatnonzero(valid[start:stop] & (below * SPARSE_NS > dense_ns[start:stop]))
        if len(rows):
            _dense_ranks(block, rows, start + rows, P, dist)
            P.dense[start + rows] = True
            mask[_like(rows, mask)] = False
        r, c, v = _masked(block, mask)
        if np.isnan(v).any():
            raise _nan_error(dist)
        r += start
        gp = g_pids[c]
        keep = (gp != q_pids[r]) & (gp != -1)
        r, c, v = r[keep], c[keep], v[keep]
        nkey = (r << 32) | _orderable(v)
        left = np.searchsorted(P.key, nkey, "left")
        tie = np.flatnonzero(P.key[np.minimum(left, len(P.key) - 1)] == nkey)
        if len(tie):
            right = np.searchsorted(P.key, nkey[tie], "right")
            left[tie] += _count_less(P.pd, P.pg, left[tie], right, v[tie], c[tie])
        P.hist += np.bincount(left + r, minlength=len(P.hist))
    # slot left + r: row r owns slots rowstart[r] + r ... rowstart[r] + counts[r] + r
    pq, rowstart = P.pq, P.rowstart
    cpad = np.concatenate(([0], np.cumsum(P.hist)))
    g = np.arange(len(pq))
    j = g - rowstart[pq]
    ranks = j + cpad[g + pq + 1] - cpad[rowstart[pq] + pq]
    return pq, j, np.where(P.dense[pq], P.dense_rank, ranks)


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
    A NaN anywhere in ``distmat`` raises ``ValueError`` with their count and the first
    (query, gallery) index (NaN distances come from NaN/inf features and have no rank);
    ``+inf`` / ``-inf`` are valid distances, ranked after / before all finite ones (e.g. to
    mask pairs out), equal infinities by gallery index like any tie.

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
    removed = (pq[~keep], pg[~keep])
    pq, pg = pq[keep], pg[keep]
    n_true = np.bincount(pq, minlength=n_q)
    valid = n_true > 0
    if not valid.any():
        raise ValueError(
            "no query has a true match in the gallery (same identity, another camera, not "
            "junk): CMC and mAP are undefined"
        )
    pd = _gather(dist, pq, pg)
    if np.isnan(pd).any():
        raise _nan_error(dist)
    thresh = np.full(n_q, -np.inf)
    np.maximum.at(thresh, pq, pd.astype(np.float64))
    positives = _Positives(pq, pg, pd, removed, g_pids, n_q)
    pq, j, ranks = _positive_ranks(dist, positives, thresh, q_pids, g_pids, valid)

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
