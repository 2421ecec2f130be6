"""CUHK03 from an HDF5 ``cuhk-03.mat`` in the real structure: extraction, both protocols."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genreid.core.cache import dataset_cache
from genreid.data.datasets import cuhk03, load_dataset
from genreid.data.datasets.cuhk03 import MARKER
from genreid.data.errors import DatasetLayoutError
from tests.fixtures import cuhk03_image, cuhk03_person, cuhk03_test_pids, make_cuhk03_tree


@pytest.fixture(scope="module")
def cuhk_root(tmp_path_factory) -> Path:
    return make_cuhk03_tree(tmp_path_factory.mktemp("cuhk03"))


def test_extraction_names_and_pixels(cuhk_root, tmp_path):
    load_dataset("cuhk03", cuhk_root, cache_dir=tmp_path)
    folder = tmp_path / "images_detected"
    names = sorted(p.name for p in folder.glob("*.png"))
    assert len(names) == 43
    assert "1_001_1_03.png" in names and "5_001_2_07.png" in names
    # pid 9 = pair 4, person 2, slot 2 (camera A): transposed back to H x W x 3
    got = np.asarray(Image.open(folder / "4_002_1_03.png"))
    assert got.shape == (16, 8, 3)
    assert np.array_equal(got, cuhk03_image("detected", 9, 2))
    assert json.loads((folder / MARKER).read_text())["persons_per_pair"] == [3, 2, 2, 2, 1]
    assert not (tmp_path / "images_labeled").exists()  # only the requested variant


def test_extraction_runs_once(cuhk_root, tmp_path):
    load_dataset("cuhk03", cuhk_root, cache_dir=tmp_path)
    png = tmp_path / "images_detected" / "1_001_1_01.png"
    png.write_bytes(b"stale")  # a second call must not rewrite images
    load_dataset("cuhk03", cuhk_root, cache_dir=tmp_path)
    assert png.read_bytes() == b"stale"


def test_interrupted_extraction_is_redone(cuhk_root, tmp_path):
    load_dataset("cuhk03", cuhk_root, cache_dir=tmp_path)
    folder = tmp_path / "images_detected"
    (folder / MARKER).unlink()  # as if the process died before finishing
    (folder / "2_001_2_06.png").unlink()
    (folder / ".1_001_1_01.png.999.tmp").write_bytes(b"partial")
    ds = load_dataset("cuhk03", cuhk_root, cache_dir=tmp_path)
    assert (folder / MARKER).is_file() and (folder / "2_001_2_06.png").is_file()
    assert not list(folder.glob(".*.tmp"))
    assert len(ds.train) == 22


def test_read_only_root_uses_user_cache(tmp_path, monkeypatch):
    root = make_cuhk03_tree(tmp_path / "ro", num_testsets=1)
    monkeypatch.setenv("GENREID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cuhk03.os, "access", lambda path, mode: False)
    ds = load_dataset("cuhk03", root)
    assert len(ds.train) == 22 and not (root / "images_detected").exists()
    assert list((tmp_path / "cache").glob("cuhk03_*/images_detected/" + MARKER))


def test_default_cache_is_user_cache_not_root(tmp_path):
    root = make_cuhk03_tree(tmp_path / "data", release_folder=False, num_testsets=2)
    before = sorted(root.rglob("*"))
    ds = load_dataset("cuhk03", root, variant="labeled")
    cache = dataset_cache("cuhk03", root) / "images_labeled"
    assert (cache / MARKER).is_file()
    assert all(Path(r.path).parent == cache for r in ds.train)
    assert sorted(root.rglob("*")) == before  # nothing written beside the data


@pytest.mark.parametrize(
    ("variant", "sizes", "test_pids"),
    [("detected", (22, 10, 11), 5), ("labeled", (21, 9, 9), 5)],
)
def test_new_protocol(cuhk_root, tmp_path, variant, sizes, test_pids):
    ds = load_dataset("cuhk03", cuhk_root, variant=variant, cache_dir=tmp_path)
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == sizes
    assert {r.pid for r in ds.train} == {1, 2, 3, 4, 5}
    assert len({r.pid for r in ds.query}) == test_pids
    assert {r.pid for r in ds.gallery} <= {r.pid for r in ds.query}
    assert (ds.num_splits, ds.split) == (1, 0)
    assert {r.camid for r in ds.query} == {1, 2}
    for r in ds.train + ds.query + ds.gallery:  # camera = view in the file name
        assert Path(r.path).is_file() and int(Path(r.path).name.split("_")[2]) == r.camid


@pytest.mark.parametrize(("variant", "sizes"), [("detected", (30, 7, 6)), ("labeled", (27, 6, 6))])
def test_classic_split_zero(cuhk_root, tmp_path, variant, sizes):
    ds = load_dataset("cuhk03", cuhk_root, variant=variant, protocol="classic", cache_dir=tmp_path)
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == sizes
    assert (ds.split, ds.num_splits) == (0, 20)
    assert {r.pid for r in ds.query} == {1, 4, 7}
    assert {r.camid for r in ds.query} == {1} and {r.camid for r in ds.gallery} == {2}


def test_classic_split_properties(cuhk_root, tmp_path):
    seen = set()
    for split in range(20):
        ds = load_dataset("cuhk03", cuhk_root, protocol="classic", split=split, cache_dir=tmp_path)
        train_ids = {r.pid for r in ds.train}
        test_ids = {r.pid for r in ds.query + ds.gallery}
        assert train_ids.isdisjoint(test_ids)
        assert train_ids | test_ids == set(range(1, 11))
        assert test_ids == set(cuhk03_test_pids(split))
        assert (len(train_ids), len(test_ids)) == (7, 3)
        assert len(ds.train) + len(ds.query) + len(ds.gallery) == 43
        seen.add(tuple(sorted(test_ids)))
        again = load_dataset(
            "cuhk03", cuhk_root, protocol="classic", split=split, cache_dir=tmp_path
        )
        assert again.train == ds.train and again.query == ds.query
    assert len(seen) > 1


def test_global_pids_follow_pairs(cuhk_root, tmp_path):
    ds = load_dataset("cuhk03", cuhk_root, protocol="classic", cache_dir=tmp_path)
    for r in ds.train:
        pair, person = (int(x) for x in Path(r.path).name.split("_")[:2])
        assert cuhk03_person(r.pid) == (pair, person)


def test_bad_options(cuhk_root, tmp_path):
    with pytest.raises(ValueError, match="variant"):
        load_dataset("cuhk03", cuhk_root, variant="both", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"0\.\.19"):
        load_dataset("cuhk03", cuhk_root, protocol="classic", split=20, cache_dir=tmp_path)


def test_missing_mat_named(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"expected cuhk-03.mat .*under"):
        load_dataset("cuhk03", tmp_path)


def test_missing_config_named(tmp_path):
    root = make_cuhk03_tree(tmp_path, num_testsets=1)
    (root / "cuhk03_new_protocol_config_labeled.mat").unlink()
    with pytest.raises(DatasetLayoutError, match="cuhk03_new_protocol_config_labeled.mat"):
        load_dataset("cuhk03", root, variant="labeled")
    ds = load_dataset("cuhk03", root, variant="labeled", protocol="classic")
    assert ds.num_splits == 1


def test_not_hdf5(tmp_path):
    (tmp_path / "cuhk-03.mat").write_bytes(b"MATLAB 5.0 MAT-file")
    with pytest.raises(DatasetLayoutError, match="v7.3"):
        load_dataset("cuhk03", tmp_path)
