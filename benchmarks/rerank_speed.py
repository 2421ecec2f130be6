"""Speed, peak memory and agreement of k-reciprocal re-ranking implementations.

1. Market-1501 size (3,368 query + 15,913 gallery, 2,048-d features with identity
   structure): ``re_ranking_features`` including its distances, in a subprocess of its own so
   that its peak RSS is isolated (targets on 2 CPU cores, issue 27: <= 5 s, <= 2.5 GB).
2. Old vs new: the previous ``re_ranking_features`` (a copy at the end of this file, issue 27's
   baseline) and the current one, alternately ``--reps`` times in one subprocess, so that
   both see the same load: median seconds and their ratio, at Market size (float32) and on
   the smaller problem below (float64).
3. A smaller problem (about 3,000 items, float64 features): ``re_ranking_features`` against
   ``re_ranking`` on the Euclidean distance matrices, the dense version written from the
   paper and the authors'-code loop; each in its own subprocess (time, peak RSS), then the
   largest absolute differences (target <= 1e-5) and the time / memory ratios.

    python benchmarks/rerank_speed.py            # full run
    python benchmarks/rerank_speed.py --small    # quick run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_speed import make_market_problem  # noqa: E402

from genreid.core.distributed import resolve_device  # noqa: E402
from genreid.eval.distance import as_float_tensor  # noqa: E402
from genreid.eval.rerank import (  # noqa: E402
    BLOCK,
    CHUNK_ELEMENTS,
    _encode,
    _query_expansion,
    _widths,
    re_ranking,
    re_ranking_features,
)
from genreid.eval.rerank_reference import re_ranking_dense, re_ranking_loop  # noqa: E402

BIG = {"n_query": 3368, "n_gallery": 15913, "n_ids": 751, "dim": 2048}
COMPARE = {"n_query": 500, "n_gallery": 2500, "n_ids": 120, "dim": 2048}
SMALL_BIG = {"n_query": 600, "n_gallery": 2800, "n_ids": 150, "dim": 512}
SMALL_COMPARE = {"n_query": 100, "n_gallery": 500, "n_ids": 30, "dim": 256}
METHODS = ("features", "features_fp32", "distances", "dense_paper", "authors_loop")


def _rss_mb() -> float:
    """Current resident set size of this process, in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _euclid64(a: np.ndarray, b: np.ndarray, same: bool) -> np.ndarray:
    """Plain float64 Euclidean distances (zero diagonal when ``a`` is ``b``)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    d = np.sqrt(np.maximum(d, 0.0))
    if same:
        np.fill_diagonal(d, 0.0)
    return d


def worker(method: str, size: dict, out: str | None) -> dict:
    """Run one implementation on the generated problem; time and peak RSS of the call."""
    p = make_market_problem(**size)
    qf, gf = p["qf"], p["gf"]
    if method != "features_fp32":
        qf, gf = qf.astype(np.float64), gf.astype(np.float64)
    base_rss = _rss_mb()
    t0 = time.perf_counter()
    if method.startswith("features"):
        result = re_ranking_features(qf, gf, device="cpu")
    else:
        dists = (_euclid64(qf, gf, False), _euclid64(qf, qf, True), _euclid64(gf, gf, True))
        fn = {"distances": re_ranking, "dense_paper": re_ranking_dense}.get(method, re_ranking_loop)
        result = fn(*dists)
    seconds = time.perf_counter() - t0
    if out:
        np.save(out, result)
    return {
        "method": method,
        "seconds": seconds,
        "peak_rss_mb": _peak_mb(),
        "call_rss_mb": _peak_mb() - base_rss,
        "base_rss_mb": base_rss,
    }


def old_vs_new(size: dict, dtype: str, reps: int) -> dict:
    """The baseline and the current ``re_ranking_features`` alternately in this process (the
    same load for both): median seconds of each, their ratio and the largest difference."""
    p = make_market_problem(**size)
    qf, gf = p["qf"].astype(dtype), p["gf"].astype(dtype)
    fns = {"old": old_re_ranking_features, "new": re_ranking_features}
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    out = {}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            out[name] = fn(qf, gf, device="cpu")
            seconds[name].append(time.perf_counter() - t0)
    old, new = statistics.median(seconds["old"]), statistics.median(seconds["new"])
    return {
        "dtype": dtype,
        "old_s": old,
        "new_s": new,
        "old_over_new": old / new,
        "seconds": seconds,
        "max_abs_diff": float(np.abs(out["old"] - out["new"]).max()),
    }


def run_worker(
    method: str, size: dict, threads: int, out: str | None = None, extra: tuple[str, ...] = ()
) -> dict:
    """Run :func:`worker` (or :func:`old_vs_new`) in a fresh Python process; its JSON report."""
    cmd = [sys.executable, __file__, "--worker", method, "--size", json.dumps(size)]
    cmd += ["--threads", str(threads)] + (["--out", out] if out else []) + list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"worker {method} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run both parts and print a table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small problems, quick run")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--skip-loop", action="store_true", help="skip the authors' loop")
    parser.add_argument("--reps", type=int, default=3, help="old/new alternations (0: skip)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker == "old_vs_new":
        print(json.dumps(old_vs_new(json.loads(args.size), args.dtype, args.reps)))
        return
    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.size), args.out)))
        return

    big_size, cmp_size = (SMALL_BIG, SMALL_COMPARE) if args.small else (BIG, COMPARE)
    big = run_worker("features_fp32", big_size, args.threads)
    ab, ab_sizes = {}, {"big": (big_size, "float32"), "compare": (cmp_size, "float64")}
    for name, (size, dtype) in ab_sizes.items() if args.reps > 0 else ():
        extra = ("--dtype", dtype, "--reps", str(args.reps))
        ab[name] = run_worker("old_vs_new", size, args.threads, extra=extra)
    methods = [m for m in METHODS if not (args.skip_loop and m == "authors_loop")]
    reports, outputs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for m in methods:
            path = str(Path(tmp) / f"{m}.npy")
            reports[m] = run_worker(m, cmp_size, args.threads, path)
            outputs[m] = np.load(path)
    ref = outputs["authors_loop" if "authors_loop" in outputs else "distances"]
    diffs = {m: float(np.abs(o - ref).max()) for m, o in outputs.items()}
    diffs["features_vs_dense_paper"] = float(
        np.abs(outputs["features"] - outputs["dense_paper"]).max()
    )
    fast = reports["features"]
    n_big = big_size["n_query"] + big_size["n_gallery"]
    n_cmp = cmp_size["n_query"] + cmp_size["n_gallery"]
    print(f"re_ranking_features, N = {n_big} ({big_size['dim']}-d float32, {args.threads} threads)")
    print(f"  time {big['seconds']:.2f} s (incl. distances), peak RSS {big['peak_rss_mb']:.0f} MB")
    for name, r in ab.items():
        n_ab = ab_sizes[name][0]["n_query"] + ab_sizes[name][0]["n_gallery"]
        print(
            f"old vs new in one process, N = {n_ab} {r['dtype']}, median of {args.reps}: "
            f"old {r['old_s']:.2f} s, new {r['new_s']:.2f} s, old / new {r['old_over_new']:.2f}, "
            f"max |old - new| {r['max_abs_diff']:.1e}"
        )
    print(f"\ncomparison, N = {n_cmp} ({cmp_size['dim']}-d), max |diff| vs the authors' code")
    print(f"{'method':<16}{'seconds':>10}{'call RSS MB':>13}{'peak MB':>10}{'max|diff|':>12}")
    for m in methods:
        r = reports[m]
        print(
            f"{m:<16}{r['seconds']:>10.2f}{r['call_rss_mb']:>13.0f}{r['peak_rss_mb']:>10.0f}"
            f"{diffs[m]:>12.2e}"
        )
    ratios = {
        f"{m}_time_ratio": reports[m]["seconds"] / fast["seconds"]
        for m in methods
        if m != "features"
    }
    ratios.update(
        {
            f"{m}_memory_ratio": reports[m]["call_rss_mb"] / max(fast["call_rss_mb"], 1.0)
            for m in methods
            if m != "features"
        }
    )
    print(
        "ratios to re_ranking_features (float64): "
        + ", ".join(f"{k} {v:.1f}" for k, v in ratios.items())
    )
    exact = max(diffs[m] for m in methods if m != "features_fp32")
    result = {
        "benchmark": "rerank_speed",
        "threads": args.threads,
        "big": {**big_size, "seconds": round(big["seconds"], 3)},
        "big_peak_rss_mb": round(big["peak_rss_mb"], 1),
        "big_ok": big["seconds"] <= 5 and big["peak_rss_mb"] <= 2560,
        **{f"old_over_new_{name}": round(r["old_over_new"], 3) for name, r in ab.items()},
        "old_vs_new": ab,
        "compare": {**cmp_size, **{m: round(reports[m]["seconds"], 3) for m in methods}},
        "max_abs_diff": exact,
        "max_abs_diff_fp32_features": diffs["features_fp32"],
        "features_vs_dense_paper": diffs["features_vs_dense_paper"],
        "diff_ok": exact <= 1e-5,
        **{k: round(v, 2) for k, v in ratios.items()},
    }
    print(json.dumps(result))


# ---- baseline: re_ranking_features before issue 27 (genreid/eval/rerank.py at ed48f71) ------
# torch.mm products, a top-k per tile and per transposed tile, R* by broadcast comparisons, the
# Jaccard step in batches of 4M terms over a CSC matrix; kept only for the old/new ratio.


def _old_reciprocal_mask(rank: np.ndarray, width: int) -> np.ndarray:
    """``mask[i, a]``: ``rank[i, a]`` is a k-reciprocal neighbour of ``i`` (k + 1 = width)."""
    n = len(rank)
    fwd = rank[:, :width]
    out = np.empty(fwd.shape, dtype=bool)
    step = max(1, CHUNK_ELEMENTS // (width * width))
    for s in range(0, n, step):
        e = min(n, s + step)
        out[s:e] = (fwd[fwd[s:e]] == np.arange(s, e)[:, None, None]).any(-1)
    return out


def old_expansion_sets(rank: np.ndarray, k1: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the sets R*(i), sorted by row then column.

    ``rank[i]`` lists i's nearest items, nearest first (at least ``k1 + 1`` columns, or all N).
    """
    n = len(rank)
    w1, wh, _ = _widths(n, k1, 1)
    fwd, hfwd = rank[:, :w1], rank[:, :wh]
    recip = _old_reciprocal_mask(rank, w1)
    half_recip = _old_reciprocal_mask(rank, wh)
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


