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
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_speed import make_market_problem  # noqa: E402

from genreid.eval.ranking.rerank import (  # noqa: E402
    re_ranking,
    re_ranking_features,
)
from genreid.eval.ranking.rerank_reference import re_ranking_dense, re_ranking_loop  # noqa: E402

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


BASELINE_REV = "ed48f71"  # genreid/eval/rerank.py before issue 27 (torch.mm, top-k per tile)


def baseline_rerank(rev: str = BASELINE_REV) -> types.ModuleType:
    """``genreid.eval.rerank`` as it was at ``rev``, read from git (the old/new reference)."""
    repo = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "show", f"{rev}:genreid/eval/rerank.py"], cwd=repo,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    src = src.replace("genreid.eval.", "genreid.eval.ranking.")  # its siblings moved there
    module = types.ModuleType(f"rerank_{rev}")
    sys.modules[module.__name__] = module  # dataclasses and annotations look it up
    exec(compile(src, f"{rev}:genreid/eval/rerank.py", "exec"), module.__dict__)
    return module


def old_vs_new(size: dict, dtype: str, reps: int) -> dict:
    """The baseline (``BASELINE_REV``, from git) and the current ``re_ranking_features``
    alternately in this process (the same load for both): median seconds of each, their
    ratio and the largest difference."""
    p = make_market_problem(**size)
    qf, gf = p["qf"].astype(dtype), p["gf"].astype(dtype)
    fns = {"old": baseline_rerank().re_ranking_features, "new": re_ranking_features}
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


if __name__ == "__main__":
    main()
