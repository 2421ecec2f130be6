"""GAN tools a user reads: the FID weights fetch (hash-checked, never from a test), labelled
sample grids made of the written files, and the warning for sampling an unfinished run."""

from __future__ import annotations

import hashlib
import json
import urllib.error

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from genreid.cli import app
from genreid.engine.gan_sampling import generators_of, grid_rows
from genreid.eval.generation import inception
from genreid.eval.generation.extractors import GenMetricsError
from genreid.viz.grids import LABEL_COLORS, labelled_grid
from tests.fixtures import make_market_tree
from tests.test_gan_cli import CONFIGS, TINY

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")
PAYLOAD = b"pretend Inception weights"
PREFIX = hashlib.sha256(PAYLOAD).hexdigest()[:8]


class FakeDownloader:
    """Writes ``payload`` as the download of any URL and counts the calls."""

    def __init__(self, payload: bytes = PAYLOAD) -> None:
        self.payload, self.calls = payload, []

    def __call__(self, url, dst):
        self.calls.append(url)
        dst.write_bytes(self.payload)


def _pretend_name(monkeypatch, prefix: str = PREFIX) -> str:
    """Point the module at a weights name whose hash prefix is that of ``PAYLOAD``."""
    name = f"pt_inception-2015-12-05-{prefix}.pth"
    monkeypatch.setattr(inception, "FID_WEIGHTS_NAME", name)
    monkeypatch.setattr(inception, "FID_WEIGHTS_URL", f"https://example.invalid/fid/{name}")
    return name


def test_fetch_keeps_a_file_with_the_hash_in_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GENREID_INCEPTION_WEIGHTS", raising=False)
    name = _pretend_name(monkeypatch)
    fake = FakeDownloader()
    got = inception.find_inception_weights(download=fake)
    assert got == tmp_path / "torch/hub/checkpoints" / name  # where torch.hub keeps checkpoints
    assert got.read_bytes() == PAYLOAD and fake.calls == [inception.FID_WEIGHTS_URL]
    assert inception.find_inception_weights(download=fake) == got and len(fake.calls) == 1
    assert [p.name for p in got.parent.iterdir()] == [name]  # no partial file left


def test_fetch_refuses_a_file_whose_hash_differs(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GENREID_INCEPTION_WEIGHTS", raising=False)
    fake = FakeDownloader(b"something else")  # the real name expects 6726825d
    with pytest.raises(GenMetricsError, match="refusing.*does not start with 6726825d"):
        inception.find_inception_weights(download=fake)
    folder = tmp_path / "torch/hub/checkpoints"
    assert list(folder.iterdir()) == []  # nothing kept, not even the temporary file


def test_fetch_with_the_default_downloader_from_a_file_url(tmp_path):
    source = tmp_path / "mirror" / f"pt_inception-2015-12-05-{PREFIX}.pth"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    got = inception.fetch_inception_weights(source.as_uri(), folder=tmp_path / "cache")
    assert got == tmp_path / "cache" / source.name and got.read_bytes() == PAYLOAD
    with pytest.raises(OSError):  # what find_inception_weights reports as offline
        inception.fetch_inception_weights((tmp_path / "gone.pth").as_uri(), tmp_path / "c2")


def test_offline_keeps_the_message_naming_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GENREID_INCEPTION_WEIGHTS", raising=False)

    def offline(url, dst):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(inception, "urllib_download", offline)
    real = make_market_tree(tmp_path / "market", size=(16, 32)) / "query"
    res = runner.invoke(app, ["gan", "metrics", "--fid", "--real", str(real), "--fake", str(real)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    hub = tmp_path / "torch/hub/checkpoints" / inception.FID_WEIGHTS_NAME
    assert "Name or service not known" in res.stderr and f"at {hub}, pass" in res.stderr
    assert not hub.exists()


def _train(root, run, *extra):
    res = runner.invoke(
        app,
        ["gan", "train", "--config", str(CONFIGS / "dcgan_tiny.yaml"), f"data.root={root}",
         *TINY, *extra, "--out", str(run)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output


def test_grid_labels_rows_and_shows_the_written_files(tmp_path):
    root = make_market_tree(tmp_path / "market", size=(16, 32))
    run, gen, grid = tmp_path / "run", tmp_path / "gen", tmp_path / "grid.png"
    _train(root, run)
    res = runner.invoke(
        app, ["gan", "sample", "--run", str(run), "--num", "20", "--out", str(gen), "--grid",
              str(grid), "--seed", "3"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "warning" not in res.stderr  # a finished run
    files = sorted(gen.glob("*.jpg"))
    rows = grid_rows(generators_of(run), [files], seed=3)
    assert [name for name, _ in rows] == ["real", "generated", "generated"]
    _, boxes = labelled_grid(rows, 8, (32, 16))
    sheet = np.asarray(Image.open(grid).convert("RGB"))
    written = {f.name: np.asarray(Image.open(f).convert("RGB")) for f in files}
    tiles = [sheet[t:b, left:r] for row in boxes[1:] for left, t, r, b in row]
    assert len(tiles) == 16
    for k, tile in enumerate(tiles):  # the k-th generated tile is the k-th file written
        assert np.array_equal(tile, written[f"{k:06d}.jpg"]), k
    for row, kind in zip(boxes, ("real", "generated", "generated"), strict=True):
        top, bottom = row[0][1], row[0][3]
        label = sheet[top:bottom, : row[0][0]].reshape(-1, 3).astype(int)
        ink = label[label.sum(axis=1) < 600]  # the row's name, anti-aliased, in its colour
        assert len(ink) > 10, kind
        other = "generated" if kind == "real" else "real"
        near = [np.abs(ink - LABEL_COLORS[k]).sum(axis=1).min() for k in (kind, other)]
        assert near[0] < near[1], (kind, near)


def test_sampling_an_unfinished_run_warns_with_its_epoch(tmp_path):
    root = make_market_tree(tmp_path / "market", size=(16, 32))
    run = tmp_path / "run"
    _train(root, run, "train.epochs=3", "train.max_iters=3")  # 12 images, batch 4: 1 epoch
    assert json.loads((run / "results.json").read_text())["status"] == "partial"
    res = runner.invoke(
        app, ["gan", "sample", "--run", str(run), "--num", "2", "--out", str(tmp_path / "a")]
    )
    assert res.exit_code == 0, res.output
    assert "warning:" in res.stderr and "has not finished training" in res.stderr
    assert "status 'partial'" in res.stderr and "after epoch 1 of 3" in res.stderr
    (run / "results.json").unlink()  # killed before writing it
    res = runner.invoke(
        app, ["gan", "sample", "--run", str(run), "--num", "2", "--out", str(tmp_path / "b")]
    )
    assert res.exit_code == 0 and "no results.json" in res.stderr
    assert len(list((tmp_path / "b").glob("*.jpg"))) == 2
