"""``genreid train`` / ``genreid extract``: run folder files, features file, clean errors."""

from __future__ import annotations

import json

import numpy as np
import torch
from typer.testing import CliRunner

from genreid.cli import app
from genreid.eval.ranking.features import load_features
from tests.test_train_engine import CONFIGS, make_data

runner = CliRunner()
TINY = [
    "data.height=32",
    "data.width=16",
    "model.width=8",
    "model.pretrained=null",
    "train.epochs=1",
    "train.batch_size=8",
    "train.progress=false",
]


def test_train_then_extract(tmp_path):
    root, gen = make_data(tmp_path)
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(CONFIGS / "tiny.yaml"),
            f"data.root={root}",
            f"data.generated={gen}",
            "labels.strategy=lsro",
            *TINY,
            "--out",
            str(run),
        ],
    )
    assert res.exit_code == 0, res.output
    for name in ("config.yaml", "env.json", "metrics.jsonl", "results.json", "checkpoints/last.pt"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 0 and "torch" in env["versions"]
    assert "strategy: lsro" in (run / "config.yaml").read_text()
    feats = tmp_path / "f.npz"
    res = runner.invoke(
        app,
        [
            "extract",
            "--run",
            str(run),
            "--dataset",
            "market1501",
            "--root",
            str(root),
            "--out",
            str(feats),
            "-o",
            "eval.flip=false",
        ],
    )
    assert res.exit_code == 0, res.output
    fs = load_features(feats)
    assert fs.num_query == 6 and fs.num_gallery > 0 and fs.dim == 64
    np.testing.assert_allclose(np.linalg.norm(fs.qf, axis=1), 1.0, rtol=1e-5)
    # resume of a finished run keeps it finished and exits 0
    res = runner.invoke(app, ["train", "--out", str(run), "--resume"])
    assert res.exit_code == 0, res.output
    assert "rank1" in json.loads((run / "results.json").read_text())["final"]


def test_bad_input_errors(tmp_path):
    root, _ = make_data(tmp_path, n_gen=0)
    base = ["train", "--config", str(CONFIGS / "tiny.yaml"), *TINY]
    cases = [
        (["labels.strategy=magic", f"data.root={root}"], "unknown label strategy 'magic'"),
        (["train.epoch=3", f"data.root={root}"], "unknown config key 'train.epoch'"),
        ([f"data.root={tmp_path / 'nowhere'}"], "error: "),
    ]
    for extra, msg in cases:
        res = runner.invoke(app, [*base, *extra, "--out", str(tmp_path / "r")])
        assert res.exit_code == 1, res.output
        assert msg in res.stderr and "Traceback" not in res.output + res.stderr


def test_nan_loss_is_a_clean_error(tmp_path, monkeypatch):
    import genreid.engine.tasks.reid as reid_task

    root, _ = make_data(tmp_path, n_gen=0)
    monkeypatch.setattr(reid_task, "weighted_mean", lambda *a: torch.tensor(float("nan")))
    res = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(CONFIGS / "tiny.yaml"),
            *TINY,
            f"data.root={root}",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 1
    assert res.stderr.startswith(
        "error: training stopped at epoch 1, step 1 of 2: the training loss became NaN"
    )
    assert "Traceback" not in res.output + res.stderr