def _old_min_overlap(Vq: sp.csr_matrix, Vg: sp.csc_matrix) -> np.ndarray:
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


def old_rerank_from_neighbours(
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
    rows, cols = old_expansion_sets(rank, k1)
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
        m = _old_min_overlap(Vq[s:e], Vg)
        jaccard = 1.0 - m / (2.0 - m)
        original[s:e] = jaccard * (1 - lambda_value) + original[s:e] * lambda_value
        s = e
    return original


def _old_smallest(
    values: list[torch.Tensor], index: list[torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest candidates per row (sorted) among column blocks of candidates."""
    v, i = torch.cat(values, dim=1), torch.cat(index, dim=1)
    best, pick = torch.topk(v, min(k, v.shape[1]), dim=1, largest=False, sorted=True)
    return best, torch.gather(i, 1, pick)


def _old_neighbours_and_maxima(
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
        best, pick = _old_smallest(cand_v, cand_i, width)
        values[s:e], index[s:e] = best.clamp_(min=0.0), pick
    np.maximum(qg, 0.0, out=qg)
    return values, index, maxima, qg


def _old_pair_sq_distances(
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


def old_re_ranking_features(
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
    values, index, maxima, qg = _old_neighbours_and_maxima(x, sq, n_q, width, block)
    rank = index.cpu().numpy()
    mx = maxima.cpu().numpy()
    known_v = values.cpu().numpy()

    def pair_dist(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        d2 = _old_pair_sq_distances(x, sq, known_v, rank, rows, cols).astype(mx.dtype)
        return (d2 / mx[rows]).astype(np.float32)

    qg /= mx[:n_q, None].astype(qg.dtype)
    original = qg.astype(np.float32, copy=False)
    del qg
    return old_rerank_from_neighbours(rank, pair_dist, original, k1, k2, lambda_value)


if __name__ == "__main__":
    main()
