"""``genreid index`` / ``genreid search``: the ranked lists equal ``genreid evaluate``'s, faiss
and exact search agree, ONNX and PyTorch indexes agree, bad files and folders are clean errors,
and the results page opens in a browser without errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genreid.data.naming import parse_identities
from genreid.eval.deploy.index import SearchIndexError, load_index, save_index, search
from genreid.eval.ranking.distance import compute_distance
from genreid.eval.ranking.features import load_features
from genreid.eval.ranking.metrics import evaluate_rank
from tests.browser import open_page
from tests.deploy_fixtures import fails, invoke, noisy_market, train_tiny

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A noisy Market tree (4 test identities), a one-epoch tiny run, its features and index."""
    base = tmp_path_factory.mktemp("search")
    market = noisy_market(base / "market", num_test_ids=4)
    run = train_tiny(market, base / "run")
    feats, index = base / "f.npz", base / "gallery.npz"
    invoke("extract", "--run", run, "-d", "market1501", "-r", market, "--out", feats)
    text = invoke("index", "--run", run, "--images", market / "bounding_box_test", "--out", index)
    assert "identities from market1501 names" in text
    return {"market": market, "run": run, "features": feats, "index": index, "base": base}


def test_search_equals_evaluate(setup, tmp_path):
    market, fs = setup["market"], load_features(setup["features"])
    idx = load_index(setup["index"])
    # the index holds what `genreid extract` stores for the gallery, in the same order
    assert idx.paths == [str(Path(p).resolve()) for p in fs.g_paths]
    np.testing.assert_allclose(idx.features, fs.gf, atol=1e-6)
    assert (idx.pids == fs.g_pids).all() and (idx.camids == fs.g_camids).all()

    ev = tmp_path / "ev"
    invoke("evaluate", "--features", setup["features"], "--out", ev, "--rerank", "--k1", "6",
           "--k2", "3")  # fmt: skip
    expected = json.loads((ev / "results.json").read_text())["results"]
    out = tmp_path / "s"
    text = invoke("search", "--index", setup["index"], "--query", market / "query", "--top",
                  "1000", "--backend", "exact", "--out", out)  # fmt: skip
    res = json.loads((out / "results.json").read_text())
    assert res["summary"]["rank1"] == pytest.approx(expected["plain"]["rank1"])
    assert f"rank-1 {100 * expected['plain']['rank1']:.1f}%" in text
    assert res["summary"]["queries_with_true_match"] == len(fs.q_paths)

    # every list: eval's distances, in eval's order (ties by gallery position), junk and the
    # query identity's own-camera images left out; first true match where evaluate finds it
    dist = compute_distance(fs.qf, fs.gf, metric="cosine", device="cpu")
    _, _, per_query = evaluate_rank(dist, fs.q_pids, fs.g_pids, fs.q_camids, fs.g_camids,
                                    max_rank=10, return_per_query=True)  # fmt: skip
    for i, q in enumerate(res["queries"]):
        assert Path(q["path"]).name == Path(fs.q_paths[i]).name
        keep = (fs.g_pids != -1) & ~((fs.g_pids == fs.q_pids[i]) & (fs.g_camids == fs.q_camids[i]))
        order = [g for g in np.argsort(dist[i], kind="stable") if keep[g]]
        assert [h["index"] for h in q["hits"]] == order
        np.testing.assert_allclose([h["distance"] for h in q["hits"]], dist[i, order], atol=1e-6)
        assert q["first_match"] - 1 == per_query["first_rank"][i]
        matches = [bool(fs.g_pids[g] == fs.q_pids[i]) for g in order]
        assert [h["match"] for h in q["hits"]] == matches

    # re-ranked: the same rank-1 as `genreid evaluate --rerank`
    out = tmp_path / "r"
    invoke("search", "--index", setup["index"], "--query", market / "query", "--rerank",
           "--k1", "6", "--k2", "3", "--out", out)  # fmt: skip
    res = json.loads((out / "results.json").read_text())
    assert res["summary"]["rank1"] == pytest.approx(expected["rerank"]["rank1"])
    assert "re-ranking" in res["backend"] and res["rerank"]["k1"] == 6


