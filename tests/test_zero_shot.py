"""`genreid extract --pretrained`: zero-shot features of a backbone with no training."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from genreid.cli import app
from genreid.data import transforms
from genreid.data.datasets import load_dataset
from genreid.eval.ranking.extract import load_pretrained_model, reid_features
from genreid.models.pretrained import WEIGHTS_DIR, read_backbone_file, shipped_name
from tests.conftest import VIPER_ROOT
from tests.fixtures import make_market_tree

pytestmark = pytest.mark.usefixtures("one_thread")
SHIPPED = WEIGHTS_DIR / shipped_name("resnet18", 16)


def extract(*args: str):
    return CliRunner().invoke(app, ["extract", *args])


@pytest.mark.skipif(not VIPER_ROOT.is_dir(), reason="needs ../shared/datasets/VIPeR")
def test_pretrained_features_are_the_shipped_backbones_pooled_output(tmp_path):
    """-o split=1 picks VIPeR's split 1; the features are the file's backbone's pooled output
    of each image and its mirror, L2-normalised (by hand), at the size it was pretrained at."""
    out = tmp_path / "f.npz"
    res = extract("--pretrained", "synthetic", "-d", "viper", "-r", str(VIPER_ROOT),
                  "-o", "split=1", "--out", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    saved = np.load(out)
    ds = load_dataset("viper", str(VIPER_ROOT), split=1)
    assert saved["qf"].shape == (len(ds.query), 128) and len(ds.query) == 316
    assert list(saved["q_pids"]) == [r.pid for r in ds.query]
    assert list(saved["q_pids"]) != [r.pid for r in load_dataset("viper", str(VIPER_ROOT)).query]
    model, size, path = load_pretrained_model("synthetic")
    assert size == (128, 64) and path == str(SHIPPED)
    state, _ = read_backbone_file(SHIPPED)
    assert all(torch.equal(model.backbone.state_dict()[k], v) for k, v in state.items())
    tf = transforms.test_transform(size)
    x = torch.stack([tf(Image.open(r.path).convert("RGB")) for r in ds.query[:4]])
    with torch.no_grad():  # the backbone's pooled output, of the image and of its mirror
        by_hand = torch.nn.functional.normalize(model.backbone(x) + model.backbone(x.flip(-1)))
    assert np.allclose(saved["qf"][:4], by_hand.numpy(), atol=1e-5)
    with torch.no_grad():
        same = reid_features(model, ds.query[:4], size, 2, True, torch.device("cpu"))
    assert np.allclose(np.asarray(same), by_hand.numpy(), atol=1e-5)


def test_pretrained_and_run_both_or_neither_bad_files_are_one_line_errors(tmp_path):
    root = make_market_tree(tmp_path / "m", num_train_ids=2, num_test_ids=2)
    data = ["-d", "market1501", "-r", str(root), "--out", str(tmp_path / "f.npz")]
    res = extract(*data)
    assert res.exit_code == 1 and "either --run RUN" in res.output
    res = extract("--run", str(tmp_path), "--pretrained", "synthetic", *data)
    assert res.exit_code == 1 and "not both" in res.output
    res = extract("--pretrained", "synthetic", "-o", "eval.flip=false", *data)
    assert res.exit_code == 1 and "parser options only" in res.output
    res = extract("--pretrained", str(tmp_path / "none.pt"), *data)
    assert res.exit_code == 1 and "no such file" in res.output
    # a corrupt copy (its sidecar's sha256 no longer matches) and a generator file
    bad = tmp_path / "bad.pt"
    shutil.copy(SHIPPED, bad)
    shutil.copy(SHIPPED.with_suffix(".json"), bad.with_suffix(".json"))
    with bad.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 8)
    for source in (bad, WEIGHTS_DIR / "synthetic_dcgan_w16_128x64.pt"):
        res = extract("--pretrained", str(source), *data)
        assert res.exit_code == 1 and str(source.name) in res.output, res.output
        assert "Traceback" not in res.output and res.output.count("\n") <= 2
    res = extract("--pretrained", "synthetic", "--size", "64x32", *data)
    assert res.exit_code == 0, res.output
