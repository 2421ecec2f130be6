"""SLSR's clustering step: known answers on blobs, raw features, manifests, identity sets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_mutual_info_score as ami
from typer.testing import CliRunner

from genreid.cli import app
from genreid.data.clusters import cluster_identities, read_cluster_manifest
from genreid.data.datasets import load_dataset
from genreid.data.records import ImageRecord, Role
from genreid.engine.clustering import raw_features, silhouette_table
from tests.test_train_engine import make_data, tiny_cfg

pytestmark = pytest.mark.usefixtures("one_thread")


def test_silhouettes_pick_the_true_number_of_blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 10)) * 10
    x = np.concatenate([c + rng.normal(size=(40, 10)) for c in centers])
    rows, labels, pca2 = silhouette_table(x, [2, 3, 4, 5], seed=0)
    best = max(rows, key=lambda r: r["silhouette_raw"])
    assert best["k"] == 3 and best["silhouette_raw"] > 0.8 and best["cluster_sizes"] == [40] * 3
    truth = np.repeat([0, 1, 2], 40)
    assert len({(a, b) for a, b in zip(labels[3], truth, strict=True)}) == 3  # same partition
    assert pca2.shape == (120, 2)
    from sklearn.metrics import silhouette_score

    assert rows[1]["silhouette_raw"] == pytest.approx(silhouette_score(x, labels[3]))


def test_cluster_command_writes_manifests_sets_and_figures(tmp_path):
    from genreid.engine.tasks.reid import train

    root, _ = make_data(tmp_path, ids=6, n_gen=0)
    run = tmp_path / "base"
    train(tiny_cfg(root, None, "train.epochs=1"), run)
    out = tmp_path / "clusters"
    res = CliRunner().invoke(
        app,
        ["cluster", "--run", str(run), "-d", "market1501", "-r", str(root), "--k", "2-3",
         "--out", str(out)],
        env={"COLUMNS": "160"},  # the whole table on one line per row
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "clusters.json").read_text())
    ds = load_dataset("market1501", root)
    train_recs = [r for r in ds.train if r.pid >= 0]
    assert summary["images"] == len(train_recs) and [r["k"] for r in summary["silhouette"]] == [
        2,
        3,
    ]
    k = summary["k"]
    rows = list(csv.DictReader((out / "clusters.csv").open()))
    assert len(rows) == len(train_recs) and len({r["cluster"] for r in rows}) == k
    groups = read_cluster_manifest(out / "clusters.csv", train_recs, root)
    for rule in ("majority", "any"):
        want = {str(c): sorted(ids) for c, ids in cluster_identities(groups, rule).items()}
        assert summary["identity_sets"][rule]["identities"] == want
    sets = {c: ids for c, ids in cluster_identities(groups, "majority").items()}
    covered = sum(r.pid in sets[c] for c, recs in groups.items() for r in recs) / len(rows)
    assert summary["identity_sets"]["majority"]["images_in_own_set"] == pytest.approx(covered)
    assert summary["identity_sets"]["any"]["images_in_own_set"] == 1.0
    maj = summary["identity_sets"]["majority"]["total"]
    assert maj == summary["identities"] <= summary["identity_sets"]["any"]["total"]
    for f in ("embedding.png", "cluster_samples.png", "clusters_k2.csv", "clusters_k3.csv"):
        assert (out / f).is_file(), f
    assert "silhouette (2-D PCA)" in res.output
    by_path = {str(Path(r.path).resolve()): r for r in train_recs}
    for row in summary["silhouette"]:  # AMI against identities and cameras, per k
        kk = list(csv.DictReader((out / f"clusters_k{row['k']}.csv").open()))
        recs = [by_path[str(Path(r["path"]).resolve())] for r in kk]
        got = [int(r["cluster"]) for r in kk]
        assert row["ami_identity"] == pytest.approx(ami([r.pid for r in recs], got))
        assert row["ami_camera"] == pytest.approx(ami([r.camid for r in recs], got))

    # --use-k fixes the trained k whatever the silhouettes say; it must be one of --k
    args = ["cluster", "--run", str(run), "-d", "market1501", "-r", str(root), "--k", "2-3"]
    other = 2 if k == 3 else 3
    res = CliRunner().invoke(app, [*args, "--use-k", str(other), "--out", str(tmp_path / "u")])
    assert res.exit_code == 0, res.output
    fixed = json.loads((tmp_path / "u/clusters.json").read_text())
    assert fixed["k"] == other and fixed["picked_by"] == "given k"
    assert fixed["silhouette"] == summary["silhouette"]  # same k-means, same seed
    rows = list(csv.DictReader((tmp_path / "u/clusters.csv").open()))
    assert len({r["cluster"] for r in rows}) == other
    res = CliRunner().invoke(app, [*args, "--use-k", "4", "--out", str(tmp_path / "w")])
    assert res.exit_code == 1 and "not among the cluster counts" in res.output


def test_raw_features_are_the_unnormalised_backbone_output(tmp_path):
    from genreid.engine.tasks.reid import train
    from genreid.eval.ranking.extract import load_trained_model

    root, _ = make_data(tmp_path, n_gen=0)
    run = tmp_path / "base"
    train(tiny_cfg(root, None, "train.epochs=1"), run)
    recs = load_dataset("market1501", root).train[:5]
    feats = raw_features(run, recs, "cpu")
    model, data, _, _ = load_trained_model(run)
    from genreid.data.dataset import ImageDataset
    from genreid.data.transforms import test_transform

    ds = ImageDataset(recs, test_transform(data.size)).batched()
    with torch.no_grad():
        want = model.backbone(ds.collate([ds[i] for i in range(5)])["image"]).numpy()
    np.testing.assert_allclose(feats, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.linalg.norm(feats, axis=1), 1.0)  # not L2-normalised


def test_majority_ties_are_spread_over_the_tied_clusters():
    # 8 identities with one image in cluster 0 and one in cluster 2 (VIPeR-like ties), one
    # identity with 2 of 3 images in cluster 1
    def rec(pid: int, i: int) -> ImageRecord:
        return ImageRecord(f"{pid}_{i}.jpg", pid, i, Role.TRAIN)

    groups = {
        0: [rec(p, 0) for p in range(1, 9)],
        1: [rec(9, 0), rec(9, 1)],
        2: [rec(p, 1) for p in range(1, 9)] + [rec(9, 2)],
    }
    sets = cluster_identities(groups, "majority")
    assert sets == {0: {2, 4, 6, 8}, 1: {9}, 2: {1, 3, 5, 7}}  # pid mod 2 picks among (0, 2)
    assert cluster_identities(groups, "any") == {0: set(range(1, 9)), 1: {9}, 2: set(range(1, 10))}
