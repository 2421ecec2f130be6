"""``genreid pretrain``, backbone files and ``model.pretrained: synthetic``."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from genreid.cli import app
from genreid.core.config import load_config
from genreid.core.errors import ConfigError, RunFolderError
from genreid.data.datasets import load_dataset
from genreid.data.records import ImageRecord, ReIDDataset, Role
from genreid.engine.pretrain import PretrainConfig, pretrain_jobs, run_pretrain
from genreid.models import ModelConfig, PretrainedError, build_model
from genreid.models.loading import load_run_model
from genreid.models.pretrained import (
    WEIGHTS_DIR,
    file_sha256,
    read_backbone_file,
    shipped_name,
    shipped_weights,
)

SMALL = [
    "synthetic.ids=6", "synthetic.size=[32, 16]", "threads=1",
    "recipe_overrides=[model.pretrained=null, train.epochs=1, model.width=8, train.batch_size=8, "
    "data.pad=2, train.progress=false, train.device=cpu]",
]  # fmt: skip


def test_all_for_training_joins_every_real_identity():
    rec = lambda p, pid, cam, role: ImageRecord(p, pid, cam, role)  # noqa: E731
    ds = ReIDDataset(
        "x", "/r",
        train=[rec("a1", 1, 1, Role.TRAIN), rec("a2", 1, 2, Role.TRAIN)],
        query=[rec("b1", 2, 1, Role.QUERY)],
        gallery=[rec("b2", 2, 2, Role.GALLERY), rec("j", -1, 1, Role.GALLERY),
                 rec("d", 0, 3, Role.GALLERY), rec("c1", 3, 1, Role.GALLERY)],
    )  # fmt: skip
    all_ = ds.all_for_training()
    assert [r.path for r in all_.train] == ["a1", "a2", "b1", "b2", "c1"]
    assert all(r.role is Role.TRAIN for r in all_.train)
    assert not all_.query and not all_.gallery
    assert all_.train_label_map() == {1: 0, 2: 1, 3: 2}


def test_pretrain_end_to_end(tmp_path):
    out = tmp_path / "pre"
    cfg = load_config(PretrainConfig, "pretrain_tiny", SMALL)
    side = run_pretrain(cfg, out)

    # every identity of every split trained (the set's 6, not the training half's 3)
    full = load_dataset("market1501", out / "synthetic")
    real = [r for s in (full.train, full.query, full.gallery) for r in s if r.pid > 0]
    assert side["training"]["identities"] == 6 == len({r.pid for r in real})
    assert side["training"]["images"] == len(real) and side["training"]["final_loss"] > 0
    assert side["synthetic"]["seed"] == 1000 and side["synthetic"]["size"] == [32, 16]
    assert side["sha256"] == file_sha256(out / "backbone.pt")
    assert (side["backbone"], side["width"]) == ("resnet18", 8)

    # the file holds exactly the trained run's backbone
    state, header = read_backbone_file(out / "backbone.pt")
    trained = load_run_model(out / "train", device="cpu").backbone.state_dict()
    assert state.keys() == trained.keys()
    assert all(torch.equal(state[k], trained[k]) for k in state)
    assert header["format"] == "genreid-backbone" and header["version"] == 1

    # and initialises a new model's backbone, any head
    m = build_model(
        ModelConfig(arch="bottleneck_tiny", width=8, pretrained=str(out / "backbone.pt")), 4
    )
    assert all(torch.equal(m.backbone.state_dict()[k], state[k]) for k in state)

    # a second call skips every stage; another config in the same folder is refused
    before = (out / "backbone.pt").stat().st_mtime_ns
    assert run_pretrain(cfg, out)["sha256"] == side["sha256"]
    assert (out / "backbone.pt").stat().st_mtime_ns == before
    with pytest.raises(RunFolderError, match="synthetic.ids"):
        run_pretrain(load_config(PretrainConfig, "pretrain_tiny", [*SMALL, "synthetic.ids=7"]), out)

    # an existing complete render is reused through root; one of other arguments is refused
    again = load_config(PretrainConfig, "pretrain_tiny", [*SMALL, f"root={out / 'synthetic'}"])
    assert run_pretrain(again, tmp_path / "reuse")["sha256"] == side["sha256"]
    assert not (tmp_path / "reuse" / "synthetic").exists()
    wrong = load_config(PretrainConfig, "pretrain_tiny", [*SMALL, "synthetic.seed=3",
                                                          f"root={out / 'synthetic'}"])  # fmt: skip
    with pytest.raises(ConfigError, match="does not hold a complete synthetic render"):
        run_pretrain(wrong, tmp_path / "wrong")


def test_backbone_file_errors(tmp_path):
    cfg = load_config(PretrainConfig, "pretrain_tiny", SMALL)
    run_pretrain(cfg, tmp_path / "pre")
    path = tmp_path / "pre" / "backbone.pt"
    # made for resnet18 at width 8: another width or backbone is named in the error
    with pytest.raises(PretrainedError, match="holds a resnet18 at width 8.*resnet18 at width 16"):
        build_model(ModelConfig(arch="ide_tiny", pretrained=str(path)), 3)
    # one changed byte: the sha256 in the sidecar catches it before torch reads the file
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(path, bad / "backbone.pt")
    shutil.copy(path.with_suffix(".json"), bad / "backbone.json")
    data = bytearray((bad / "backbone.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "backbone.pt").write_bytes(bytes(data))
    with pytest.raises(PretrainedError, match="sha256"):
        build_model(ModelConfig(arch="ide_tiny", width=8, pretrained=str(bad / "backbone.pt")), 3)
    (bad / "backbone.pt").write_bytes(bytes(data[:1000]))  # cut short: torch could not read it
    with pytest.raises(PretrainedError, match="sha256"):
        build_model(ModelConfig(arch="ide_tiny", width=8, pretrained=str(bad / "backbone.pt")), 3)
    (bad / "backbone.json").unlink()  # without the sidecar, torch's error is named
    with pytest.raises(PretrainedError, match="cannot load"):
        build_model(ModelConfig(arch="ide_tiny", width=8, pretrained=str(bad / "backbone.pt")), 3)


def test_pretrain_cli_and_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="synthetic: ids must be in 2"):
        load_config(PretrainConfig, "pretrain_tiny", ["synthetic.ids=1"])
    with pytest.raises(ConfigError, match="Did you mean 'recipe_overrides'"):
        load_config(PretrainConfig, "pretrain_tiny", ["recipe_override=[]"])
    res = CliRunner().invoke(app, ["train", "-c", "pretrain_tiny", "--out", str(tmp_path / "t")])
    assert res.exit_code == 1 and "genreid pretrain --config pretrain_tiny" in res.output
    res = CliRunner().invoke(app, ["pretrain", "--out", str(tmp_path / "p"), *SMALL])
    assert res.exit_code == 0, res.output
    assert "trained on 6 identities" in res.output and (tmp_path / "p/backbone.pt").is_file()
    with pytest.raises(ConfigError, match="executor dask needs address"):
        load_config(PretrainConfig, "pretrain_tiny", ["executor=dask"])
    # the pipeline is a plan on the reproduce runner: render, train, export, one after another
    cfg = load_config(PretrainConfig, "pretrain_tiny", SMALL)
    jobs = pretrain_jobs(cfg, tmp_path / "q", tmp_path / "q/synthetic")
    assert [(j.id, j.kind, j.deps) for j in jobs.values()] == [
        ("synthetic", "render", []), ("train", "train", ["synthetic"]),
        ("backbone", "export", ["train"]),
    ]  # fmt: skip
    assert "train.threads=1" in jobs["train"].params["overrides"]
    gan = load_config(PretrainConfig, "pretrain_gan_tiny")
    assert list(pretrain_jobs(gan, tmp_path / "g", tmp_path / "g/synthetic"))[-1] == "generator"
    # the paper-scale config loads and its recipe resolves (not trained here)
    paper = load_config(PretrainConfig, "pretrain_paper")
    assert paper.synthetic.size == [256, 128] and paper.recipe == "train/ide_paper"


def test_on_dask_the_runner_gets_the_threads_asked_for_or_none(tmp_path, monkeypatch):
    """``threads: null`` on a Dask cluster hands the runner None (each worker keeps its own
    torch threads, as this process does when it runs the jobs itself), not 1."""
    from genreid.engine import pretrain

    class Planned(Exception):
        pass

    handed: list[int | None] = []

    def run_jobs(jobs, workers, threads, *args, **kwargs):
        handed.append(threads)
        raise Planned

    monkeypatch.setattr(pretrain, "run_jobs", run_jobs)
    dask = [o for o in SMALL if o != "threads=1"] + ["executor=dask", "address=tcp://127.0.0.1:1"]
    for i, extra in enumerate([["threads=2"], []]):
        with pytest.raises(Planned):
            run_pretrain(load_config(PretrainConfig, "pretrain_tiny", [*dask, *extra]),
                         tmp_path / str(i))  # fmt: skip
    assert handed == [2, None]


# ---------------------------------------------------------------- the shipped tiny backbone
SHIPPED = WEIGHTS_DIR / shipped_name("resnet18", 16)


def test_shipped_weights_match_their_record_and_load_into_tiny_models():
    side = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert file_sha256(SHIPPED) == side["sha256"]
    assert side["made_by"] == "genreid pretrain" and side["command"].startswith("genreid pretrain")
    assert side["synthetic"]["seed"] != 0  # never the people of the seed-0 test sets
    state, _ = read_backbone_file(SHIPPED)
    for arch in ("ide_tiny", "bottleneck_tiny"):
        m = build_model(ModelConfig(arch=arch, pretrained="synthetic"), 5)
        assert all(torch.equal(m.backbone.state_dict()[k], v) for k, v in state.items())


def test_pretrained_synthetic_changes_the_backbone_and_nothing_else():
    torch.manual_seed(0)
    plain = build_model(ModelConfig(arch="ide_tiny"), 5)
    torch.manual_seed(0)
    pre = build_model(ModelConfig(arch="ide_tiny", pretrained="synthetic"), 5)
    assert plain.spec.arch == pre.spec.arch and plain.feat_dim == pre.feat_dim
    heads = zip(plain.head.parameters(), pre.head.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in heads)
    after = pre.backbone.state_dict()
    changed = [
        k for k, v in plain.backbone.state_dict().items()
        if v.is_floating_point() and not torch.equal(v, after[k])
    ]  # fmt: skip
    assert len(changed) > 10  # every conv and norm layer, not a stray one
    with pytest.raises(PretrainedError, match="ships synthetic-pedestrian weights for resnet18"):
        build_model(ModelConfig(arch="ide", pretrained="synthetic"), 5)
    assert shipped_weights() == ["resnet18 (width 16)"]  # the shipped generator is no backbone


def test_imagenet_weights_without_a_network_are_a_one_line_error(tmp_path, monkeypatch):
    """A paper recipe on a machine without internet stops with the ways out, not a traceback."""
    import urllib.error

    import torchvision.models._api as tv_api

    from genreid.models.backbones import imagenet_state_dict
    from tests.fixtures import make_market_tree

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached weights either
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    with pytest.raises(PretrainedError) as info:
        imagenet_state_dict("resnet50")
    text = str(info.value)
    assert "URLError" in text and str(cached) in text
    assert "model.pretrained=synthetic" in text and "model.pretrained=null" in text
    root = make_market_tree(tmp_path / "m", num_train_ids=2, num_test_ids=2)
    res = CliRunner().invoke(
        app, ["train", "-c", "ide_paper", f"data.root={root}", "--out", str(tmp_path / "run")]
    )
    assert res.exit_code == 1 and "error: model.pretrained: imagenet" in res.output
    assert "Traceback" not in res.output
