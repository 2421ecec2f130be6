"""Speed of genreid's ranking metrics vs a plain per-query argsort loop, Market-1501 size.

Builds 3,368 query x 15,913 gallery synthetic features (2,048-d, 751 identities, 6 cameras,
distractors with identity 0 and junk with identity -1), times the distance computation on
its own, then ``evaluate_rank`` and a torchreid-style loop (argsort per row, removal,
cumsum) on the same matrix, checks they agree and prints a table and a JSON last line.

    python benchmarks/eval_speed.py            # Market size
    python benchmarks/eval_speed.py --small    # quick run
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from genreid.eval import compute_distance, evaluate_rank

MARKET = {"n_query": 3368, "n_gallery": 15913, "n_ids": 751, "dim": 2048}
SMALL = {"n_query": 400, "n_gallery": 2000, "n_ids": 100, "dim": 256}


def make_market_problem(
    n_query: int, n_gallery: int, n_ids: int, dim: int, seed: int = 0, noise: float = 3.2
) -> dict[str, np.ndarray]:
    """Synthetic re-ID split: identity means plus noise, 6 cameras, distractors and junk."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_ids + 1, dim), dtype=np.float32)
    n_junk, n_distr = n_gallery // 16, n_gallery // 6
    n_true = n_gallery - n_junk - n_distr
    g_pids = np.concatenate(
        [rng.integers(1, n_ids + 1, n_true), np.zeros(n_distr, int), np.full(n_junk, -1)]
    )
    q_pids = rng.integers(1, n_ids + 1, n_query)
    g_feat_ids = np.where(g_pids > 0, g_pids, rng.integers(1, n_ids + 1, n_gallery))
    scale = np.where(g_pids > 0, 1.0, 0.3).astype(np.float32)[:, None]

    def feats(ids: np.ndarray, s: np.ndarray | float) -> np.ndarray:
        x = rng.standard_normal((len(ids), dim), dtype=np.float32) * noise
        return x + means[ids] * s

    return {
        "qf": feats(q_pids, 1.0),
        "gf": feats(g_feat_ids, scale),
        "q_pids": q_pids,
        "g_pids": g_pids,
        "q_camids": rng.integers(0, 6, n_query),
        "g_camids": rng.integers(0, 6, n_gallery),
    }


def reference_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """Plain per-query loop: argsort each row, drop same-id-same-camera and junk, cumsum."""
    all_cmc, all_ap, all_inp = [], [], []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        gp, gc = g_pids[order], g_camids[order]
        keep = ~(((gp == q_pids[i]) & (gc == q_camids[i])) | (gp == -1))
        raw = (gp[keep] == q_pids[i]).astype(np.int64)
        if not raw.any():
            continue
        cum = raw.cumsum()
        cmc = np.minimum(cum, 1)[:max_rank]
        all_cmc.append(np.pad(cmc, (0, max_rank - len(cmc)), mode="edge"))
        hits = np.flatnonzero(raw)
        all_ap.append(np.mean(cum[hits] / (hits + 1.0)))
        all_inp.append(len(hits) / (hits[-1] + 1.0))
    return np.mean(all_cmc, 0), float(np.mean(all_ap)), float(np.mean(all_inp))


def _best_of(fn, repeats: int):
    """(result, best wall time in seconds) over ``repeats`` calls."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def main() -> None:
    """Run the benchmark and print a table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small problem, quick run")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best is kept)")
    parser.add_argument("--metric", default="cosine", help="distance metric")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (distances and ranking)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = SMALL if args.small else MARKET
    p = make_market_problem(**size)
    labels = (p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])

    dist, t_dist = _best_of(
        lambda: compute_distance(p["qf"], p["gf"], metric=args.metric, device=args.device),
        1 if args.device == "cpu" else 2,  # on CUDA the first call also starts the context
    )
    ranked = torch.from_numpy(dist).to(args.device) if args.device != "cpu" else dist
    (cmc, mAP, pq), t_fast = _best_of(
        lambda: evaluate_rank(ranked, *labels, max_rank=50, return_per_query=True), args.repeats
    )
    (r_cmc, r_map, r_minp), t_ref = _best_of(lambda: reference_eval(dist, *labels), 1)
    diff = max(float(np.abs(cmc - r_cmc).max()), abs(mAP - r_map), abs(pq["mINP"] - r_minp))
    result = {
        "benchmark": "eval_speed",
        **size,
        "threads": args.threads,
        "device": args.device,
        "metric": args.metric,
        "distance_s": round(t_dist, 4),
        "genreid_eval_s": round(t_fast, 4),
        "reference_eval_s": round(t_ref, 4),
        "speedup": round(t_ref / t_fast, 2),
        "max_abs_diff": diff,
        "agree_1e-6": diff <= 1e-6,
        "rank1": round(float(cmc[0]), 4),
        "mAP": round(mAP, 4),
        "mINP": round(pq["mINP"], 4),
        "valid_queries": int(pq["valid"].sum()),
    }
    print(f"{'step':<34}{'seconds':>10}")
    print(f"{'distance (' + args.metric + ')':<34}{t_dist:>10.3f}")
    print(f"{'genreid evaluate_rank (best)':<34}{t_fast:>10.3f}")
    print(f"{'reference per-query argsort loop':<34}{t_ref:>10.3f}")
    print(
        f"speedup {t_ref / t_fast:.1f}x, max |diff| {diff:.2e}, rank-1 {cmc[0]:.4f}, "
        f"mAP {mAP:.4f}, mINP {pq['mINP']:.4f}"
    )
    print(json.dumps(result))
    if diff > 1e-6:
        raise SystemExit("genreid and the reference loop disagree")


if __name__ == "__main__":
    main()
