"""``genreid export``: ONNX round trip of a re-ID and a DG-Net run (the feature ``genreid
extract`` stores, flip averaging included), dynamic batch, metadata, clean errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genreid.cli import app
from genreid.data.dataset import ImageDataset
from genreid.data.records import ImageRecord, Role
from genreid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from genreid.data.transforms import test_transform as eval_transform  # not a test
from genreid.eval.deploy.encoder import DeployError, load_onnx_encoder
from genreid.eval.ranking.extract import load_trained_model, reid_features, reid_forward
from genreid.eval.ranking.features import load_features
from tests.deploy_fixtures import TINY, fails, invoke, noisy_market, runner, train_tiny
from tests.fixtures import DGNET_SMALL

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    return noisy_market(tmp_path_factory.mktemp("market") / "market")


@pytest.fixture(scope="module")
def reid_run(tmp_path_factory, market) -> Path:
    return train_tiny(market, tmp_path_factory.mktemp("runs") / "reid")


def ort_features(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["features"], {"images": x.numpy()})[0]


def batch_of(paths: list[Path], size: tuple[int, int]) -> torch.Tensor:
    """A normalised batch of images exactly as ``genreid extract`` reads them."""
    records = [ImageRecord(str(p), -1, -1, Role.QUERY) for p in paths]
    ds = ImageDataset(records, eval_transform(size))
    return torch.stack([ds[i]["image"] for i in range(len(ds))])


def test_round_trip_dynamic_batch_and_metadata(tmp_path, market, reid_run):
    out = tmp_path / "deploy" / "model.onnx"
    text = invoke("export", "--run", reid_run, "--format", "onnx", "--out", out,
                  "--images", market / "query", "--batch", "4")  # fmt: skip
    assert "largest absolute feature difference" in text and "images/s" in text
    assert "onnxruntime" in text and "random" not in text

    # metadata: the run's preprocessing, in the model and in model.json beside it
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    desc = json.loads(meta["genreid"])
    pre = desc["preprocessing"]
    assert (pre["height"], pre["width"]) == (64, 32)
    assert pre["mean"] == list(IMAGENET_MEAN) and pre["std"] == list(IMAGENET_STD)
    assert pre["channel_order"] == "RGB" and pre["value_range"] == [0.0, 1.0]
    assert (meta["input_height"], meta["input_width"]) == ("64", "32")  # plain strings too
    assert json.loads(meta["mean"]) == list(IMAGENET_MEAN) and meta["channel_order"] == "RGB"
    assert desc["flip"] is True and desc["feature_dim"] == 64 and desc["opset"] >= 17
    side = json.loads((tmp_path / "deploy" / "model.json").read_text())
    assert side["onnx_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert side["preprocessing"] == pre and side["run"] == str(reid_run.resolve())
    assert side["architecture"].startswith("ide_tiny") and side["genreid_version"]

    # dynamic batch: 1 and 5 images; equal to the feature `genreid extract` computes
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    paths = sorted((market / "bounding_box_test").glob("*.jpg"))[:5]
    model, data, ev, _ = load_trained_model(reid_run, overrides=["train.device=cpu"])
    records = [ImageRecord(str(p), -1, -1, Role.GALLERY) for p in paths]
    want = reid_features(model, records, data.size, flip=True).numpy()
    for n in (1, 5):
        got = ort_features(out, batch_of(paths[:n], data.size))
        assert got.shape == (n, 64)
        assert np.abs(got - want[:n]).max() < 1e-4
    # the graph holds the flip averaging: without it the feature is measurably different
    with torch.no_grad():
        unflipped = reid_forward(model, flip=False)(batch_of(paths, data.size)).numpy()
    assert np.abs(unflipped - want).max() > 1e-3
    np.testing.assert_allclose(np.linalg.norm(want, axis=1), 1.0, rtol=1e-5)


def test_dgnet_export_equals_extract(tmp_path, market):
    teacher, run = tmp_path / "teacher", tmp_path / "dgnet"
    invoke("train", "-c", "dgnet_tiny_baseline", f"data.root={market}", *TINY, "--out", teacher)
    invoke(
        "train", "-c", "dgnet_tiny", f"data.root={market}", f"teacher={teacher}", *DGNET_SMALL,
        "train.pairs=2", "train.epoch_iters=2", "train.epochs=1", "train.grid_images=3",
        "train.progress=false", "train.device=cpu", "--out", run,
    )  # fmt: skip
    out = tmp_path / "dgnet.onnx"
    invoke("export", "--run", run, "--out", out, "--batch", "3")
    feats = tmp_path / "f.npz"
    invoke("extract", "--run", run, "-d", "market1501", "-r", market, "--out", feats)
    fs = load_features(feats)
    got = ort_features(out, batch_of([Path(p) for p in fs.q_paths], (64, 32)))
    assert got.shape == fs.qf.shape == (4, 32)  # [f_prim, beta * f_fine]: 16 + 16
    assert np.abs(got - fs.qf).max() < 1e-4
    assert "dgnet" in json.loads((tmp_path / "dgnet.json").read_text())["architecture"]


def test_random_batch_fallback_and_errors(tmp_path, reid_run):
    moved = tmp_path / "moved"
    (moved / "checkpoints").mkdir(parents=True)
    (moved / "checkpoints" / "last.pt").write_bytes((reid_run / "checkpoints/last.pt").read_bytes())
    config = (reid_run / "config.yaml").read_text()
    root = next(line for line in config.splitlines() if line.strip().startswith("root:"))
    (moved / "config.yaml").write_text(config.replace(root, "  root: /no/such/folder"))
    res = runner.invoke(app, ["export", "--run", str(moved), "--out", str(tmp_path / "m.onnx")])
    assert res.exit_code == 0, res.output
    assert "random batch" in res.stderr and "/no/such/folder" in res.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no images" in fails("export", "--run", reid_run, "--out", tmp_path / "x.onnx",
                                      "--images", empty)  # fmt: skip
    assert ".onnx" in fails("export", "--run", reid_run, "--out", tmp_path / "x.pt")
    assert "config.yaml" in fails("export", "--run", tmp_path, "--out", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()

    # an ONNX file without genreid's metadata, and a file that is not ONNX at all
    model = onnx.load(str(tmp_path / "m.onnx"))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    with pytest.raises(DeployError, match="no genreid metadata"):
        load_onnx_encoder(tmp_path / "bare.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(DeployError, match="cannot be loaded"):
        load_onnx_encoder(tmp_path / "junk.onnx")
