"""MSMT17 V1/V2 parser on small trees with the four list files."""

from __future__ import annotations

import shutil

import pytest

from genreid.data.datasets import load_dataset
from genreid.data.datasets.msmt17 import parse_msmt17
from genreid.data.errors import DatasetLayoutError
from genreid.data.stats import dataset_stats
from tests.fixtures import make_msmt17_tree


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("nested", [False, True])
def test_msmt17_counts(tmp_path, version, nested):
    ds = load_dataset("msmt17", make_msmt17_tree(tmp_path, version, nested))
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (14, 3, 6)
    assert ds.notes["version"] == version
    assert ds.num_train_pids == 4
    assert {r.camid for r in ds.train} == {1, 2, 12}
    assert {r.camid for r in ds.query} == {3}
    assert {r.camid for r in ds.gallery} == {4, 15}
    test_dir = "test" if version == "v1" else "mask_test_v2"
    assert all(f"/{test_dir}/" in r.path for r in ds.query + ds.gallery)


def test_msmt17_without_val(tmp_path):
    ds = load_dataset("msmt17", make_msmt17_tree(tmp_path), use_val=False)
    assert len(ds.train) == 12


def test_msmt17_forced_version(tmp_path):
    root = make_msmt17_tree(tmp_path, "v1")
    assert load_dataset("msmt17", root, version="V1").notes["version"] == "v1"
    with pytest.raises(DatasetLayoutError, match=r"mask_train_v2/ and mask_test_v2/"):
        load_dataset("msmt17", root, version="v2")


def test_msmt17_missing_folder_named(tmp_path):
    root = make_msmt17_tree(tmp_path)
    shutil.rmtree(root / "test")
    with pytest.raises(DatasetLayoutError, match=r"expected train/ and test/ .* under .*found"):
        load_dataset("msmt17", root)


def test_msmt17_missing_list_named(tmp_path):
    root = make_msmt17_tree(tmp_path)
    (root / "list_gallery.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"expected list_gallery.txt"):
        load_dataset("msmt17", root)


def test_msmt17_missing_image_named(tmp_path):
    root = make_msmt17_tree(tmp_path)
    first = (root / "list_query.txt").read_text().split()[0]
    (root / "test" / first).unlink()
    with pytest.raises(DatasetLayoutError, match=first.split("/")[1]):
        load_dataset("msmt17", root)


def test_msmt17_bad_line(tmp_path):
    root = make_msmt17_tree(tmp_path)
    with (root / "list_train.txt").open("a") as fh:
        fh.write("garbage\n")
    with pytest.raises(DatasetLayoutError, match=r"list_train.txt:13"):
        load_dataset("msmt17", root)


def test_msmt17_identities_unique_across_splits(tmp_path):
    # Lists number train ids 0-3 and test ids 0-2 separately; genreid shifts them apart.
    ds = parse_msmt17(make_msmt17_tree(tmp_path))
    assert sorted({r.pid for r in ds.train}) == [1, 2, 3, 4]
    assert sorted({r.pid for r in ds.query}) == [5, 6, 7]
    assert {r.pid for r in ds.gallery} == {r.pid for r in ds.query}
    stats = dataset_stats(ds)
    assert stats["identities"] == 7 and "distractor_images" not in stats
