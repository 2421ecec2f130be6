"""SLSR's clustering step: k-means on a trained baseline's raw features of the training images.

The feature is the pooled last-conv output (the backbone's, before any head) with no L2
normalisation and no flip sum, as SLSR §4 clusters it. For each k, k-means (scikit-learn,
seeded, several initialisations) and the mean silhouette coefficient twice: on the raw
features (the definition of SLSR Table 2) and on their 2-D PCA projection (what the authors'
released code computes; it gives the paper's high values). Writes the cluster manifests, the
identity sets of every cluster under both rules, the silhouette table, the embedding figure
(SLSR Fig. 4) and a sheet of sample images per cluster.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_mutual_info_score, silhouette_score

from genreid.core.config import load_section
from genreid.core.distributed import resolve_device
from genreid.core.errors import ConfigError
from genreid.core.files import write_json_atomic
from genreid.core.runs import require_run
from genreid.data.clusters import IDENTITY_RULES, cluster_identities, read_cluster_manifest
from genreid.data.config import DataConfig
from genreid.data.dataset import ImageDataset
from genreid.data.datasets import load_dataset
from genreid.data.generated import read_generated
from genreid.data.records import ImageRecord
from genreid.data.transforms import test_transform
from genreid.eval.ranking.extract import extract_features
from genreid.models.loading import load_run_model
from genreid.viz.clusters import cluster_sheet, plot_embedding

SILHOUETTE_SAMPLE = 5000  # silhouettes are O(N^2): above this many images, a seeded sample
PICKS = ("raw", "pca2")


@torch.no_grad()
def raw_features(
    run: str | Path, records: list[ImageRecord], device: str | torch.device = "auto"
) -> np.ndarray:
    """N x D pooled backbone features of ``records`` (eval mode, no flip, not normalised)."""
    run = require_run(run, "baseline training run")
    dev = resolve_device(device)
    model = load_run_model(run, device=dev)
    size = load_section(run / "config.yaml", "data", DataConfig).size
    dataset = ImageDataset(records, test_transform(size))
    return extract_features(lambda x: model.backbone(x).float(), dataset, 128, dev).numpy()


def silhouette_table(
    features: np.ndarray, ks: list[int], seed: int = 0, n_init: int = 10
) -> tuple[list[dict[str, Any]], dict[int, np.ndarray], np.ndarray]:
    """Per k: k-means labels and the mean silhouette on the raw features and in 2-D PCA."""
    if len(features) <= max(ks):
        raise ConfigError(f"{len(features)} images cannot form {max(ks)} clusters")
    pca2 = PCA(n_components=2, random_state=seed).fit_transform(features)
    sample = min(len(features), SILHOUETTE_SAMPLE)
    rows, labels = [], {}
    for k in ks:
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(features)
        labels[k] = km.labels_
        rows.append(
            {
                "k": k,
                "silhouette_raw": float(
                    silhouette_score(features, km.labels_, sample_size=sample, random_state=seed)
                ),
                "silhouette_pca2": float(
                    silhouette_score(pca2, km.labels_, sample_size=sample, random_state=seed)
                ),
                "cluster_sizes": np.bincount(km.labels_, minlength=k).tolist(),
                "inertia": float(km.inertia_),
            }
        )
    return rows, labels, pca2


def write_manifest(path: Path, records: list[ImageRecord], labels: np.ndarray) -> Path:
    """``path,cluster`` rows of the training images (absolute paths)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "cluster"])
        for rec, c in zip(records, labels, strict=True):
            w.writerow([str(Path(rec.path).resolve()), int(c)])
    return path


def identity_sets(records: list[ImageRecord], labels: np.ndarray) -> dict[str, dict[str, Any]]:
    """Both identity-set rules: per cluster the number of images and identities, the sum of
    the set sizes (K when the sets are disjoint), the share of images whose identity is in
    their cluster's set, and the sets themselves."""
    groups: dict[int, list[ImageRecord]] = {}
    for rec, c in zip(records, labels, strict=True):
        groups.setdefault(int(c), []).append(rec)
    out = {}
    for rule in IDENTITY_RULES:
        sets = cluster_identities(groups, rule)
        covered = sum(r.pid in sets[int(c)] for r, c in zip(records, labels, strict=True))
        out[rule] = {
            "sizes": {str(c): len(ids) for c, ids in sorted(sets.items())},
            "total": sum(len(ids) for ids in sets.values()),
            # real images whose own identity is in their cluster's set (majority: how well
            # the clusters follow identities; any: 1 by definition)
            "images_in_own_set": covered / len(records),
            "identities": {str(c): sorted(ids) for c, ids in sorted(sets.items())},
        }
    out["images"] = {str(c): len(recs) for c, recs in sorted(groups.items())}
    return out


