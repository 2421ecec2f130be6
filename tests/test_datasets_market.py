"""Market-1501 parser on a small fixture tree: counts, junk/distractors, gt_bbox, bad layouts."""

from __future__ import annotations

import shutil

import pytest

from genreid.data.datasets import load_dataset
from genreid.data.errors import DatasetLayoutError
from genreid.data.records import Role
from genreid.data.stats import dataset_stats
from tests.fixtures import make_market_tree


def test_market_counts(tmp_path):
    ds = load_dataset("market1501", make_market_tree(tmp_path))
    assert (len(ds.train), len(ds.query), len(ds.gallery), len(ds.mquery)) == (12, 4, 16, 12)
    assert {r.pid for r in ds.train} == {2, 4, 6}
    assert {r.pid for r in ds.query} == {1, 3}
    assert {r.camid for r in ds.gallery} == {1, 2, 3}
    assert ds.num_train_pids == 3
    assert ds.train_label_map() == {2: 0, 4: 1, 6: 2}
    assert all(r.role is Role.MQUERY for r in ds.mquery)


def test_market_junk_and_distractors(tmp_path):
    ds = load_dataset("market", make_market_tree(tmp_path))
    assert all(r.pid > 0 for r in ds.train)  # junk and distractors never train
    assert sum(r.pid == -1 for r in ds.gallery) == 2
    assert sum(r.pid == 0 for r in ds.gallery) == 2
    assert 9999 not in {r.pid for r in ds.mquery}  # gt_bbox ids outside query are dropped
    stats = dataset_stats(ds)
    assert stats["splits"]["gallery"]["junk_images"] == 2
    assert stats["splits"]["gallery"]["distractor_images"] == 2


def test_market_fixture_arguments(tmp_path):
    ds = load_dataset("market1501", make_market_tree(tmp_path, 5, 3, 1))
    assert (len(ds.train), len(ds.query), len(ds.gallery), len(ds.mquery)) == (10, 6, 13, 18)


def test_market_without_gt_bbox(tmp_path):
    root = make_market_tree(tmp_path)
    shutil.rmtree(root / "gt_bbox")
    assert load_dataset("market1501", root).mquery == []


def test_market_missing_folder_named(tmp_path):
    root = make_market_tree(tmp_path)
    shutil.rmtree(root / "bounding_box_test")
    with pytest.raises(DatasetLayoutError, match=r"expected bounding_box_test/.*found"):
        load_dataset("market1501", root)


def test_market_misnamed_file(tmp_path):
    root = make_market_tree(tmp_path)
    (root / "query" / "holiday.jpg").write_bytes(b"")
    with pytest.raises(DatasetLayoutError, match="holiday.jpg"):
        load_dataset("market1501", root)


def test_reduced_label_subsets_keep_small_identities_whole():
    """FAPL Table IV: identities with fewer than 8 images keep all, the rest a seeded share."""
    from genreid.data.records import ImageRecord, Role, reduce_labels

    sizes = {1: 3, 2: 7, 3: 8, 4: 12, 5: 30}
    recs = [
        ImageRecord(f"{p}_{i}.jpg", p, 1, Role.TRAIN) for p, n in sizes.items() for i in range(n)
    ]
    for fraction, want in (
        (1 / 2, {1: 3, 2: 7, 3: 4, 4: 6, 5: 15}),
        (1 / 3, {1: 3, 2: 7, 3: 3, 4: 4, 5: 10}),
    ):
        sub = reduce_labels(recs, fraction, seed=0)
        assert {p: sum(r.pid == p for r in sub) for p in sizes} == want
        assert [recs.index(r) for r in sub] == sorted(recs.index(r) for r in sub)
        assert sub == reduce_labels(recs, fraction, seed=0)
        assert sub != reduce_labels(recs, fraction, seed=1)
    assert reduce_labels(recs, 1.0, seed=0) == recs


def test_label_fraction_config_takes_fractions():
    from genreid.core.config import ConfigError, load_config
    from genreid.engine.tasks.reid import ReIDTrainConfig

    assert load_config(
        ReIDTrainConfig, "tiny", ["data.label_fraction=1/3"]
    ).data.label_fraction_value() == pytest.approx(1 / 3)
    with pytest.raises(ConfigError, match="data.label_fraction"):
        load_config(ReIDTrainConfig, "tiny", ["data.label_fraction=3/2"])
