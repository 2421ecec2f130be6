"""``genreid evaluate`` on hand-made features files with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from genreid.cli import app
from genreid.eval.ranking.features import save_features

runner = CliRunner()


def make_features(tmp_path: Path, missing_image: bool = True) -> Path:
    """5 queries (cam 1) and 5 true matches (cam 2) plus a distractor; query 5 leans
    towards identity 4, so rank-1 = 0.8, mAP = mINP = (4 + 1/2) / 5 = 0.9."""
    eye = np.eye(8, dtype=np.float32)
    qf = eye[:5].copy()
    qf[4] = 0.9 * eye[3] + 0.5 * eye[4]
    gf = np.concatenate([eye[:5], eye[6:7]])
    img_dir = tmp_path / "img"
    img_dir.mkdir()
    q_paths = [img_dir / f"q{i}.png" for i in range(5)]
    g_paths = [img_dir / f"g{i}.png" for i in range(6)]
    for i, p in enumerate(q_paths + g_paths):
        if missing_image and p.name == "g5.png":
            continue
        Image.new("RGB", (32, 64), (20 * i, 100, 200 - 10 * i)).save(p)
    return save_features(
        tmp_path / "feats.npz",
        qf,
        gf,
        [1, 2, 3, 4, 5],
        [1, 2, 3, 4, 5, 0],
        [1] * 5,
        [2] * 6,
        q_paths,
        g_paths,
    )


def run(*args: str):
    return runner.invoke(app, ["evaluate", *args])


def test_evaluate_known_answer_with_figures(tmp_path: Path) -> None:
    feats = make_features(tmp_path)
    out = tmp_path / "out"
    res = run(
        "--features",
        str(feats),
        "--out",
        str(out),
        "--rerank",
        "--ranklist",
        "3",
        "--k1",
        "3",
        "--k2",
        "2",
        "--seed",
        "1",
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    for key in (
        "metric",
        "protocol",
        "num_query",
        "num_gallery",
        "num_valid_query",
        "results",
        "cmc",
        "max_rank",
        "seed",
        "rerank",
        "features",
    ):
        assert key in data
    assert (data["metric"], data["protocol"]) == ("cosine", "market")
    assert (data["num_query"], data["num_gallery"], data["num_valid_query"]) == (5, 6, 5)
    plain = data["results"]["plain"]
    assert plain["rank1"] == pytest.approx(0.8)
    assert plain["rank5"] == pytest.approx(1.0)
    assert plain["rank10"] == plain["rank20"] == pytest.approx(1.0)
    assert plain["mAP"] == pytest.approx(0.9) and plain["mINP"] == pytest.approx(0.9)
    assert set(data["results"]["rerank"]) == set(plain)
    assert set(data["cmc"]) == {"plain", "rerank"} and len(data["cmc"]["plain"]) == 6
    assert data["rerank"] == {"k1": 3, "k2": 2, "lambda": 0.3}
    for name in ("cmc.png", "ranklist.png"):
        with Image.open(out / name) as img:
            img.verify()
            assert img.format == "PNG"
    assert "R-1" in res.stdout and "80.0" in res.stdout
    assert "placeholder" in res.stderr  # g5.png is missing: one warning


def test_evaluate_plain_euclidean_no_figures_requested(tmp_path: Path) -> None:
    feats = make_features(tmp_path, missing_image=False)
    out = tmp_path / "out"
    res = run(
        "--features", str(feats), "--out", str(out), "--metric", "euclidean", "--max-rank", "3"
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    assert set(data["results"]) == {"plain"} and len(data["cmc"]["plain"]) == 3
    assert data["results"]["plain"]["rank1"] == pytest.approx(0.8)
    assert (out / "cmc.png").is_file() and not (out / "ranklist.png").exists()


def bad_features(tmp_path: Path, **override: object) -> Path:
    a = {
        "qf": np.eye(3, 4, dtype=np.float32),
        "gf": np.eye(3, 4, dtype=np.float32),
        "q_pids": np.arange(3),
        "g_pids": np.arange(3),
        "q_camids": np.zeros(3, np.int64),
        "g_camids": np.ones(3, np.int64),
        "q_paths": np.array(["a", "b", "c"]),
        "g_paths": np.array(["d", "e", "f"]),
    }
    a.update(override)
    path = tmp_path / "bad.npz"
    np.savez(path, **a)
    return path


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"qf": np.array([[np.nan, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], np.float32)}, "NaN"),
        ({"g_pids": np.arange(2)}, "mismatched lengths"),
        (
            {
                "gf": np.zeros((0, 4), np.float32),
                "g_pids": np.arange(0),
                "g_camids": np.arange(0),
                "g_paths": np.array([], dtype="<U1"),
            },
            "gallery set is empty",
        ),
    ],
)
def test_bad_input_exits_1_without_traceback(tmp_path: Path, override: dict, words: str) -> None:
    res = run("--features", str(bad_features(tmp_path, **override)), "--out", str(tmp_path / "o"))
    assert res.exit_code == 1
    assert words in res.stderr and res.stderr.startswith("error:")
    assert "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_unreadable_file_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "x.npz"
    bad.write_text("hello")
    res = run("--features", str(bad), "--out", str(tmp_path / "o"))
    assert res.exit_code == 1 and "cannot read features file" in res.stderr


def test_evaluate_trapezoid_ap(tmp_path: Path) -> None:
    # Query 5's only true match is at rank 2: standard AP 1/2; the MATLAB trapezoid gives
    # (recall step 1) * (old precision 0/1 + precision 1/2) / 2 = 1/4. mAP = (4 + 1/4) / 5.
    feats = make_features(tmp_path, missing_image=False)
    out = tmp_path / "out"
    res = run("--features", str(feats), "--out", str(out), "--ap", "trapezoid")
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    assert data["results"]["plain"]["mAP"] == pytest.approx(0.85)
    assert data["results"]["plain"]["rank1"] == pytest.approx(0.8)
