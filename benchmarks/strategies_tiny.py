"""Every label strategy at tiny scale, from the CLI, on synthetic pedestrians + generated images.

A smoke-and-accuracy sweep (not a paper table): trains the baseline, then each strategy with
the same generated folder, and prints rank-1 / mAP / mINP per strategy. ``smprl`` takes its
fixed labels from the baseline run. ``slsr`` needs clusters: k-means (k=3) on the baseline's
features of the real training images; when the generated folder has no clusters (one GAN for
all), each generated image is given the cluster of its nearest k-means center in the
baseline's feature space and linked into a new folder. That stands in for SLSR's one GAN per
cluster (``genreid gan train data.clusters=...``) to keep this sweep within minutes.

    python benchmarks/strategies_tiny.py --root runs/quickstart/synthetic \\
        --generated runs/gan_synth_samples --out runs/strategies_tiny
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

STRATEGIES = (
    "baseline", "lsr", "lsro", "all_in_one", "pseudo_label", "smprl", "dmprl1", "dmprl2",
    "slsr", "fapl_onehot", "fapl_dist",
)  # fmt: skip


def train(args: argparse.Namespace, strategy: str, extra: list[str]) -> dict:
    """One `genreid train` run via the CLI; returns its results.json."""
    out = Path(args.out) / strategy
    if not (out / "results.json").is_file():
        cmd = [
            sys.executable, "-m", "genreid.cli", "train", "--config", args.config,
            f"data.root={args.root}", f"labels.strategy={strategy}", f"seed={args.seed}",
            f"train.epochs={args.epochs}", "train.progress=false", "--out", str(out),
            *args.set, *extra,
        ]  # fmt: skip
        if strategy != "baseline":
            cmd.append(f"data.generated={args.generated_for.get(strategy, args.generated)}")
        subprocess.run(cmd, check=True)
    return json.loads((out / "results.json").read_text())


def make_clusters(args: argparse.Namespace, k: int = 3) -> tuple[Path, Path]:
    """k-means clusters of the real training images and a cluster-tagged generated folder."""
    import numpy as np
    from sklearn.cluster import KMeans

    from genreid.data.datasets import load_dataset
    from genreid.data.generated import read_generated, write_manifest
    from genreid.eval.ranking.extract import load_trained_model, reid_features

    model, data, _, device = load_trained_model(Path(args.out) / "baseline")
    size = data.size
    train_records = load_dataset(data.dataset, args.root).train
    feats = reid_features(model, train_records, size, device=device).numpy()
    km = KMeans(n_clusters=k, n_init=10, random_state=args.seed).fit(feats)
    clusters_csv = Path(args.out) / "clusters.csv"
    with clusters_csv.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "cluster"])
        for rec, c in zip(train_records, km.labels_, strict=True):
            w.writerow([str(Path(rec.path).resolve()), int(c)])
    gen = read_generated(args.generated)
    if all(r.cluster is not None for r in gen):
        return clusters_csv, Path(args.generated)
    gen_feats = reid_features(model, gen, size, device=device).numpy()
    nearest = np.argmin(((gen_feats[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1), 1)
    folder = Path(args.out) / "generated_clustered"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (rec, c) in enumerate(zip(gen, nearest, strict=True)):
        link = folder / f"{i:06d}{Path(rec.path).suffix}"
        if not link.exists():
            os.symlink(Path(rec.path).resolve(), link)
        rows.append({"path": link.name, "cluster": int(c)})
    write_manifest(folder, rows)
    return clusters_csv, folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="synthetic (Market-layout) dataset")
    ap.add_argument("--generated", required=True, help="folder with manifest.csv")
    ap.add_argument("--out", default="runs/strategies_tiny")
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--set", nargs="*", default=[], help="more key=value training overrides")
    args = ap.parse_args()
    args.generated_for = {}
    wanted = [s for s in args.strategies.split(",") if s]
    rows = []
    t_start = time.time()
    for strategy in ["baseline"] + [s for s in wanted if s != "baseline"]:
        extra: list[str] = []
        if strategy == "smprl":
            extra.append(f"labels.options.smprl_from={Path(args.out) / 'baseline'}")
        if strategy == "slsr":
            clusters, folder = make_clusters(args)
            args.generated_for["slsr"] = str(folder)
            extra.append(f"labels.options.clusters={clusters}")
        t0 = time.time()
        res = train(args, strategy, extra)
        final = res.get("final", {})
        rows.append({
            "strategy": strategy,
            "rank1": final.get("rank1"), "mAP": final.get("mAP"), "mINP": final.get("mINP"),
            "generated": res.get("generated_images"), "seconds": round(time.time() - t0, 1),
        })  # fmt: skip
    print(f"{'strategy':<14}{'rank-1':>8}{'mAP':>8}{'mINP':>8}{'gen':>7}{'s':>8}")
    for r in rows:
        print(
            f"{r['strategy']:<14}{100 * r['rank1']:>8.1f}{100 * r['mAP']:>8.1f}"
            f"{100 * r['mINP']:>8.1f}{r['generated'] or 0:>7}{r['seconds']:>8}"
        )
    print(json.dumps({"benchmark": "strategies_tiny", "epochs": args.epochs, "seed": args.seed,
                      "seconds": round(time.time() - t_start, 1), "rows": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