def test_faiss_and_exact_agree(setup, monkeypatch):
    idx, fs = load_index(setup["index"]), load_features(setup["features"])
    import genreid.eval.deploy.index as index_module

    monkeypatch.setattr(index_module, "faiss_module", lambda: None)
    with pytest.raises(SearchIndexError, match="faiss is not installed"):
        search(idx, list(fs.q_paths), fs.qf, backend="faiss")
    monkeypatch.undo()
    with pytest.raises(SearchIndexError, match="cannot re-rank"):
        search(idx, list(fs.q_paths), fs.qf, backend="faiss", rerank={"k1": 6})
    pytest.importorskip("faiss")
    exact, used_e = search(idx, list(fs.q_paths), fs.qf, top=len(idx), backend="exact")
    fast, used_f = search(idx, list(fs.q_paths), fs.qf, top=len(idx), backend="faiss")
    assert used_e.startswith("exact") and used_f.startswith("faiss")
    for a, b in zip(exact, fast, strict=True):
        da, db = [h.distance for h in a.hits], [h.distance for h in b.hits]
        np.testing.assert_allclose(da, db, atol=1e-5)
        assert sorted(h.index for h in a.hits) == sorted(h.index for h in b.hits)
        for ha, hb in zip(a.hits, b.hits, strict=True):  # a different image only in a tie
            assert ha.index == hb.index or abs(ha.distance - hb.distance) < 1e-5


def test_onnx_index_matches_and_other_models_are_refused(setup, tmp_path):
    pytest.importorskip("onnxruntime")
    market, run = setup["market"], setup["run"]
    model = tmp_path / "m.onnx"
    invoke("export", "--run", run, "--out", model, "--images", market / "query", "--batch", "2")
    onnx_index = tmp_path / "onnx.npz"
    invoke("index", "--onnx", model, "--images", market / "bounding_box_test", "--out", onnx_index)
    a, b = load_index(setup["index"]), load_index(onnx_index)
    assert np.abs(a.features - b.features).max() < 1e-4 and a.paths == b.paths
    assert b.model["kind"] == "onnx" and b.model["weights_sha256"] == a.model["weights_sha256"]
    # the same weights through PyTorch may search the ONNX index (and the other way round)
    invoke("search", "--index", onnx_index, "--run", run, "--query", market / "query",
           "--out", tmp_path / "s1")  # fmt: skip
    invoke("search", "--index", setup["index"], "--onnx", model, "--query", market / "query",
           "--out", tmp_path / "s2")  # fmt: skip
    other = train_tiny(market, tmp_path / "other", "seed=1")
    query = sorted((market / "query").glob("*.jpg"))[0]
    msg = fails("search", "--index", setup["index"], "--run", other, "--query", query,
                "--out", tmp_path / "s3")  # fmt: skip
    assert "another model" in msg and "rebuild the index" in msg
    noflip = train_tiny(market, tmp_path / "noflip", "eval.flip=false")  # same weights, no flip
    flipless = fails("search", "--index", setup["index"], "--query", query, "--out", tmp_path,
                     "--run", noflip)  # fmt: skip
    assert "another model" in flipless


def test_bad_index_files(setup, tmp_path):
    idx = load_index(setup["index"])
    query = sorted((setup["market"] / "query").glob("*.jpg"))[0]
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip archive")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(setup["index"].read_bytes()[:500])
    foreign = tmp_path / "features.npz"
    foreign.write_bytes(setup["features"].read_bytes())
    old = tmp_path / "old.npz"
    save_index(type(idx)(idx.features, idx.paths, {**idx.header, "version": 99}), old)
    for path, message in [
        (corrupt, "not a genreid search index"),
        (truncated, "not a genreid search index"),
        (foreign, "no header"),
        (old, "version 99 index"),
        (tmp_path / "missing.npz", "does not exist"),
    ]:
        with pytest.raises(SearchIndexError, match=message):
            load_index(path)
        assert message in fails("search", "--index", path, "--query", query, "--out", tmp_path)


