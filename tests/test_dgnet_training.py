"""DG-Net as a task of the training loop: run folder, teacher checks, bitwise resume, and the
test model through the same evaluation path as every re-ID run."""

from __future__ import annotations

import json

import pytest
import torch

from genreid.core.checkpoint import atomic_save, load_checkpoint
from genreid.core.config import load_config
from genreid.core.errors import ConfigError
from genreid.engine.loop import Loop, TrainingError
from genreid.engine.tasks import load_task_config
from genreid.engine.tasks.dgnet import DGNetConfig, DGNetTask, passes_floor
from genreid.engine.tasks.reid import ReIDTrainConfig
from genreid.engine.tasks.reid import train as train_reid
from genreid.eval.ranking.extract import load_trained_model
from genreid.models.dgnet import DGNetReID
from tests.fixtures import DGNET_SMALL, make_market_tree

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = [
    *DGNET_SMALL,
    "train.pairs=2",
    "train.epoch_iters=3",
    "train.epochs=2",
    "train.grid_images=3",
    "train.progress=false",
    "train.device=cpu",  # resume is bitwise exact on the CPU
    "loss.start=2",  # L_prim and L_fine from the third iteration, full weight from the fourth
    "loss.warmup=2",
]
TEACHER = [
    "data.height=64",
    "data.width=32",
    "model.width=8",
    "model.pretrained=null",
    "train.epochs=1",
    "train.batch_size=8",
    "train.progress=false",
    "train.device=cpu",
]


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """4 training identities x 2 cameras x 2 images at 32x64, plus query and gallery."""
    return make_market_tree(tmp_path_factory.mktemp("market"), num_train_ids=4, size=(32, 64))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, market):
    run = tmp_path_factory.mktemp("teacher") / "run"
    cfg = load_config(ReIDTrainConfig, "dgnet_tiny_baseline", [f"data.root={market}", *TEACHER])
    train_reid(cfg, run)
    return run


def cfg_for(market, teacher, *extra: str) -> DGNetConfig:
    return load_config(
        DGNetConfig, "dgnet_tiny", [f"data.root={market}", f"teacher={teacher}", *SMALL, *extra]
    )


def test_run_folder_metrics_and_evaluation(tmp_path, market, teacher):
    run = tmp_path / "run"
    res = Loop(DGNetTask(cfg_for(market, teacher)), run).run()
    assert res["status"] == "done" and res["steps"] == 6 and res["num_classes"] == 4
    assert res["teacher"]["run"] == str(teacher.resolve())
    for name in ("config.yaml", "env.json", "results.json", "checkpoints/last.pt"):
        assert (run / name).is_file(), name
    assert (run / "figures/swap_001.png").is_file() and (run / "figures/swap_002.png").is_file()
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    first, second = [r for r in records if r.get("epoch_end")]
    # iterations 0-2: lambda 0, 0, 0.5 x 2; iterations 3-5: 2 (the epoch means)
    assert first["lambda_prim"] == pytest.approx(1 / 3) and second["lambda_prim"] == 2.0
    assert {"loss/d", "loss/g", "d/gp", "g/img1", "g/img2", "g/code_a", "g/code_s"} <= set(first)
    assert {"g/id", "g/id_cross", "g/adv", "g/prim", "g/fine", "g/fine_real"} <= set(first)
    assert {"rank1", "mAP"} <= set(second) and "rank1" not in first  # evaluated at the end
    # the swaps judged by the teacher and measured, at the end, in metrics and results
    t, g = res["transfer"], res["generated"]
    assert t["judge"] == f"teacher {teacher}" and t["swaps"] == 256
    assert 0 <= t["appearance"] <= 1 and 0 <= t["structure"] <= 1
    assert t["appearance"] + t["structure"] <= 1 and g["against"] == "the training images"
    assert second["swap/appearance"] == t["appearance"] and second["gen/recall"] == g["recall"]
    assert second["lr_ea"] == pytest.approx(0.002)
    ckpt = load_checkpoint(run / "checkpoints/last.pt")
    assert set(ckpt["modules"]) == {"E_a", "E_s", "G", "D"}
    assert set(ckpt["optimizers"]) == {"E_a", "gen", "D"}
    assert set(ckpt["schedulers"]) == {"E_a", "gen", "D"}
    assert set(ckpt["scalers"]) == {"scaler_g", "scaler_d"}
    assert ckpt["meta"]["num_classes"] == 4 and len(ckpt["meta"]["teacher"]["sha256"]) == 64
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(run / "tb"), size_guidance={"images": 0}).Reload()
    assert [s.step for s in tb.Images("swap")] == [3, 6]
    # the same test model and features as `genreid extract` uses
    model, data, ev, _ = load_trained_model(run)
    assert isinstance(model, DGNetReID) and not model.training
    assert model.feature == "both" and model.beta == 0.5 and data.size == (64, 32)
    assert model(torch.zeros(2, 3, 64, 32)).shape == (2, 32)
    prim, _, _, _ = load_trained_model(run, overrides=["model.feature=prim"])
    assert prim(torch.zeros(1, 3, 64, 32)).shape == (1, 16)


