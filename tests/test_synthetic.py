"""The procedural synthetic dataset: Market layout, determinism, splits, and a look at pixels."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genreid.data.errors import DatasetError
from genreid.data.synthetic import render_dataset, write_preview
from genreid.data.synthetic.plan import market_name

MARKET = re.compile(r"(-1|\d{4})_c(\d)s\d_\d{6}_\d{2}\.jpg")
SPLITS = ("bounding_box_train", "bounding_box_test", "query")
IDS, CAMS, SEED = 8, 3, 7


def _files(root: Path) -> dict[str, list[Path]]:
    return {s: sorted((root / s).iterdir()) for s in SPLITS}


def _parse(path: Path) -> tuple[int, int]:
    m = MARKET.fullmatch(path.name)
    assert m is not None, path.name
    return int(m.group(1)), int(m.group(2))


def _bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synth") / "market"
    stats = render_dataset(root, ids=IDS, cams=CAMS, seed=SEED, workers=1, progress=False)
    return root, stats


def test_market_name() -> None:
    assert market_name(2, 1, 451, 3) == "0002_c1s1_000451_03.jpg"
    assert market_name(-1, 6, 12, 1) == "-1_c6s1_000012_01.jpg"
    assert market_name(0, 2, 7, 1) == "0000_c2s1_000007_01.jpg"


def test_deterministic_and_independent_of_workers(rendered, tmp_path) -> None:
    root, _ = rendered
    render_dataset(tmp_path / "b", ids=IDS, cams=CAMS, seed=SEED, workers=2, progress=False)
    a, b = _bytes(root), _bytes(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)


def test_same_arguments_same_bytes_other_seed_differs(tmp_path) -> None:
    for name, seed in (("x", 3), ("y", 3), ("z", 4)):
        render_dataset(tmp_path / name, ids=2, cams=2, seed=seed, workers=1, progress=False)
    x, y, z = (_bytes(tmp_path / n) for n in "xyz")
    assert x == y
    assert x != z


def test_layout_and_names(rendered) -> None:
    root, _ = rendered
    files = _files(root)
    for split, paths in files.items():
        assert paths, split
        for p in paths:
            pid, cam = _parse(p)
            assert 1 <= cam <= CAMS
            assert pid == -1 or 0 <= pid <= IDS
    manifest = json.loads((root / "dataset.json").read_text())
    assert manifest["complete"] is True
    assert manifest["arguments"]["ids"] == IDS and manifest["arguments"]["seed"] == SEED
    assert "version" in manifest


def test_splits(rendered) -> None:
    root, _ = rendered
    files = _files(root)
    train = {_parse(p)[0] for p in files["bounding_box_train"]}
    query = defaultdict(list)
    for p in files["query"]:
        pid, cam = _parse(p)
        query[pid].append(cam)
    gallery = defaultdict(list)
    for p in files["bounding_box_test"]:
        pid, cam = _parse(p)
        gallery[pid].append(cam)
    test = {p for p in gallery if p > 0}
    assert min(train | test) == 1 and 0 not in train and -1 not in train
    assert not train & test
    assert train | test == set(range(1, IDS + 1))
    assert len(train) == IDS // 2
    assert set(query) == test
    for pid in test:
        cams = query[pid]
        assert len(cams) == len(set(cams)) >= 2  # one query per camera, at least two cameras
        assert set(cams) == set(gallery[pid])
        for cam in cams:  # every query has a true match in another camera
            assert any(c != cam for c in gallery[pid])
    assert gallery[0] and gallery[-1]  # distractors and junk, in the gallery only


def test_images(rendered) -> None:
    root, _ = rendered
    for p in _files(root)["query"][:5]:
        with Image.open(p) as im:
            assert im.format == "JPEG" and im.size == (64, 128) and im.mode == "RGB"


@pytest.mark.parametrize("size", [(96, 48), (16, 16)])
def test_custom_size(tmp_path, size) -> None:
    render_dataset(tmp_path, ids=2, cams=2, seed=0, size=size, workers=1, progress=False)
    for p in (tmp_path / "bounding_box_test").iterdir():
        with Image.open(p) as im:
            assert im.size == (size[1], size[0])


def test_identities_differ(rendered) -> None:
    """Leave-one-out nearest identity mean (raw pixels of the body area) beats chance by far."""
    root, _ = rendered
    feats, pids = [], []
    for paths in _files(root).values():
        for p in paths:
            pid, _ = _parse(p)
            if pid > 0:
                with Image.open(p) as im:
                    small = im.convert("RGB").crop((16, 16, 48, 112)).resize((8, 16))
                feats.append(np.asarray(small, dtype=np.float32).ravel())
                pids.append(pid)
    X, y = np.stack(feats), np.array(pids)
    sums = {p: X[y == p].sum(0) for p in np.unique(y)}
    counts = {p: int((y == p).sum()) for p in sums}
    correct, own, other = 0, [], []
    for x, pid in zip(X, y, strict=True):
        dist = {}
        for p in sums:
            mean = (sums[p] - x) / (counts[p] - 1) if p == pid else sums[p] / counts[p]
            dist[p] = float(np.linalg.norm(x - mean))
        correct += min(dist, key=dist.get) == pid
        own.append(dist[pid])
        other.append(np.mean([d for p, d in dist.items() if p != pid]))
    assert np.mean(own) < np.mean(other)
    assert correct / len(y) > 3.0 / IDS  # chance is 1/IDS


def test_stats(rendered) -> None:
    root, stats = rendered
    files = _files(root)
    splits = stats["splits"]
    assert splits["train"] == len(files["bounding_box_train"])
    assert splits["query"] == len(files["query"])
    assert splits["gallery"] == len(files["bounding_box_test"])
    assert stats["images"] == sum(len(v) for v in files.values())
    assert stats["identities"] == IDS
    assert (stats["train_identities"], stats["test_identities"]) == (IDS // 2, IDS - IDS // 2)
    assert stats["cameras"] == CAMS
    gallery = [_parse(p)[0] for p in files["bounding_box_test"]]
    assert stats["distractors"] == gallery.count(0) > 0
    assert stats["junk"] == gallery.count(-1) > 0
    assert stats["seconds"] > 0 and stats["images_per_second"] > 0
    assert 5 < stats["images_per_identity"] < 40


def test_rerender_replaces_and_refuses_foreign(tmp_path) -> None:
    a = render_dataset(tmp_path / "d", ids=4, cams=2, seed=1, workers=1, progress=False)
    b = render_dataset(tmp_path / "d", ids=2, cams=2, seed=1, workers=1, progress=False)
    assert a["images"] != b["images"]
    assert sum(len(v) for v in _files(tmp_path / "d").values()) == b["images"]
    (tmp_path / "foreign" / "query").mkdir(parents=True)
    with pytest.raises(DatasetError, match="not written by"):
        render_dataset(tmp_path / "foreign", ids=2, cams=2, seed=1, workers=1, progress=False)


@pytest.mark.parametrize(
    "kwargs", [{"ids": 1}, {"ids": 10000}, {"cams": 1}, {"cams": 10}, {"seed": -1}]
)
def test_bad_arguments(tmp_path, kwargs) -> None:
    args = {"ids": 4, "cams": 2, "seed": 0} | kwargs
    with pytest.raises(ValueError):
        render_dataset(tmp_path, **args, workers=1, progress=False)


def test_preview(rendered, tmp_path) -> None:
    root, _ = rendered
    out = write_preview(root, tmp_path / "sheet.png", num_ids=3, per_id=4)
    with Image.open(out) as im:
        assert im.format == "PNG"
        w, h = im.size
    assert w > 4 * 64 and h > 5 * 128  # 3 identities plus distractor and junk rows
    big = write_preview(root, tmp_path / "big.png", num_ids=3, per_id=4, scale=2)
    with Image.open(big) as im:
        assert im.size[0] > 2 * w - 20


@pytest.mark.skipif(
    importlib.util.find_spec("genreid.data.datasets.market") is None,
    reason="Market parser not available",
)
def test_market_parser_reads_it(rendered) -> None:
    from genreid.data.datasets.market import parse_market1501

    root, stats = rendered
    ds = parse_market1501(root)
    assert len(ds.train) == stats["splits"]["train"]
    assert len(ds.query) == stats["splits"]["query"]
    assert len(ds.gallery) == stats["splits"]["gallery"]
    assert ds.num_train_pids == IDS // 2
    assert {r.camid for r in ds.gallery} <= set(range(1, CAMS + 1))