def test_bad_image_folders(setup, tmp_path):
    run = setup["run"]
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "x.npz"
    assert "holds no images" in fails("index", "--run", run, "--images", empty, "--out", out)
    (empty / "notes.txt").write_text("hello")
    assert "notes.txt" in fails("index", "--run", run, "--images", empty, "--out", out)
    assert "not a folder" in fails("index", "--run", run, "--images", empty / "notes.txt",
                                   "--out", tmp_path / "x.npz")  # fmt: skip
    bad, image = tmp_path / "bad", sorted((setup["market"] / "query").glob("*.jpg"))[0]
    (bad / "sub").mkdir(parents=True)
    for name in ("0001_c1s1_000001_01.jpg", "0001_c2s1_000002_01.jpg"):
        (bad / "sub" / name).write_bytes(image.read_bytes())
    (bad / "broken.jpg").write_text("this is text, not a JPEG")
    (bad / "also_broken.png").write_bytes(b"\x89PNG truncated")
    msg = fails("index", "--run", run, "--images", bad, "--out", out)
    assert "2 unreadable image(s)" in msg and "broken.jpg" in msg and "also_broken.png" in msg
    assert not out.exists()
    msg = fails("search", "--index", setup["index"], "--query", empty / "notes.txt",
                "--out", tmp_path / "s")  # fmt: skip
    assert "not an image" in msg
    # other files beside the images are skipped; the unreadable ones must go
    (bad / "broken.jpg").unlink()
    (bad / "also_broken.png").unlink()
    (bad / "Thumbs.db").write_bytes(b"\0")
    text = invoke("index", "--run", run, "--images", bad, "--out", tmp_path / "ok.npz")
    assert "indexed 2 images" in text and "identities from market1501" in text
    assert "skipped 1 file(s) that are not images" in text


def test_search_page_opens_in_browser(setup, tmp_path):
    out = tmp_path / "page"
    queries = sorted((setup["market"] / "query").glob("*.jpg"))[:3]
    invoke("search", "--index", setup["index"], "--query", *queries, "--top", "5", "--out", out)
    html = (out / "index.html").read_text()
    assert html.count("<figure") == 3 * 6 and "data:image/jpeg;base64," in html
    assert 'class="match"' in html and 'class="miss"' in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    errors = open_page(out / "index.html", tmp_path / "search.png")
    assert errors == []
    assert (tmp_path / "search.png").stat().st_size > 1000


def test_identities_from_file_names(tmp_path):
    cases = {
        "market1501": (["0002_c1s1_000451_03.jpg", "-1_c3s2_000001_01.jpg"], [(2, 1), (-1, 3)]),
        "dukemtmcreid": (["0001_c2_f0046182.jpg"], [(1, 2)]),
        "msmt17": (["0000_000_01_0303morning_0015_0.jpg"], [(1, 1)]),
        "cuhk03": (["1_001_1_01.png", "3_010_2_04.png"], [(1001, 1), (3010, 6)]),
        "viper": (["cam_a/000_45.bmp", "cam_b/000_90.bmp"], [(1, 1), (1, 2)]),
        "prid2011": (["cam_b/person_0007.png"], [(7, 2)]),
        "folder": (["0007_c4_000.jpg", "-1_c2_x.jpg"], [(7, 4), (-1, 2)]),
    }
    for name, (files, ids) in cases.items():
        assert parse_identities([tmp_path / f for f in files]) == (name, ids), name
    assert parse_identities(["0002_c1s1_000451_03.jpg", "holiday.jpg"]) == (None, None)
    assert parse_identities(["0002_c1s1_000451_03.jpg"], "dukemtmcreid") == (None, None)