def test_min_passes_stretches_the_epochs_and_the_schedule_alike(tmp_path, market, teacher):
    """16 training images, 2 pairs = 4 images an iteration: the 6 configured iterations make
    1.5 passes; 3 passes need 12 iterations = 4 epochs of 3 (x2), 3.5 need 14 = 5 epochs (x2.5)."""
    ms = [f"optim.{n}.milestones=[3]" for n in ("ea", "gen", "dis")]
    cfg = cfg_for(market, teacher, *ms, "train.min_passes=1.5")
    assert passes_floor(cfg, 16) is cfg  # already enough passes
    three = passes_floor(cfg_for(market, teacher, *ms, "train.min_passes=3"), 16)
    assert three.iterations == 12 and three.train.epochs == 4
    assert (three.loss.start, three.loss.warmup) == (4, 4)
    assert three.optim.ea.milestones == three.optim.gen.milestones == [6]
    more = passes_floor(cfg_for(market, teacher, *ms, "train.min_passes=3.5"), 16)
    assert more.train.epochs == 5 and (more.loss.start, more.optim.dis.milestones) == (5, [8])
    with pytest.raises(ConfigError, match="train.min_passes"):
        cfg_for(market, teacher, "train.min_passes=-1")
    # a run trains the stretched schedule, and its config.yaml says so (a resume keeps it)
    run = tmp_path / "run"
    res = DGNetTask.train(cfg_for(market, teacher, *ms, "train.min_passes=3"), run)
    assert res["steps"] == 12 and res["epochs"] == 4
    saved = load_config(DGNetConfig, run / "config.yaml")
    assert saved.train.epochs == 4 and saved.loss.start == 4 and saved.optim.ea.milestones == [6]
    assert passes_floor(saved, 16) is saved


def test_resume_is_bitwise_exact(tmp_path, market, teacher):
    cfg = cfg_for(market, teacher, "train.checkpoint_every=2")
    Loop(DGNetTask(cfg), tmp_path / "full").run()
    Loop(DGNetTask(cfg), tmp_path / "part", stop_after=1).run()
    assert not (tmp_path / "part/results.json").exists()
    Loop(DGNetTask(cfg), tmp_path / "part", resume=True).run()
    a = load_checkpoint(tmp_path / "full/checkpoints/last.pt")
    b = load_checkpoint(tmp_path / "part/checkpoints/last.pt")
    for kind in ("modules", "optimizers"):
        for name in a[kind]:
            flat_a, flat_b = _flatten(a[kind][name]), _flatten(b[kind][name])
            assert flat_a.keys() == flat_b.keys()
            for key, value in flat_a.items():
                if torch.is_tensor(value):
                    assert torch.equal(value, flat_b[key]), (kind, name, key)
                else:
                    assert value == flat_b[key], (kind, name, key)
    assert a["schedulers"] == b["schedulers"] and a["loop"]["step"] == b["loop"]["step"] == 6
    full = [json.loads(x) for x in (tmp_path / "full/metrics.jsonl").read_text().splitlines()]
    part = [json.loads(x) for x in (tmp_path / "part/metrics.jsonl").read_text().splitlines()]
    keep = ("loss/d", "loss/g", "g/prim", "g/fine", "rank1")
    assert [{k: r.get(k) for k in keep} for r in full] == [
        {k: r.get(k) for k in keep} for r in part
    ]


