"""Features .npz round trip and validation errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genreid.eval.ranking.features import FEATURE_KEYS, FeaturesError, load_features, save_features


def toy_arrays(nq: int = 4, ng: int = 6, d: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "qf": rng.normal(size=(nq, d)).astype(np.float32),
        "gf": rng.normal(size=(ng, d)).astype(np.float32),
        "q_pids": np.arange(nq),
        "g_pids": np.arange(ng) % max(nq, 1),
        "q_camids": np.ones(nq, dtype=np.int64),
        "g_camids": np.full(ng, 2),
        "q_paths": np.array([f"q/{i}.jpg" for i in range(nq)]),
        "g_paths": np.array([f"g/{i}.jpg" for i in range(ng)]),
    }


def write_raw(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_round_trip(tmp_path: Path) -> None:
    a = toy_arrays()
    path = save_features(tmp_path / "sub" / "f.npz", **a, epoch=np.int64(3))
    fs = load_features(path)
    for key in FEATURE_KEYS:
        np.testing.assert_array_equal(getattr(fs, key), a[key])
    assert fs.qf.dtype == np.float32 and fs.q_pids.dtype == np.int64
    assert fs.q_paths.dtype.kind == "U"
    assert (fs.num_query, fs.num_gallery, fs.dim) == (4, 6, 8)
    assert int(fs.extra["epoch"]) == 3
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == set(FEATURE_KEYS) | {"epoch"}


def test_save_accepts_lists_and_tensors(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    a = toy_arrays()
    path = save_features(
        tmp_path / "f.npz",
        torch.from_numpy(a["qf"]),
        a["gf"],
        a["q_pids"].tolist(),
        a["g_pids"],
        a["q_camids"],
        a["g_camids"],
        list(a["q_paths"]),
        [Path(p) for p in a["g_paths"]],
    )
    fs = load_features(path)
    np.testing.assert_allclose(fs.qf, a["qf"])
    assert fs.g_paths[0] == "g/0.jpg"


def test_missing_key_named_and_expected_listed(tmp_path: Path) -> None:
    a = toy_arrays()
    del a["g_camids"]
    with pytest.raises(FeaturesError, match="'g_camids'") as info:
        load_features(write_raw(tmp_path / "f.npz", **a))
    assert all(k in str(info.value) for k in FEATURE_KEYS)


def test_mismatched_lengths(tmp_path: Path) -> None:
    a = toy_arrays()
    a["q_pids"] = a["q_pids"][:3]
    with pytest.raises(FeaturesError, match="mismatched lengths") as info:
        load_features(write_raw(tmp_path / "f.npz", **a))
    assert "qf has 4" in str(info.value) and "q_pids has 3" in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_features(tmp_path: Path, bad: float) -> None:
    a = toy_arrays()
    a["gf"][2, 1] = bad
    a["gf"][4, :2] = bad
    with pytest.raises(FeaturesError, match="NaN") as info:
        load_features(write_raw(tmp_path / "f.npz", **a))
    msg = str(info.value)
    assert "gf has 3 non-finite" in msg and "first at row 2" in msg and "re-extract" in msg


def test_save_refuses_nan(tmp_path: Path) -> None:
    a = toy_arrays()
    a["qf"][0, 0] = np.nan
    with pytest.raises(FeaturesError, match="NaN"):
        save_features(tmp_path / "f.npz", **a)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("nq", "ng", "side"), [(0, 5, "query"), (3, 0, "gallery")])
def test_empty_sets(tmp_path: Path, nq: int, ng: int, side: str) -> None:
    a = toy_arrays(nq=nq, ng=ng)
    with pytest.raises(FeaturesError, match=f"{side} set is empty"):
        load_features(write_raw(tmp_path / "f.npz", **a))


def test_dimensions_differ(tmp_path: Path) -> None:
    a = toy_arrays()
    a["gf"] = a["gf"][:, :5]
    with pytest.raises(FeaturesError, match="qf has 8, gf has 5"):
        load_features(write_raw(tmp_path / "f.npz", **a))


def test_pickled_paths_rejected(tmp_path: Path) -> None:
    a = toy_arrays()
    a["q_paths"] = np.array(list(a["q_paths"]), dtype=object)
    with pytest.raises(FeaturesError, match="cannot read features file"):
        load_features(write_raw(tmp_path / "f.npz", **a))


def test_bad_dtypes(tmp_path: Path) -> None:
    a = toy_arrays()
    a["q_pids"] = a["q_pids"].astype(np.float32)
    with pytest.raises(FeaturesError, match="q_pids must be a 1-D integer array"):
        load_features(write_raw(tmp_path / "f.npz", **a))


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(FeaturesError, match="cannot read features file"):
        load_features(junk)
    with pytest.raises(FeaturesError, match="does not exist"):
        load_features(tmp_path / "nope.npz")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(FeaturesError, match="npz archive"):
        load_features(single)
