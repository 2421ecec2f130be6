"""Protocol drivers on toy datasets whose scores are known exactly."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import genreid.eval.ranking.protocols as protocols
from genreid.data.records import ImageRecord, ReIDDataset, Role
from genreid.eval.ranking.protocols import (
    CachedExtractor,
    evaluate_cuhk03_classic,
    evaluate_query_gallery,
    evaluate_splits,
    has_valid_match,
    summarize,
)

DIM = 16


def feature_of(path: str) -> np.ndarray:
    """Toy features from a path ``.../<pid>[w].jpg``: one-hot of the identity; a ``w`` query
    leans towards the previous identity, so its true match comes second (AP 1/2)."""
    stem = Path(path).stem
    wrong = stem.endswith("w")
    pid = int(stem.rstrip("w").split("_")[0])
    f = np.zeros(DIM, dtype=np.float32)
    if pid <= 0:  # distractor (0) / junk (-1): own directions
        f[DIM + pid - 1] = 1.0
    elif wrong:
        f[pid - 2], f[pid - 1] = 0.9, 0.5
    else:
        f[pid - 1] = 1.0
    return f


def fake_extract(records: list[ImageRecord]) -> np.ndarray:
    return np.stack([feature_of(r.path) for r in records])


def toy_split(
    n_ids: int = 5,
    wrong: tuple[int, ...] = (5,),
    split: int = 0,
    num_splits: int = 1,
    prefix: str = "",
    extras: bool = True,
) -> ReIDDataset:
    """Query cam 1, gallery cam 2, plus a distractor, a junk image identical to query 2 and a
    same-camera copy of query 1 (both must be ignored)."""
    q = [
        ImageRecord(f"{prefix}q/{p}{'w' if p in wrong else ''}.jpg", p, 1, Role.QUERY)
        for p in range(1, n_ids + 1)
    ]
    g = [ImageRecord(f"g/{p}.jpg", p, 2, Role.GALLERY) for p in range(1, n_ids + 1)]
    if extras:
        g += [
            ImageRecord("g/0.jpg", 0, 2, Role.GALLERY),
            ImageRecord("g/2_junk.jpg", -1, 2, Role.GALLERY),
            ImageRecord("g/1_samecam.jpg", 1, 1, Role.GALLERY),
        ]
    return ReIDDataset("toy", "/toy", [], q, g, split=split, num_splits=num_splits)


def test_summarize_pads_short_cmc() -> None:
    row = summarize([0.5, 0.75, 1.0], 0.6, 0.4)
    assert row == {
        "rank1": 0.5,
        "rank5": 1.0,
        "rank10": 1.0,
        "rank20": 1.0,
        "mAP": 0.6,
        "mINP": 0.4,
    }


def test_query_gallery_known_scores() -> None:
    out = evaluate_query_gallery(fake_extract, toy_split(), metric="cosine")
    row = out["results"]["plain"]
    assert row["rank1"] == pytest.approx(0.8)
    assert row["rank5"] == pytest.approx(1.0)
    assert row["mAP"] == pytest.approx(0.9)
    assert row["mINP"] == pytest.approx(0.9)
    assert (out["num_query"], out["num_gallery"], out["num_valid_query"]) == (5, 8, 5)
    assert out["cmc"]["plain"][:2] == pytest.approx([0.8, 1.0])


def test_query_gallery_trapezoid_ap() -> None:
    # Query 5's lone true match at rank 2: trapezoid AP 1/4 instead of 1/2 -> (4 + 1/4) / 5.
    out = evaluate_query_gallery(fake_extract, toy_split(), ap="trapezoid")
    assert out["results"]["plain"]["mAP"] == pytest.approx(0.85)
    assert out["ap"] == "trapezoid"


def test_query_gallery_perfect_and_euclidean() -> None:
    out = evaluate_query_gallery(fake_extract, toy_split(wrong=()), metric="euclidean")
    assert out["results"]["plain"]["rank1"] == pytest.approx(1.0)
    assert out["results"]["plain"]["mAP"] == pytest.approx(1.0)


def test_query_gallery_rerank_keys() -> None:
    out = evaluate_query_gallery(
        fake_extract, toy_split(), rerank=True, k1=3, k2=2, lambda_value=0.3
    )
    assert set(out["results"]) == {"plain", "rerank"}
    for row in out["results"].values():
        assert set(row) == {"rank1", "rank5", "rank10", "rank20", "mAP", "mINP"}
        assert all(0.0 <= v <= 1.0 for v in row.values())
    assert out["rerank"] == {"k1": 3, "k2": 2, "lambda": 0.3}


@pytest.mark.parametrize("method", ["mean", "max"])
def test_multi_query_fixes_the_hard_query(method: str) -> None:
    ds = toy_split()
    # two gt_bbox images of identity 5 in camera 1 that look like identity 5, one in camera 2
    ds.mquery = [
        ImageRecord("mq/5_a.jpg", 5, 1, Role.MQUERY),
        ImageRecord("mq/5_b.jpg", 5, 1, Role.MQUERY),
        ImageRecord("mq/4_c.jpg", 5, 2, Role.MQUERY),
    ]
    calls: Counter[str] = Counter()

    def counting(records: list[ImageRecord]) -> np.ndarray:
        calls.update(r.path for r in records)
        return fake_extract(records)

    out = evaluate_query_gallery(counting, ds, multi_query=method)
    assert out["results"]["plain"]["rank1"] == pytest.approx(1.0)
    assert out["results"]["plain"]["mAP"] == pytest.approx(1.0)
    assert out["multi_query"] == {"method": method, "source": "mquery"}
    assert max(calls.values()) == 1  # every path extracted once


def test_multi_query_without_mquery_pools_queries() -> None:
    out = evaluate_query_gallery(fake_extract, toy_split(), multi_query="mean")
    assert out["multi_query"]["source"] == "query"
    assert out["results"]["plain"]["rank1"] == pytest.approx(0.8)


def test_cached_extractor_once_per_path_and_checks() -> None:
    calls: list[int] = []

    def ext(records: list[ImageRecord]) -> np.ndarray:
        calls.append(len(records))
        return fake_extract(records)

    cached = CachedExtractor(ext)
    ds = toy_split()
    a = cached(ds.query + ds.query)
    b = cached(ds.query)
    assert calls == [5] and a.shape == (10, DIM)
    np.testing.assert_array_equal(a[:5], b)

    nan = CachedExtractor(lambda recs: np.full((len(recs), 3), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        nan(ds.query)
    short = CachedExtractor(lambda recs: np.zeros((1, 3)))
    with pytest.raises(ValueError, match="shape"):
        short(ds.query)


def fake_loader(wrong_by_split: list[tuple[int, ...]], seen: list[dict], extras: bool = True):
    def load(name: str, root: str, **options: object) -> ReIDDataset:
        seen.append({"name": name, "root": root, **options})
        i = int(options["split"])
        return toy_split(
            wrong=wrong_by_split[i],
            split=i,
            num_splits=len(wrong_by_split),
            prefix=f"s{i}/",
            extras=extras,
        )

    return load


def test_split_averaging(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict] = []
    monkeypatch.setattr(protocols, "load_dataset", fake_loader([(), (5,), (3, 5)], seen))
    calls: Counter[str] = Counter()

    def counting(records: list[ImageRecord]) -> np.ndarray:
        calls.update(r.path for r in records)
        return fake_extract(records)

    out = evaluate_splits(counting, "viper", "/data/viper", seed=7)
    assert out["num_splits"] == 3 and len(out["splits"]) == 3
    assert [r["rank1"] for r in out["splits"]] == pytest.approx([1.0, 0.8, 0.6])
    assert out["results"]["plain"]["rank1"] == pytest.approx(0.8)
    assert out["std"]["plain"]["rank1"] == pytest.approx(0.2)  # sample std over splits
    assert out["results"]["plain"]["mAP"] == pytest.approx(np.mean([1.0, 0.9, 0.8]))
    assert [s["split"] for s in seen] == [0, 1, 2] and seen[0]["seed"] == 7
    assert max(calls.values()) == 1  # gallery shared by the splits is extracted once

    seen.clear()
    two = evaluate_splits(fake_extract, "viper", "/data/viper", num_splits=2)
    assert two["num_splits"] == 2 and two["results"]["plain"]["rank1"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="num_splits"):
        evaluate_splits(fake_extract, "viper", "/data/viper", num_splits=4)


def test_split_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict] = []
    monkeypatch.setattr(protocols, "load_dataset", fake_loader([(5,), (5,)], seen))
    made: list[int] = []

    def factory(i: int):
        made.append(i)
        if i == 0:
            return fake_extract

        def fixed(records: list[ImageRecord]) -> np.ndarray:  # "model 1" gets query 5 right
            return np.stack([feature_of(r.path.replace("5w", "5")) for r in records])

        return fixed

    out = evaluate_splits(factory, "prid2011", "/data/prid", per_split=True)
    assert made == [0, 1]
    assert [r["rank1"] for r in out["splits"]] == pytest.approx([0.8, 1.0])


def test_cuhk03_classic(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict] = []
    monkeypatch.setattr(protocols, "load_dataset", fake_loader([(), (5,)], seen, extras=False))
    out = evaluate_cuhk03_classic(fake_extract, "/data/cuhk03", variant="detected")
    assert seen[0] == {
        "name": "cuhk03",
        "root": "/data/cuhk03",
        "protocol": "classic",
        "variant": "detected",
        "split": 0,
    }
    assert out["protocol"] == "cuhk03_classic" and out["variant"] == "detected"
    assert out["results"]["plain"]["rank1"] == pytest.approx(0.9)


VIPER = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "VIPeR"


def colour_histogram(records: list[ImageRecord]) -> np.ndarray:
    """A weak but real descriptor: 4x4x4 RGB histogram of the upper and lower body."""
    from PIL import Image

    out = []
    for r in records:
        with Image.open(r.path) as img:
            x = np.asarray(img.convert("RGB").resize((24, 64))) // 64
        codes = x[..., 0] * 16 + x[..., 1] * 4 + x[..., 2]
        halves = [np.bincount(h.ravel(), minlength=64) for h in (codes[:32], codes[32:])]
        out.append(np.sqrt(np.concatenate(halves)))
    return np.stack(out).astype(np.float32)


@pytest.mark.skipif(not VIPER.is_dir(), reason="../shared/datasets/VIPeR not present")
def test_viper_real_images(tmp_path: Path) -> None:
    pytest.importorskip("genreid.data.datasets.viper")
    calls: Counter[str] = Counter()

    def counting(records: list[ImageRecord]) -> np.ndarray:
        calls.update(r.path for r in records)
        return colour_histogram(records)

    out = evaluate_splits(
        counting, "viper", VIPER, num_splits=2, splits_file=tmp_path / "splits.json"
    )
    assert [r["num_query"] for r in out["splits"]] == [316, 316]
    row = out["results"]["plain"]
    assert 0.02 < row["rank1"] <= row["rank5"] <= row["rank10"] <= row["rank20"] <= 1.0
    assert max(calls.values()) == 1


def test_has_valid_match_against_loop() -> None:
    rng = np.random.default_rng(3)
    qp, qc = rng.integers(-1, 30, 200), rng.integers(1, 4, 200)
    gp, gc = rng.integers(-1, 30, 300), rng.integers(1, 4, 300)
    want = [p != -1 and bool(((gp == p) & (gc != c)).any()) for p, c in zip(qp, qc, strict=True)]
    assert has_valid_match(qp, gp, qc, gc).tolist() == want
    with pytest.raises(ValueError, match="no query has a gallery image"):
        protocols.evaluate_arrays(np.eye(2), np.eye(2), [1, 2], [3, 4], [1, 1], [2, 2])