def _flatten(state, prefix=""):
    out = {}
    items = state.items() if isinstance(state, dict) else enumerate(state)
    for k, v in items:
        if isinstance(v, dict | list | tuple) and not torch.is_tensor(v):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_a_changed_teacher_refuses_the_resume(tmp_path, market, teacher):
    own = tmp_path / "teacher"
    own.mkdir()
    for name in ("config.yaml", "env.json"):
        (own / name).write_bytes((teacher / name).read_bytes())
    (own / "checkpoints").mkdir()
    ckpt = load_checkpoint(teacher / "checkpoints/last.pt")
    atomic_save(ckpt, own / "checkpoints/last.pt")
    cfg = cfg_for(market, own, "train.epochs=2")
    Loop(DGNetTask(cfg), tmp_path / "run", stop_after=1).run()
    ckpt["modules"]["model"]["head.1.bias"] += 1.0
    atomic_save(ckpt, own / "checkpoints/last.pt")
    with pytest.raises(TrainingError, match="teacher .* changed"):
        Loop(DGNetTask(cfg), tmp_path / "run", resume=True).run()


def test_teacher_errors(tmp_path, market, teacher):
    with pytest.raises(ConfigError, match="needs a teacher"):
        Loop(DGNetTask(cfg_for(market, teacher, "teacher=null")), tmp_path / "a").run()
    other = make_market_tree(tmp_path / "other", num_train_ids=5, size=(32, 64))
    with pytest.raises(ConfigError, match="5 training identities"):
        Loop(DGNetTask(cfg_for(other, teacher)), tmp_path / "b").run()
    # f_fine alone needs no teacher
    res = Loop(
        DGNetTask(cfg_for(market, "null", "loss.prim=0", "train.epochs=1")), tmp_path / "c"
    ).run()
    assert res["status"] == "done" and res["teacher"] == {}


def test_shipped_dgnet_configs_load_with_their_task():
    task, cfg = load_task_config("dgnet_tiny")
    assert task is DGNetTask and cfg.train.epochs * cfg.train.epoch_iters == 1500
    assert cfg.data.size == (128, 64) and cfg.model.pretrained == "synthetic"
    _, paper = load_task_config("dgnet_paper")
    assert paper.iterations == 100_000 and paper.loss.start == 30_000
    assert paper.loss.warmup == 4_000 and paper.optim.ea.milestones == [60_000]
    assert paper.optim.gen.betas == [0.0, 0.999] and paper.data.size == (256, 128)
    for c in (cfg, paper):  # the released trainer's rules where the paper is silent
        assert (c.loss.erasing_p, c.loss.encoder_again, c.loss.fine_real) == (0.5, 0.5, 1.0)
        assert c.loss.detach_appearance is False and c.data.erasing_p == 0.0
    _, prim = load_task_config("dgnet_tiny_prim")
    _, fine = load_task_config("dgnet_tiny_fine")
    _, both = load_task_config("dgnet_tiny_both")
    assert (prim.loss.fine, prim.model.feature) == (0.0, "prim")
    assert (fine.loss.prim, fine.model.feature) == (0.0, "fine")
    assert (both.loss.prim, both.loss.fine, both.model.feature) == (2.0, 0.4, "both")
    # at least 113 passes: VIPeR's 632 training images get the measured 4,500-iteration
    # schedule (3x), PRID2011's 200 keep 1,500 (120 passes)
    viper = passes_floor(both, 632)
    assert both.train.min_passes == 113 and viper.iterations == 4500
    assert (viper.loss.start, viper.loss.warmup, viper.optim.dis.milestones) == (1350, 180, [2700])
    assert passes_floor(both, 200) is both


def _ddp_worker(rank: int, world: int, port: int, root: str, teacher: str, out: str) -> None:
    import os

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    cfg = cfg_for(root, teacher, "train.threads=1", "train.epochs=1", "train.eval_every=1")
    task = DGNetTask(cfg)
    Loop(task, out).run()
    state = {name: getattr(task.steps, name).state_dict() for name in ("E_a", "E_s", "G", "D")}
    torch.save(state, f"{out}/rank{rank}.pt")


def test_two_process_ddp_keeps_identical_weights(tmp_path, market, teacher):
    """Under torchrun the task averages every network's gradients: ranks stay identical."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    mp.spawn(_ddp_worker, args=(2, port, str(market), str(teacher), str(out)), nprocs=2, join=True)
    a = torch.load(out / "rank0.pt", weights_only=True)
    b = torch.load(out / "rank1.pt", weights_only=True)
    ckpt = load_checkpoint(out / "checkpoints/last.pt")
    for name in a:
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), (name, key)
            assert torch.equal(a[name][key], ckpt["modules"][name][key]), (name, key)
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2 and results["steps"] == 3 and "rank1" in results["final"]