def cluster_training_set(
    run: str | Path,
    dataset: str,
    root: str | Path,
    out: str | Path,
    ks: list[int],
    seed: int = 0,
    pick: str = "raw",
    options: dict[str, Any] | None = None,
    device: str = "auto",
    use_k: int | None = None,
) -> dict[str, Any]:
    """The whole clustering step into ``out``; returns (and writes) its summary. ``use_k``
    (one of ``ks``) fixes the k of ``clusters.csv``; otherwise ``pick``'s silhouette picks it."""
    if pick not in PICKS:
        raise ConfigError(f"--pick: expected raw or pca2, got {pick!r}")
    if not ks or min(ks) < 2:
        raise ConfigError(f"--k: expected cluster counts of 2 or more, got {ks}")
    if use_k is not None and use_k not in ks:
        raise ConfigError(f"--use-k: {use_k} is not among the cluster counts {ks}; add it to --k")
    out = Path(out)
    ds = load_dataset(dataset, root, **(options or {}))
    records = [r for r in ds.train if not r.generated and r.pid >= 0]
    feats = raw_features(run, records, device)
    rows, labels, pca2 = silhouette_table(feats, ks, seed)
    for row in rows:  # do clusters follow identities (as SLSR wants) or cameras? (0: chance)
        row["ami_identity"] = float(
            adjusted_mutual_info_score([r.pid for r in records], labels[row["k"]])
        )
        row["ami_camera"] = float(
            adjusted_mutual_info_score([r.camid for r in records], labels[row["k"]])
        )
    key = f"silhouette_{pick}"
    if use_k is not None:
        chosen, picked_by = use_k, "given k"
    elif len(ks) == 1:
        chosen, picked_by = ks[0], "given k"
    else:
        chosen, picked_by = max(rows, key=lambda r: r[key])["k"], f"the highest {key}"
    for k in ks:
        write_manifest(out / f"clusters_k{k}.csv", records, labels[k])
    manifest = write_manifest(out / "clusters.csv", records, labels[chosen])
    sets = identity_sets(records, labels[chosen])
    by_cluster: dict[int, list[str]] = {}
    for rec, c in zip(records, labels[chosen], strict=True):
        by_cluster.setdefault(int(c), []).append(rec.path)
    rng = np.random.default_rng(seed)
    samples = {c: rng.permutation(p)[:12].tolist() for c, p in by_cluster.items()}
    plot_embedding(
        pca2, labels[chosen], out / "embedding.png",
        title=f"{dataset}: 2-D PCA of the baseline's features, k = {chosen}",
    )  # fmt: skip
    cluster_sheet(samples, out / "cluster_samples.png")
    summary = {
        "run": str(run),
        "dataset": dataset,
        "images": len(records),
        "identities": len({r.pid for r in records}),
        "feature_dim": int(feats.shape[1]),
        "seed": seed,
        "silhouette": rows,
        "picked_by": picked_by,
        "k": chosen,
        "manifest": str(manifest),
        "identity_sets": sets,
        "files": {"embedding": "embedding.png", "samples": "cluster_samples.png"},
    }
    write_json_atomic(summary, out / "clusters.json")
    return summary


def check_generated(
    run: str | Path,
    clusters_csv: str | Path,
    dataset: str,
    root: str | Path,
    generated: str | Path,
    options: dict[str, Any] | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Do the samples of cluster c's GAN look like cluster c? In the baseline's raw feature
    space, the share of generated images nearest to their own cluster's centre (chance: the
    share of the largest cluster if they all fall in one), and the tag x nearest confusion.
    SLSR labels a sample by its GAN's cluster, so a low share means the labels say little."""
    ds = load_dataset(dataset, root, **(options or {}))
    records = [r for r in ds.train if not r.generated and r.pid >= 0]
    groups = read_cluster_manifest(clusters_csv, records, root)
    real = [r for recs in groups.values() for r in recs]
    labels = np.array([c for c, recs in groups.items() for _ in recs])
    gen = read_generated(generated)
    tags = np.array([-1 if g.cluster is None else g.cluster for g in gen])
    ids = sorted(groups)
    if not set(tags) <= set(ids):
        raise ConfigError(f"{generated}: generated clusters {sorted(set(tags))} are not {ids}")
    feats = raw_features(run, real, device)
    centres = np.stack([feats[labels == c].mean(0) for c in ids])
    nearest = np.array(ids)[
        ((raw_features(run, gen, device)[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    ]
    confusion = [[int(np.sum((tags == a) & (nearest == b))) for b in ids] for a in ids]
    return {
        "generated": len(gen),
        "nearest_own_centre": float(np.mean(nearest == tags)),
        "largest_tag_share": float(max(np.mean(tags == c) for c in ids)),
        "confusion_tag_by_nearest": confusion,
        "clusters": ids,
    }


def write_generated_check(
    out: Path, dataset: str, root: str, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``check_generated`` of SLSR's seed folder ``out`` (baseline, clusters, generated) into
    ``out/generated_check.json`` with a line on the console, and ``out/generated_samples.png``:
    per cluster a row of real images and one of its samples."""
    res = check_generated(
        out / "baseline", out / "clusters/clusters.csv", dataset, root, out / "generated", options
    )
    with (out / "clusters/clusters.csv").open(newline="") as fh:
        real = [(r["path"], int(r["cluster"])) for r in csv.DictReader(fh)]
    generated = read_generated(out / "generated")
    rows: dict[str, list[str]] = {}
    rng = random.Random(0)
    for c in res["clusters"]:  # a row of real images (drawn at random), then of its samples
        paths = [path for path, k in real if k == c]
        rows[f"cluster {c} real"] = rng.sample(paths, min(12, len(paths)))
        rows[f"cluster {c} GAN"] = [g.path for g in generated if g.cluster == c][:12]
    cluster_sheet(rows, out / "generated_samples.png")
    write_json_atomic(res, out / "generated_check.json")  # last: the check is done
    Console().print(
        f"{100 * res['nearest_own_centre']:.1f}% of generated images lie nearest to their own "
        f"cluster's centre (all in one cluster would give {100 * res['largest_tag_share']:.1f}%)",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip
    return res
