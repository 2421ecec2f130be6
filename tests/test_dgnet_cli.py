"""DG-Net end to end from the command line: teacher, `genreid train`, extract, evaluate,
`genreid dgnet swap` (grid, interpolation, folder) and `genreid gan metrics` on its images."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from genreid.cli import app
from genreid.data.generated import read_generated
from genreid.eval.ranking.features import load_features
from tests.fixtures import make_market_tree
from tests.test_dgnet_training import SMALL, TEACHER

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: str) -> str:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


def test_train_extract_evaluate_swap(tmp_path):
    root = make_market_tree(tmp_path / "market", num_train_ids=4, size=(32, 64))
    teacher, run = tmp_path / "teacher", tmp_path / "run"
    invoke("train", "-c", "dgnet_tiny_baseline", f"data.root={root}", *TEACHER, "--out", teacher)
    small = [s for s in SMALL if not s.startswith("train.epochs")]
    invoke(
        "train", "--config", "dgnet_tiny", f"data.root={root}", f"teacher={teacher}", *small,
        "train.epochs=1", "--out", run,
    )  # fmt: skip
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "done" and results["iterations"] == 3
    assert "rank1" in results["final"]
    # resume of a finished run keeps it finished
    invoke("train", "--out", run, "--resume")
    feats = tmp_path / "f.npz"
    invoke("extract", "--run", run, "-d", "market1501", "-r", root, "--out", feats)
    fs = load_features(feats)
    assert fs.dim == 32 and fs.num_query == 4  # [f_prim, 0.5 f_fine]: 16 + 16
    np.testing.assert_allclose(np.linalg.norm(fs.qf, axis=1), 1.0, rtol=1e-5)
    invoke("evaluate", "--features", feats, "--out", tmp_path / "ev")
    assert "rank1" in json.loads((tmp_path / "ev/results.json").read_text())["results"]["plain"]

    a, b, c = (
        sorted((root / "bounding_box_train").glob("0002_*"))[0],
        *sorted((root / "bounding_box_train").glob("000[46]_*"))[::4][:2],
    )
    grid = tmp_path / "grid.png"
    out = invoke("dgnet", "swap", "--run", run, "--images", a, b, c, "--out", grid)
    assert "wrote" in out
    with Image.open(grid) as img:
        w, h = img.size
    assert w > 4 * 32 and h > 4 * 64  # 3 x 3 swaps plus the real images and captions
    strip = tmp_path / "strip.png"
    invoke("dgnet", "swap", "--run", run, "--images", a, b, "--interpolate", "--steps", "5",
           "--out", strip)  # fmt: skip
    with Image.open(strip) as img:
        assert img.size[0] > 7 * 32 and img.size[1] > 2 * 64  # A, 5 frames, B; two rows

    folder = tmp_path / "swaps"
    invoke("dgnet", "swap", "--run", run, "--images", a, b, c, "--to-folder", folder)
    assert len(read_generated(folder)) == 6  # every ordered pair of different images
    with (folder / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["appearance"] == str(a) and rows[0]["structure"] == str(b)
    # the donors' identities from the Market-1501 file names
    assert (rows[0]["appearance_pid"], rows[0]["structure_pid"]) == ("2", b.name[:4].lstrip("0"))
    with Image.open(folder / rows[0]["path"]) as img:
        assert img.size == (32, 64)
    sampled = tmp_path / "sampled"
    out = invoke("dgnet", "swap", "--run", run, "--to-folder", sampled, "--num", "5")
    assert "wrote 5 images" in out and len(read_generated(sampled)) == 5
    with (sampled / "manifest.csv").open() as fh:
        drawn = list(csv.DictReader(fh))
    assert all(r["appearance_pid"] != r["structure_pid"] != "" for r in drawn)
    # the transfer rate of the run's swaps, judged by its teacher (the run's own numbers)
    res = runner.invoke(app, ["dgnet", "measure", "--run", str(run), "--num", "12"])
    assert res.exit_code == 0, res.output
    measured = json.loads(res.stdout)
    assert measured["transfer"]["judge"] == f"teacher {teacher}"
    assert measured["transfer"]["swaps"] == 12 and "appearance donor's identity" in res.stderr
    metrics = tmp_path / "m.json"
    invoke(
        "gan", "metrics", "--real", f"market1501:{root}", "--fake", sampled, "--ssim-only",
        "--ssim-pairs", "4", "--ssim-size", "32x16", "--out", metrics,
    )  # fmt: skip
    assert json.loads(metrics.read_text())["fake"]["images"] == 5

    # clean errors
    for args, msg in [
        (["--run", teacher, "--images", a, b, "--out", grid], "not a DG-Net one"),
        (["--run", run, "--images", a, "--out", grid], "2 or more images"),
        (["--run", run, "--images", a, b, c, "--interpolate", "--out", grid], "exactly 2"),
        (["--run", run, "--images", a, tmp_path / "no.jpg", "--out", grid], "not found"),
        (["--run", run, "--to-folder", folder, "--num", "2"], "already holds"),
        (["--run", run], "--out FILE.png"),
    ]:
        res = runner.invoke(app, ["dgnet", "swap", *map(str, args)])
        assert res.exit_code == 1, (args, res.output)
        assert msg in res.stderr and "Traceback" not in res.output + res.stderr, res.stderr
