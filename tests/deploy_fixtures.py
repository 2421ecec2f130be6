"""Helpers of the deployment tests (export, index, search): CLI calls, a noisy Market tree
and a tiny run trained in seconds."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from genreid.cli import app
from tests.fixtures import make_market_tree

runner = CliRunner()
TINY = [
    "data.height=64", "data.width=32", "model.width=8", "model.pretrained=null",
    "train.epochs=1", "train.batch_size=8", "train.progress=false", "train.device=cpu",
    "train.threads=1",
]  # fmt: skip


def invoke(*args: object) -> str:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


def fails(*args: object) -> str:
    """Run a command that must fail cleanly: exit 1, one ``error:`` line, no traceback."""
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 1, res.output
    assert res.stderr.startswith("error: ") and "Traceback" not in res.output, res.output
    return res.stderr


def noisy_market(root: Path, num_test_ids: int = 2) -> Path:
    """A Market tree (32x64) whose images are their identity's colour plus per-file noise and a
    left-right ramp, so features differ between images and under mirroring."""
    make_market_tree(root, num_train_ids=4, num_test_ids=num_test_ids, size=(32, 64))
    for path in sorted(root.rglob("*.jpg")):
        with Image.open(path) as img:
            base = np.asarray(img.convert("RGB"), np.float32)
        rng = np.random.default_rng(zlib.crc32(path.name.encode()))
        ramp = np.linspace(-50, 50, base.shape[1], dtype=np.float32)[None, :, None]
        noisy = base + ramp + rng.normal(0, 30, base.shape).astype(np.float32)
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, quality=95)
    return root


def train_tiny(root: Path, out: Path, *extra: str) -> Path:
    """A width-8 ResNet-18 ide run, one epoch on the tree at ``root`` (seconds)."""
    invoke("train", "-c", "tiny", f"data.root={root}", *TINY, *extra, "--out", out)
    return out
