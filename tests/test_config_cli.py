"""Shipped configs: found by name from anywhere, listed and shown by `genreid config`."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from genreid.cli import app
from genreid.core.config import ConfigError, find_config, load_config, shipped_configs
from genreid.engine.pretrain import PretrainConfig, PretrainPipeline
from genreid.engine.slsr import SlsrConfig, SlsrPipeline
from genreid.engine.tasks import load_any_config, load_task_config
from genreid.engine.tasks.dgnet import DGNetConfig, DGNetTask
from genreid.engine.tasks.gan import GanConfig, GanTask
from genreid.engine.tasks.reid import ReIDTask, ReIDTrainConfig

runner = CliRunner()


def test_every_shipped_config_loads_with_its_task():
    names = shipped_configs()
    assert {"train/tiny", "train/ide_paper", "gan/dcgan_tiny", "gan/wgangp_paper"} <= set(names)
    assert {"dgnet/dgnet_tiny", "dgnet/dgnet_paper", "dgnet/dgnet_tiny_baseline"} <= set(names)
    assert {"dgnet/dgnet_tiny_prim", "dgnet/dgnet_tiny_fine", "dgnet/dgnet_tiny_both"} <= set(names)
    for name in names:
        if name.startswith("pipelines/"):
            pipeline, cfg = load_any_config(name)
            kinds = {SlsrPipeline: SlsrConfig, PretrainPipeline: PretrainConfig}
            assert kinds.get(pipeline) is type(cfg), name
            with pytest.raises(ConfigError, match=f"genreid {pipeline.name} --config"):
                load_task_config(name)
            continue
        task, cfg = load_task_config(name)
        kinds = ((ReIDTask, ReIDTrainConfig), (GanTask, GanConfig), (DGNetTask, DGNetConfig))
        assert (task, type(cfg)) in kinds, name
        # dgnet/dgnet_tiny_baseline is DG-Net Table 3's baseline: the re-ID teacher recipe
        reid = name.startswith("train/") or name == "dgnet/dgnet_tiny_baseline"
        assert reid == (task is ReIDTask), name
        assert (task is DGNetTask) == (name.startswith("dgnet/") and not reid), name


def test_names_resolve_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    assert (
        find_config("tiny")
        == find_config("train/tiny.yaml")
        == find_config("configs/train/tiny.yaml")
    )
    assert load_config(ReIDTrainConfig, "tiny").model.arch == "ide_tiny"
    own = tmp_path / "mine.yaml"
    own.write_text("seed: 3\n")
    assert load_config(ReIDTrainConfig, own).seed == 3  # a path still works
    with pytest.raises(ConfigError, match="Did you mean 'train/tiny'"):
        find_config("train/tiy")


def test_config_list_and_show():
    res = runner.invoke(app, ["config", "list"])
    assert res.exit_code == 0
    lines = {line.split()[0]: line.split()[1] for line in res.output.splitlines()}
    assert lines["train/tiny"] == "reid" and lines["gan/dcgan_tiny"] == "gan"
    assert lines["dgnet/dgnet_tiny"] == lines["dgnet/dgnet_paper"] == "dgnet"
    res = runner.invoke(app, ["config", "show", "gan/dcgan_tiny", "--resolved"])
    assert res.exit_code == 0
    shown = yaml.safe_load(res.output)
    assert shown["task"] == "gan" and shown["model"]["width"] == 16  # from the tiny file
    assert shown["model"]["z_dim"] == 100 and shown["optim"]["gen"]["lr"] == 2e-4  # from _base_
    assert shown["train"]["options"] == {"g_steps": 2, "d_steps": 1, "collapse_loss": 1e-3}
    res = runner.invoke(app, ["config", "show", "nope"])
    assert res.exit_code == 1 and "genreid config list" in res.output
