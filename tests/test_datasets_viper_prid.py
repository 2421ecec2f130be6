"""VIPeR and PRID2011: the real data in ../shared when present, and small fixture trees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genreid.data.datasets import load_dataset
from genreid.data.datasets.prid2011 import scan_prid2011
from genreid.data.datasets.viper import scan_viper
from genreid.data.errors import DatasetError, DatasetLayoutError
from genreid.data.stats import dataset_stats
from tests.conftest import PRID_ROOT, VIPER_ROOT

needs_viper = pytest.mark.skipif(not VIPER_ROOT.is_dir(), reason="../shared VIPeR absent")
needs_prid = pytest.mark.skipif(not PRID_ROOT.is_dir(), reason="../shared PRID2011 absent")


def _img(path: Path, size=(8, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(path)


def make_viper(root: Path, n: int = 20) -> Path:
    for i in range(n):
        _img(root / "cam_a" / f"{i:03d}_0.bmp")
        _img(root / "cam_b" / f"{i:03d}_90.bmp")
    return root


def make_prid(root: Path, a: int = 12, b: int = 30, shared: int = 8) -> Path:
    # shared persons are numbered 1..shared in both cameras (the real data uses 200)
    for i in range(1, a + 1):
        _img(root / "single_shot" / "cam_a" / f"person_{i:04d}.png")
    for i in range(1, b + 1):
        _img(root / "single_shot" / "cam_b" / f"person_{i:04d}.png")
    return root


@needs_viper
def test_real_viper_counts():
    stats = dataset_stats(load_dataset("viper", VIPER_ROOT))
    assert (stats["images"], stats["identities"], stats["cameras"]) == (1264, 632, 2)
    assert stats["splits"]["train"]["identities"] == 316
    assert stats["splits"]["query"]["images"] == 316
    assert stats["splits"]["gallery"]["images"] == 316


@needs_prid
def test_real_prid_counts():
    cam_a, cam_b = scan_prid2011(PRID_ROOT)
    assert (len(cam_a), len(cam_b)) == (385, 749)
    ds = load_dataset("prid2011", PRID_ROOT)
    stats = dataset_stats(ds)
    assert stats["identities"] == 934
    assert stats["images"] == 385 + 749
    shared = {r.pid for r in ds.train} | {r.pid for r in ds.query}
    assert len(shared) == 200
    assert len(ds.query) == 100 and len(ds.gallery) == 100 + 549


@pytest.mark.parametrize("split", [0, 3, 9])
def test_viper_split_properties(tmp_path, split):
    root = make_viper(tmp_path / "viper", n=20)
    ds = load_dataset("viper", root, split=split)
    train, test = {r.pid for r in ds.train}, {r.pid for r in ds.query}
    assert not train & test
    assert len(train) == len(test) == 10
    assert {r.pid for r in ds.gallery} == test
    assert {r.camid for r in ds.query} == {1} and {r.camid for r in ds.gallery} == {2}
    assert len(ds.train) == 20  # both cameras of every training identity
    again = load_dataset("viper", root, split=split)
    assert [r.path for r in again.train] == [r.path for r in ds.train]


def test_viper_splits_file_is_written_and_reused(tmp_path):
    root = make_viper(tmp_path / "viper", n=20)
    ds = load_dataset("viper", root, split=2)
    splits_file = Path(ds.notes["splits_file"])
    data = json.loads(splits_file.read_text())
    assert len(data["splits"]) == 10 and data["seed"] == 0
    assert sorted(data["splits"][2]["test"]) == sorted({r.pid for r in ds.query})
    # All 10 test sets are different draws.
    assert len({tuple(s["test"]) for s in data["splits"]}) == 10
    # Another seed gives other splits; the file is rewritten for it.
    other = load_dataset("viper", root, split=2, seed=1)
    assert {r.pid for r in other.query} != {r.pid for r in ds.query}


def test_viper_unpaired_identity_is_named(tmp_path):
    root = make_viper(tmp_path / "viper", n=6)
    (root / "cam_b" / "003_90.bmp").unlink()
    with pytest.raises(DatasetLayoutError, match=r"\[3\].*only one of cam_a/ and cam_b/"):
        scan_viper(root)


def test_viper_wrong_root_names_expected_folder(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"expected cam_a/ with files like 000_45.bmp"):
        load_dataset("viper", tmp_path / "x")


def test_viper_bad_split_index(tmp_path):
    with pytest.raises(DatasetError, match="expected 0..9"):
        load_dataset("viper", make_viper(tmp_path / "v"), split=10)


def test_prid_fixture_protocol(tmp_path):
    root = make_prid(tmp_path / "prid", a=12, b=30)
    cam_a, cam_b = scan_prid2011(root)
    assert len(cam_a) == 12 and len(cam_b) == 30
    ds = load_dataset("prid2011", root, split=1)
    # Fixture has 30 persons numbered <= 200 in cam_b; all <= 200 count as shared when in both.
    shared = sorted(set(cam_a) & set(cam_b))
    assert len(shared) == 12
    train, test = {r.pid for r in ds.train}, {r.pid for r in ds.query}
    assert not train & test and len(train) == 6 and len(test) == 6
    gallery_pids = {r.pid for r in ds.gallery}
    assert test <= gallery_pids
    # camera-B-only persons (13..30) are distractors in the gallery, never queried
    assert len(ds.gallery) == 6 + 18


def test_prid_wrong_layout(tmp_path):
    _img(tmp_path / "single_shot" / "cam_a" / "person_0001.png")
    with pytest.raises(DatasetLayoutError, match="expected cam_b/"):
        load_dataset("prid2011", tmp_path)


def test_parsers_never_write_into_the_dataset(tmp_path):
    viper = make_viper(tmp_path / "viper", n=8)
    prid = make_prid(tmp_path / "prid")
    before = sorted(p for p in tmp_path.rglob("*"))
    load_dataset("viper", viper)
    load_dataset("prid2011", prid)
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_explicit_splits_file_is_used_as_is(tmp_path):
    root = make_viper(tmp_path / "viper", n=8)
    own = tmp_path / "my_splits.json"
    pids = list(range(1, 9))
    splits = [{"train": pids[:4], "test": pids[4:]}, {"train": pids[4:], "test": pids[:4]}]
    own.write_text(json.dumps({"seed": 7, "splits": splits}))
    before = own.read_text()
    ds = load_dataset("viper", root, split=1, splits_file=own)
    assert ds.num_splits == 2 and sorted({r.pid for r in ds.query}) == [1, 2, 3, 4]
    assert own.read_text() == before  # never rewritten
    with pytest.raises(DatasetError, match="expected 0..1"):
        load_dataset("viper", root, split=2, splits_file=own)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", r"cannot read splits file .*my_splits.json"),
        ('{"splits": [{"train": [1]}]}', r"'train' and 'test' identity lists"),
        ('{"splits": [{"train": [1, 2], "test": [3]}]}', r"does not partition the 8 identities"),
    ],
)
def test_bad_splits_file_is_named(tmp_path, content, message):
    root = make_viper(tmp_path / "viper", n=8)
    own = tmp_path / "my_splits.json"
    own.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset("viper", root, splits_file=own)
