"""CUB-200-2011 parser: the LSRO classification protocol, retrieval option, bounding boxes."""

from __future__ import annotations

import pytest
from PIL import Image

from genreid.data.datasets import load_dataset
from genreid.data.datasets.cub200 import CUBDataset, crop_to_bbox
from genreid.data.errors import DatasetLayoutError
from tests.fixtures import make_cub_tree


def test_cub_classification_protocol(tmp_path):
    base = make_cub_tree(tmp_path)
    for root in (base, tmp_path):  # the CUB_200_2011 folder or its parent
        ds = load_dataset("cub200", root)
        assert isinstance(ds, CUBDataset)
        assert (len(ds.train), len(ds.query), len(ds.gallery)) == (12, 8, 0)
        assert {r.pid for r in ds.train} == {r.pid for r in ds.query} == {1, 2, 3, 4}
        assert {r.camid for r in ds.train + ds.query} == {0}
        assert ds.notes["protocol"] == "classification"
        assert len(ds.bboxes) == 20


def test_cub_bboxes_and_crop(tmp_path):
    ds = load_dataset("cub", make_cub_tree(tmp_path))
    first = ds.train[0]
    assert ds.bboxes[first.path] == (1.0, 1.0, 4.0, 8.0)
    with Image.open(first.path) as img:
        assert crop_to_bbox(img, ds.bboxes[first.path]).size == (4, 8)


def test_cub_without_crop(tmp_path):
    base = make_cub_tree(tmp_path)
    (base / "bounding_boxes.txt").unlink()
    ds = load_dataset("cub200", base, crop=False)
    assert ds.bboxes == {} and ds.notes["crop"] == "none"
    with pytest.raises(DatasetLayoutError, match=r"expected bounding_boxes.txt"):
        load_dataset("cub200", base)


def test_cub_retrieval_protocol(tmp_path):
    ds = load_dataset("cub200", make_cub_tree(tmp_path), protocol="retrieval")
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (12, 8, 8)
    # camid = image id: the same-pid-same-camera filter removes only the query itself
    assert len({r.camid for r in ds.query}) == 8
    assert [r.camid for r in ds.query] == [r.camid for r in ds.gallery]
    assert {r.pid for r in ds.train}.issuperset({r.pid for r in ds.query})


def test_cub_missing_metadata_named(tmp_path):
    base = make_cub_tree(tmp_path)
    (base / "train_test_split.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"expected train_test_split.txt .*under"):
        load_dataset("cub200", base)


def test_cub_missing_images_folder(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"expected images/ and images.txt"):
        load_dataset("cub200", tmp_path)


def test_cub_missing_image_file(tmp_path):
    base = make_cub_tree(tmp_path)
    (base / "images" / "002.Bird_2" / "Bird_2_0000_6.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match="Bird_2_0000_6.jpg"):
        load_dataset("cub200", base)


def test_cub_bad_protocol(tmp_path):
    with pytest.raises(ValueError, match="protocol"):
        load_dataset("cub200", make_cub_tree(tmp_path), protocol="zero-shot")
