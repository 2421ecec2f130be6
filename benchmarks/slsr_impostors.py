"""Where does SLSR help or hurt? Retrieval against look-alikes vs against other clusters.

An analysis of a finished ``genreid slsr`` folder, not a speed target. SLSR spreads a
generated image's label over the identities of one cluster, which should teach "not this
cluster" more than "which of these look-alikes". For every seed, each test image gets the
cluster of the nearest training-cluster centre in that seed's baseline raw features (fixed for
every method, so the split favours the baseline on the "other" side); each query's AP is then
computed twice: against its true matches plus only same-cluster impostors, and plus only
other-cluster impostors (Market protocol: same-camera true matches are dropped).

    python benchmarks/slsr_impostors.py runs/slsr_synth
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from genreid.core.config import load_config
from genreid.data.datasets import load_dataset
from genreid.data.records import ImageRecord
from genreid.engine.clustering import raw_features
from genreid.engine.slsr import SlsrConfig, dataset_root, method_names


def average_precision(dist: np.ndarray, match: np.ndarray) -> float | None:
    """AP of one ranked list (None without a true match)."""
    m = match[np.argsort(dist, kind="stable")]
    if not m.any():
        return None
    precision = np.cumsum(m) / np.arange(1, len(m) + 1)
    return float((precision * m).sum() / m.sum())


def split_ap(z: dict[str, np.ndarray], qc: np.ndarray, gc: np.ndarray) -> tuple[float, float]:
    """Mean AP against same-cluster impostors only, and against other-cluster ones only."""
    qf = z["qf"] / np.linalg.norm(z["qf"], axis=1, keepdims=True)
    gf = z["gf"] / np.linalg.norm(z["gf"], axis=1, keepdims=True)
    dist = 1 - qf @ gf.T
    same, other = [], []
    for i in range(len(qf)):
        same_cam = (z["g_pids"] == z["q_pids"][i]) & (z["g_camids"] == z["q_camids"][i])
        valid = ~same_cam & (z["g_pids"] >= 0)
        match = (z["g_pids"] == z["q_pids"][i]) & valid
        for keep, acc in ((gc == qc[i], same), (gc != qc[i], other)):
            sel = match | (valid & ~match & keep)
            ap = average_precision(dist[i][sel], match[sel])
            if ap is not None:
                acc.append(ap)
    return float(np.mean(same)), float(np.mean(other))


def seed_scores(seed_dir: Path, cfg: SlsrConfig, root: str, methods: list[str]) -> dict:
    """Per method: (same-cluster AP, other-cluster AP) for one seed."""
    train = {
        str(Path(r.path).resolve()): r
        for r in load_dataset(cfg.data.dataset, root, **cfg.data.options).train
        if r.pid >= 0
    }
    rows = list(csv.DictReader((seed_dir / "clusters/clusters.csv").open()))
    records = [train[str(Path(r["path"]).resolve())] for r in rows]
    labels = np.array([int(r["cluster"]) for r in rows])
    feats = raw_features(seed_dir / "baseline", records, "cpu")
    centres = np.stack([feats[labels == c].mean(0) for c in range(labels.max() + 1)])

    def nearest_cluster(paths: np.ndarray) -> np.ndarray:
        recs = [ImageRecord(path=str(p), pid=0, camid=0, role="query") for p in paths]
        x = raw_features(seed_dir / "baseline", recs, "cpu")
        return ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)

    ref = np.load(seed_dir / "baseline/features.npz", allow_pickle=True)
    qc, gc = nearest_cluster(ref["q_paths"]), nearest_cluster(ref["g_paths"])
    out = {}
    for m in methods:
        z = dict(np.load(seed_dir / m / "features.npz", allow_pickle=True))
        assert list(z["q_paths"]) == list(ref["q_paths"]), f"{m}: another query order"
        out[m] = split_ap(z, qc, gc)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline", type=Path, help="a finished `genreid slsr` output folder")
    args = ap.parse_args()
    cfg = load_config(SlsrConfig, args.pipeline / "config.yaml")
    root = dataset_root(cfg, args.pipeline)
    methods = [m for m in method_names(cfg) if (args.pipeline / "seed_0" / m).is_dir()]
    scores = {m: ([], []) for m in methods}
    for seed in cfg.seeds:
        for m, (s, o) in seed_scores(args.pipeline / f"seed_{seed}", cfg, root, methods).items():
            scores[m][0].append(s)
            scores[m][1].append(o)
    print(f"{args.pipeline}: {len(cfg.seeds)} seeds, mean AP % (± std over seeds)")
    print("| method | vs same-cluster impostors | vs other-cluster impostors |")
    print("|---|---|---|")
    for m, (s, o) in scores.items():
        s, o = 100 * np.array(s), 100 * np.array(o)
        print(
            f"| {m} | {s.mean():.1f} ± {s.std(ddof=1):.1f} | {o.mean():.1f} ± {o.std(ddof=1):.1f} |"
        )


if __name__ == "__main__":
    main()
