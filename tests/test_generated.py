"""Generated-image folders: manifest round trip and the errors for bad manifests."""

from __future__ import annotations

import pytest

from genreid.data.errors import DatasetError
from genreid.data.generated import MANIFEST, read_generated, write_manifest
from genreid.data.records import Role
from tests.fixtures import write_jpeg


def _images(folder, n=4):
    return [write_jpeg(folder / "img" / f"{i:05d}.jpg", i) for i in range(n)]


def test_round_trip(tmp_path):
    paths = _images(tmp_path)
    rows = [
        {"path": paths[0], "cluster": 2, "seed": 11},  # absolute path inside the folder
        {"path": "img/00001.jpg", "cluster": 0, "seed": 12},
        {"path": "img/00002.jpg", "cluster": None, "seed": 13},
        {"path": "img/00003.jpg", "seed": 14},
    ]
    target = write_manifest(tmp_path, rows)
    assert target == tmp_path / MANIFEST
    assert target.read_text().splitlines()[0] == "path,cluster,seed"
    records = read_generated(tmp_path)
    assert [r.path for r in records] == [str(p) for p in paths]
    assert [r.cluster for r in records] == [2, 0, None, None]
    assert all(r.generated and r.pid == -1 and r.camid == -1 for r in records)
    assert all(r.role is Role.TRAIN and not r.is_junk for r in records)


def test_without_cluster_column(tmp_path):
    _images(tmp_path, 2)
    write_manifest(tmp_path, [{"path": "img/00000.jpg"}, {"path": "img/00001.jpg"}])
    assert [r.cluster for r in read_generated(tmp_path)] == [None, None]


def test_missing_manifest(tmp_path):
    with pytest.raises(DatasetError, match=r"expected manifest.csv"):
        read_generated(tmp_path)


def test_missing_files(tmp_path):
    _images(tmp_path, 1)
    write_manifest(tmp_path, [{"path": "img/00000.jpg"}, {"path": "img/gone.jpg"}])
    with pytest.raises(DatasetError, match="gone.jpg"):
        read_generated(tmp_path)


@pytest.mark.parametrize("value", ["x", "-3", "1.5"])
def test_bad_cluster(tmp_path, value):
    _images(tmp_path, 1)
    (tmp_path / MANIFEST).write_text(f"path,cluster\nimg/00000.jpg,{value}\n")
    with pytest.raises(DatasetError, match=r"manifest.csv:2: expected cluster"):
        read_generated(tmp_path)


def test_no_path_column(tmp_path):
    (tmp_path / MANIFEST).write_text("file,cluster\na.jpg,1\n")
    with pytest.raises(DatasetError, match="'path' column"):
        read_generated(tmp_path)


def test_path_outside_folder(tmp_path):
    outside = write_jpeg(tmp_path / "elsewhere.jpg")
    with pytest.raises(DatasetError, match="inside"):
        write_manifest(tmp_path / "gen", [{"path": outside}])


def test_max_generated_draws_a_seeded_subset_stratified_by_cluster(tmp_path):
    """A manifest lists clusters one after the other: a cap must not return one cluster."""
    from genreid.data.generated import sample_generated, write_manifest

    rows = [{"path": f"c{c}_{i}.jpg", "cluster": c} for c in (0, 1, 2) for i in range(30)]
    rows += [{"path": f"x{i}.jpg", "cluster": 3} for i in range(10)]  # a smaller cluster
    for r in rows:
        write_jpeg(tmp_path / r["path"], 1)
    write_manifest(tmp_path, rows)
    recs = read_generated(tmp_path)
    sub = sample_generated(recs, 20, seed=0)
    counts = [sum(r.cluster == c for r in sub) for c in (0, 1, 2, 3)]
    assert counts == [6, 6, 6, 2]  # 20 x 30/100 and 20 x 10/100
    assert [recs.index(r) for r in sub] == sorted(recs.index(r) for r in sub)  # manifest order
    assert sub == sample_generated(recs, 20, seed=0)  # seeded
    assert sub != sample_generated(recs, 20, seed=1)
    assert {r.path for r in sub} != {r.path for r in recs[:20]}  # not the first rows
    odd = sample_generated(recs, 7, seed=0)  # remainders: every cluster's share rounded well
    assert len(odd) == 7 and sorted(sum(r.cluster == c for r in odd) for c in (0, 1, 2, 3)) == [
        1, 2, 2, 2,
    ]  # fmt: skip
    assert sample_generated(recs, 500, seed=0) == recs
    none = [r.__class__(r.path, -1, -1, r.role, True, None) for r in recs[:9]]
    assert len(sample_generated(none, 4, seed=0)) == 4  # no clusters: a plain random subset
