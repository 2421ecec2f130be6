"""The ``folder`` parser for a user's own train/query/gallery images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from genreid.data.datasets import load_dataset
from genreid.data.datasets.folder import stable_ids
from genreid.data.errors import DatasetLayoutError
from tests.fixtures import make_folder_tree, write_jpeg


def _by_name(records):
    return {Path(r.path).name: (r.pid, r.camid) for r in records}


def test_folder_counts_and_ids(tmp_path):
    ds = load_dataset("folder", make_folder_tree(tmp_path))
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (7, 2, 5)
    train = _by_name(ds.train)
    assert train["a_c2_001.jpg"] == (8, 2)
    assert train["b_nocam.jpg"] == (9, 0)  # no camera tag: camera 0 for training
    assert train["x_c3_001.jpg"] == (7, 3)
    gallery = _by_name(ds.gallery)
    assert gallery["0007_c4_000.jpg"] == (7, 4)  # loose file: pid from pid_regex
    assert gallery["j_c2_200.jpg"] == (-1, 2)
    assert _by_name(ds.query) == {"a_c1_100.jpg": (8, 1), "x_c1_100.jpg": (7, 1)}


def test_folder_ids_are_stable(tmp_path):
    root = make_folder_tree(tmp_path)
    assert load_dataset("folder", root) == load_dataset("folder", root)
    assert stable_ids(["b", "a", "12", "-1"]) == {"12": 12, "-1": -1, "a": 13, "b": 14}
    assert stable_ids(["x", "y"]) == {"x": 1, "y": 2}


def test_folder_custom_cam_regex(tmp_path):
    root = tmp_path / "data"
    for split in ("train", "query", "gallery"):
        write_jpeg(root / split / "p1" / f"{split}_camB.jpg")
        write_jpeg(root / split / "p1" / f"{split}_camA.jpg")
    ds = load_dataset("folder", root, cam_regex=r"cam([A-Z])")
    assert {Path(r.path).name: r.camid for r in ds.query} == {
        "query_camA.jpg": 1,
        "query_camB.jpg": 2,
    }


def test_folder_query_without_camera_is_error(tmp_path):
    root = make_folder_tree(tmp_path)
    write_jpeg(root / "query" / "alice" / "nocamera.jpg")
    with pytest.raises(DatasetLayoutError, match=r"nocamera.jpg.*cam_regex|cam_regex.*nocamera"):
        load_dataset("folder", root)


def test_folder_loose_file_without_pid(tmp_path):
    root = make_folder_tree(tmp_path)
    write_jpeg(root / "query" / "someone_c1.jpg")
    with pytest.raises(DatasetLayoutError, match=r"pid_regex.*someone_c1.jpg"):
        load_dataset("folder", root)
    ds = load_dataset("folder", root, pid_regex=r"^([a-z]+|\d+)_")
    assert len(ds.query) == 3


def test_folder_missing_split_names_layout(tmp_path):
    root = make_folder_tree(tmp_path)
    shutil.rmtree(root / "gallery")
    with pytest.raises(DatasetLayoutError, match=r"expected gallery/ .*train/<id>/\*\.jpg"):
        load_dataset("folder", root)


def test_folder_train_optional(tmp_path):
    root = make_folder_tree(tmp_path)
    shutil.rmtree(root / "train")
    with pytest.raises(DatasetLayoutError, match="expected train/"):
        load_dataset("folder", root)
    ds = load_dataset("folder", root, require_train=False)
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (0, 2, 5)


def test_folder_empty_split(tmp_path):
    root = make_folder_tree(tmp_path)
    shutil.rmtree(root / "query")
    (root / "query").mkdir()
    with pytest.raises(DatasetLayoutError, match="no images in"):
        load_dataset("folder", root)


def test_folder_junk_and_distractor_folders_never_train(tmp_path):
    root = make_folder_tree(tmp_path)
    write_jpeg(root / "train" / "0" / "d_c1_000.jpg", 1)
    write_jpeg(root / "train" / "-1" / "j_c1_000.jpg", 2)
    ds = load_dataset("folder", root)
    assert {r.pid for r in ds.train} == {7, 8, 9}
    assert len(ds.train) == 7
