"""Speed of genreid's ranking metrics vs a plain per-query argsort loop, Market-1501 size.

The default problem has Market-1501's test split sizes: 3,368 queries x 19,732 gallery
images (bounding_box_test), of which 2,798 are junk (identity -1, removed by the protocol)
and 2,793 are distractors (identity 0, kept as non-matches); the other 14,141 belong to 750
identities; 6 cameras, 2,048-d features (torchreid's 15,913 is the gallery after junk
removal). Three feature qualities are run, each on its own distance matrix:

- ``easy``: near-perfect features (rank-1 about 0.99, mAP about 0.78);
- ``realistic``: noisier features, mAP about 0.3-0.5 (a mid-training or weak model);
- ``random``: features without identity information (mAP about 0), the worst case for an
  evaluation that only looks below each query's hardest true match.

For each, the distance computation is timed on its own, then ``evaluate_rank`` (best of
``--repeats``) and a torchreid-style loop (stable argsort per row, removal, cumsum; run
once) on the same matrix; CMC, mAP and mINP must agree to 1e-6. A table and a JSON last
line are printed.

    python benchmarks/eval_speed.py                       # all three, Market size
    python benchmarks/eval_speed.py --difficulty random   # one of them
    python benchmarks/eval_speed.py --small               # quick run
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import numpy as np
import torch

from genreid.eval.ranking import compute_distance, evaluate_rank

MARKET = {
    "n_query": 3368,
    "n_gallery": 19732,
    "n_junk": 2798,
    "n_distractors": 2793,
    "n_ids": 750,
    "dim": 2048,
}
# The gallery as torchreid counts it (junk already removed): 3,368 x 15,913, 751 ids.
MARKET_NO_JUNK = {
    "n_query": 3368,
    "n_gallery": 15913,
    "n_junk": 0,
    "n_distractors": 2793,
    "n_ids": 751,
    "dim": 2048,
}
SMALL = {
    "n_query": 400,
    "n_gallery": 2400,
    "n_junk": 340,
    "n_distractors": 340,
    "n_ids": 100,
    "dim": 256,
}
# Feature noise (identity means have unit scale) and identity signal per difficulty.
DIFFICULTIES = {
    "easy": {"noise": 3.2, "signal": 1.0},
    "realistic": {"noise": 3.7, "signal": 1.0},
    "random": {"noise": 1.0, "signal": 0.0},
}
SMALL_NOISE = {"easy": 1.9, "realistic": 2.3}  # 256-d features: same mAP with less noise


def make_market_problem(
    n_query: int,
    n_gallery: int,
    n_ids: int,
    dim: int,
    seed: int = 0,
    noise: float = 3.2,
    n_junk: int | None = None,
    n_distractors: int | None = None,
    signal: float = 1.0,
) -> dict[str, np.ndarray]:
    """Synthetic re-ID split: identity means plus noise, 6 cameras, distractors and junk.

    ``n_junk`` gallery images get identity -1 and ``n_distractors`` identity 0 (defaults:
    1/16 and 1/6 of the gallery); their features are weakened copies of random identities.
    ``signal`` scales the identity means (0: random features, no identity information).
    """
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_ids + 1, dim), dtype=np.float32) * np.float32(signal)
    n_junk = n_gallery // 16 if n_junk is None else n_junk
    n_distr = n_gallery // 6 if n_distractors is None else n_distractors
    n_true = n_gallery - n_junk - n_distr
    if n_true < 1:
        raise ValueError(f"{n_junk} junk + {n_distr} distractors leave no identity images")
    g_pids = np.concatenate(
        [rng.integers(1, n_ids + 1, n_true), np.zeros(n_distr, int), np.full(n_junk, -1)]
    )
    q_pids = rng.integers(1, n_ids + 1, n_query)
    g_feat_ids = np.where(g_pids > 0, g_pids, rng.integers(1, n_ids + 1, n_gallery))
    scale = np.where(g_pids > 0, 1.0, 0.3).astype(np.float32)[:, None]

    def feats(ids: np.ndarray, s: np.ndarray | float) -> np.ndarray:
        x = rng.standard_normal((len(ids), dim), dtype=np.float32) * np.float32(noise)
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
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return out, best


def run_one(difficulty: str, size: dict, args: argparse.Namespace) -> dict:
    """Build one problem, time the distances, ``evaluate_rank`` and the reference loop."""
    level = dict(DIFFICULTIES[difficulty])
    if args.small and difficulty in SMALL_NOISE:
        level["noise"] = SMALL_NOISE[difficulty]
    p = make_market_problem(**size, **level)
    labels = (p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])
    distance = partial(compute_distance, p.pop("qf"), p.pop("gf"), metric=args.metric)
    dist, t_dist = _best_of(
        partial(distance, device=args.device),
        1 if args.device == "cpu" else 2,  # on CUDA the first call also starts the context
    )
    del distance  # the features
    ranked = torch.from_numpy(dist).to(args.device) if args.device != "cpu" else dist
    (cmc, mAP, pq), t_fast = _best_of(
        partial(evaluate_rank, ranked, *labels, max_rank=50, return_per_query=True), args.repeats
    )
    del ranked
    (r_cmc, r_map, r_minp), t_ref = _best_of(partial(reference_eval, dist, *labels), 1)
    diff = max(float(np.abs(cmc - r_cmc).max()), abs(mAP - r_map), abs(pq["mINP"] - r_minp))
    return {
        "difficulty": difficulty,
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


def main() -> None:
    """Run the benchmark and print a table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small problem, quick run")
    parser.add_argument(
        "--no-junk",
        action="store_true",
        help="torchreid's Market gallery (15,913 images, junk removed) instead of 19,732",
    )
    parser.add_argument(
        "--difficulty",
        choices=[*DIFFICULTIES, "all"],
        default="all",
        help="feature quality: easy, realistic, random or all (default: all three)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best is kept)")
    parser.add_argument("--metric", default="cosine", help="distance metric")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (distances and ranking)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = SMALL if args.small else MARKET_NO_JUNK if args.no_junk else MARKET
    levels = list(DIFFICULTIES) if args.difficulty == "all" else [args.difficulty]
    runs = [run_one(level, size, args) for level in levels]

    print(
        f"{'difficulty':<11}{'rank-1':>7}{'mAP':>7}{'mINP':>7}{'distance s':>11}"
        f"{'genreid s':>10}{'loop s':>8}{'speed-up':>9}{'max|diff|':>10}"
    )
    for r in runs:
        print(
            f"{r['difficulty']:<11}{r['rank1']:>7.4f}{r['mAP']:>7.4f}{r['mINP']:>7.4f}"
            f"{r['distance_s']:>11.3f}{r['genreid_eval_s']:>10.3f}{r['reference_eval_s']:>8.3f}"
            f"{r['speedup']:>8.1f}x{r['max_abs_diff']:>10.1e}"
        )
    agree = all(r["agree_1e-6"] for r in runs)
    result = {
        "benchmark": "eval_speed",
        **size,
        "threads": args.threads,
        "device": args.device,
        "metric": args.metric,
        "repeats": args.repeats,
        "agree_1e-6": agree,
        "runs": runs,
    }
    print(json.dumps(result))
    if not agree:
        raise SystemExit("genreid and the reference loop disagree")


if __name__ == "__main__":
    main()
