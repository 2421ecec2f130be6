"""``genreid gan train|sample|metrics`` through the CLI: configs, files, clean errors."""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genreid.cli import app
from genreid.core.config import load_config
from genreid.data.generated import read_generated
from genreid.engine.tasks.gan import GanConfig
from genreid.eval.generation import inception
from tests.fixtures import make_market_tree

CONFIGS = Path(__file__).resolve().parents[1] / "genreid" / "configs" / "gan"
TINY = [
    "data.height=32",
    "data.width=16",
    "model.width=4",
    "model.depth=2",
    "train.batch_size=4",
    "train.epochs=1",
    "train.min_iters=null",  # the tiny configs' iteration floor is for real datasets
    "train.progress=false",
]
WGANGP_TINY = [*TINY, "train.options.critic_steps=2"]  # WGAN-GP's own key
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    "name, arch, size",
    [
        ("dcgan_tiny", "dcgan", [128, 64]),
        ("wgangp_tiny", "wgangp", [128, 64]),
        ("dcgan_paper", "dcgan", [128, 128]),
        ("wgangp_paper", "wgangp", [128, 128]),
    ],
)
def test_configs_load(name, arch, size):
    cfg = load_config(GanConfig, name, ["data.root=/data/Market"])  # a shipped name
    assert cfg.model.arch == arch and list(cfg.data.size) == size
    assert cfg.data.dataset == "market1501"


def test_train_sample_metrics(tmp_path):
    root = make_market_tree(tmp_path / "market", size=(16, 32))
    run, gen = tmp_path / "run", tmp_path / "gen"
    res = runner.invoke(
        app,
        [
            "gan",
            "train",
            "--config",
            str(CONFIGS / "wgangp_tiny.yaml"),
            f"data.root={root}",
            *WGANGP_TINY,
            "--out",
            str(run),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (run / "checkpoints/last.pt").is_file()
    assert json.loads((run / "results.json").read_text())["status"] == "done"
    # resume with more epochs, config taken from the run folder
    res = runner.invoke(app, ["gan", "train", "train.epochs=2", "--out", str(run), "--resume"])
    assert res.exit_code == 0, res.output
    assert json.loads((run / "results.json").read_text())["epochs_completed"] == 2
    res = runner.invoke(
        app,
        [
            "gan",
            "sample",
            "--run",
            str(run),
            "--num",
            "4",
            "--out",
            str(gen),
            "--size",
            "64x32",
            "--seed",
            "1",
            "--grid",
            str(tmp_path / "g.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(read_generated(gen)) == 4 and (tmp_path / "g.png").is_file()
    assert "path,cluster,seed" in (gen / "manifest.csv").read_text()
    out = tmp_path / "m.json"
    res = runner.invoke(
        app,
        [
            "gan",
            "metrics",
            "--real",
            f"market1501:{root}",
            "--fake",
            str(gen),
            "--ssim-only",
            "--ssim-pairs",
            "8",
            "--ssim-size",
            "32x16",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    saved = json.loads(out.read_text())
    assert saved["real"]["images"] == 12 and saved["fake"]["images"] == 4
    assert saved["ssim"]["real"]["pairing"] == "same identity"


def test_clean_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GENREID_INCEPTION_WEIGHTS", raising=False)

    def offline(url, dst):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(inception, "urllib_download", offline)  # tests never download
    root = make_market_tree(tmp_path / "market", size=(16, 32))
    cfg = str(CONFIGS / "dcgan_tiny.yaml")
    metrics = [
        "gan",
        "metrics",
        "--fid",
        "--real",
        str(root / "query"),
        "--fake",
        str(root / "query"),
    ]
    cases = [
        (
            [
                "gan",
                "train",
                "--config",
                cfg,
                "train.epoch=3",
                f"data.root={root}",
                "--out",
                str(tmp_path / "a"),
            ],
            "unknown config key 'train.epoch'",
        ),
        (
            [
                "gan",
                "train",
                "--config",
                cfg,
                f"data.root={tmp_path / 'nowhere'}",
                "--out",
                str(tmp_path / "b"),
            ],
            "error: ",
        ),
        (
            [
                "gan",
                "train",
                "--config",
                cfg,
                "data.height=100",
                "data.width=50",
                f"data.root={root}",
                "--out",
                str(tmp_path / "c"),
            ],
            "multiples of 2^depth",
        ),
        (["gan", "train", "--out", str(tmp_path / "d"), "--resume"], "nothing to resume"),
        (
            [
                "gan",
                "train",
                "--config",
                cfg,
                f"data.root={root}",
                *TINY,
                "optim.gen.lr=1e30",
                "optim.dis.lr=1e30",
                "train.epochs=2",
                "--out",
                str(tmp_path / "e"),
            ],
            "lower learning rate",
        ),
        (
            [
                "gan",
                "sample",
                "--run",
                str(tmp_path / "none"),
                "--num",
                "2",
                "--out",
                str(tmp_path / "s"),
            ],
            "does not exist",
        ),
        (
            metrics,
            "failed (no network)",
        ),
        (
            [*metrics, "--no-download"],
            "downloading is off",
        ),
        (
            ["gan", "metrics", "--real", str(root / "query"), "--fake", str(tmp_path / "no")],
            "folder of images",
        ),
    ]
    for args, msg in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 1, (args, res.output)
        assert msg in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.output + res.stderr


def test_help_lists_commands():
    res = runner.invoke(app, ["gan", "--help"])
    assert res.exit_code == 0
    for cmd in ("train", "sample", "metrics"):
        assert cmd in res.output


def test_genreid_train_picks_the_task_from_the_config(tmp_path):
    """`genreid train -c gan/dcgan_tiny` trains a GAN (the config's task key); `genreid gan
    train` refuses a re-ID config."""
    root = make_market_tree(tmp_path / "market", size=(16, 32))
    run = tmp_path / "run"
    res = runner.invoke(
        app, ["train", "-c", "gan/dcgan_tiny", f"data.root={root}", *TINY, "--out", str(run)]
    )
    assert res.exit_code == 0, res.output
    ckpt = load_config(GanConfig, run / "config.yaml")
    assert ckpt.task == "gan" and (run / "checkpoints/last.pt").is_file()
    assert json.loads((run / "results.json").read_text())["arch"] == "dcgan"
    res = runner.invoke(app, ["gan", "train", "-c", "tiny", f"data.root={root}", "--out", "x"])
    assert res.exit_code == 1 and "trains a 'reid' task, not 'gan'" in res.stderr
