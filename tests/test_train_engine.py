"""Training engine: exact resume, NaN stop, samplers, schedules, end-to-end on synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from genreid.core.config import load_config
from genreid.core.errors import ConfigError, RunFolderError
from genreid.data.generated import write_manifest
from genreid.data.samplers import MixedBatchSampler
from genreid.engine.loop import NonFiniteError
from genreid.engine.optim import LRSchedule, OptimConfig, build_optimizer
from genreid.engine.tasks.reid import ReIDTrainConfig, train
from genreid.models import ModelConfig, build_model
from tests.fixtures import make_market_tree, write_jpeg

CONFIGS = Path(__file__).resolve().parents[1] / "genreid" / "configs" / "train"


def make_data(tmp: Path, ids: int = 4, n_gen: int = 8) -> tuple[Path, Path]:
    """A small Market tree (colour per identity) and a generated folder with clusters."""
    root = make_market_tree(
        tmp / "market", num_train_ids=ids, num_test_ids=3, images_per_camera=2, size=(16, 32)
    )
    gen = tmp / "gen"
    for i in range(n_gen):
        write_jpeg(gen / f"g{i}.jpg", 500 + i, (32, 32))
    write_manifest(gen, [{"path": f"g{i}.jpg", "cluster": i % 2} for i in range(n_gen)])
    return root, gen


def tiny_cfg(root: Path, gen: Path | None, *extra: str) -> ReIDTrainConfig:
    overrides = [
        f"data.root={root}",
        "data.height=32",
        "data.width=16",
        "data.pad=2",
        "train.batch_size=8",
        "train.epochs=2",
        "train.progress=false",
        "train.eval_every=0",
        "model.width=8",
        "model.pretrained=null",
        "train.device=cpu",
        "train.threads=1",
        *extra,
    ]
    if gen is not None:
        overrides.append(f"data.generated={gen}")
    return load_config(ReIDTrainConfig, CONFIGS / "tiny.yaml", overrides)


def test_resume_is_bitwise_exact(tmp_path):
    root, gen = make_data(tmp_path)
    cfg = tiny_cfg(
        root, gen, "labels.strategy=fapl_dist", "optim.schedule=cosine", "data.erasing_p=0.5"
    )
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b", stop_after=1)
    first = json.loads((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["epoch"] == 1 and not (tmp_path / "b" / "results.json").exists()
    train(cfg, tmp_path / "b", resume=True)
    a = torch.load(tmp_path / "a/checkpoints/last.pt", weights_only=True)
    b = torch.load(tmp_path / "b/checkpoints/last.pt", weights_only=True)
    assert a["loop"]["epoch"] == b["loop"]["epoch"] == 2
    for part in ("model", "labels"):
        ma, mb = a["modules"][part], b["modules"][part]
        assert ma.keys() == mb.keys()
        for k in ma:
            assert torch.equal(ma[k], mb[k]), (part, k)
    assert a["modules"]["labels"]["center.centers"].abs().sum() > 0
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert {"rank1", "mAP", "mINP"} <= set(results["final"])
    with pytest.raises(RunFolderError, match="--resume"):
        train(cfg, tmp_path / "b")


def test_nan_loss_stops_and_keeps_checkpoint(tmp_path, monkeypatch):
    root, _ = make_data(tmp_path, n_gen=0)
    cfg = tiny_cfg(root, None, "train.epochs=3")
    import genreid.engine.tasks.reid as reid_task

    calls = {"n": 0}
    real_loss = reid_task.weighted_mean
    per_epoch = 2  # 4 ids x 2 cams x 2 images = 16 images / batch 8

    def flaky(per_image, w):
        calls["n"] += 1
        out = real_loss(per_image, w)
        return out * float("nan") if calls["n"] > per_epoch else out

    monkeypatch.setattr(reid_task, "weighted_mean", flaky)
    with pytest.raises(NonFiniteError, match="lower optim.lr.*generated images") as err:
        train(cfg, tmp_path / "run")
    assert "epoch 2" in str(err.value) and "after epoch 1" in str(err.value)
    ckpt = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)
    assert ckpt["loop"]["epoch"] == 1
    results = json.loads((tmp_path / "run/results.json").read_text())
    assert results["status"] == "stopped" and results["last_good_checkpoint"]["epochs"] == 1


def test_non_finite_weights_are_not_saved(tmp_path, monkeypatch):
    root, _ = make_data(tmp_path, n_gen=0)
    cfg = tiny_cfg(root, None, "train.epochs=3")
    import genreid.engine.loop as loop_mod

    last = tmp_path / "run/checkpoints/last.pt"
    seen = {"epochs": 0, "bytes": b""}
    real_broadcast = loop_mod.ddp.broadcast_buffers

    def poison(module):  # runs for every module at every epoch end, before the checkpoint
        real_broadcast(module)
        if isinstance(module, torch.nn.Module) and hasattr(module, "backbone"):
            seen["epochs"] += 1
            if seen["epochs"] == 2:
                seen["bytes"] = last.read_bytes()
                with torch.no_grad():
                    next(module.parameters()).view(-1)[0] = float("nan")

    monkeypatch.setattr(loop_mod.ddp, "broadcast_buffers", poison)
    with pytest.raises(NonFiniteError, match="epoch 2") as err:
        train(cfg, tmp_path / "run")
    msg = str(err.value)
    assert "NaN or inf" in msg and "after epoch 1) is kept" in msg
    assert "optim.lr" in msg and "train.precision=fp32" in msg and "generated images" in msg
    assert last.read_bytes() == seen["bytes"]  # epoch 1's checkpoint, untouched
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["loop"]["epoch"] == 1
    assert all(v.isfinite().all() for v in ckpt["modules"]["model"].values())


def test_non_finite_test_features_stop_like_a_nan_loss(tmp_path, monkeypatch):
    """Finite weights whose eval-mode activations overflow (seen on random ResNet-50s): the
    evaluation stops the run with the advice, epoch 1's checkpoint kept, no ValueError."""
    root, _ = make_data(tmp_path, n_gen=0)
    cfg = tiny_cfg(root, None, "train.eval_every=1")
    import genreid.eval.ranking.extract as extract

    calls = {"n": 0}
    real = extract.reid_features

    def overflowing(*args, **kwargs):
        calls["n"] += 1
        f = real(*args, **kwargs)
        if calls["n"] == 4:  # the gallery of epoch 2's evaluation
            f[1, 0] = float("inf")
        return f

    monkeypatch.setattr(extract, "reid_features", overflowing)
    with pytest.raises(NonFiniteError) as err:
        train(cfg, tmp_path / "run")
    msg = str(err.value)
    assert "evaluation after epoch 2: 1 of 22 gallery images have NaN or inf" in msg, msg
    assert "optim.lr" in msg
    assert torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)["loop"]["epoch"] == 1
    results = json.loads((tmp_path / "run/results.json").read_text())
    assert results["status"] == "stopped" and results["last_good_checkpoint"]["epochs"] == 1


@pytest.mark.parametrize("strategy", ["fapl_onehot", "fapl_dist", "baseline"])
def test_center_loss_weight_does_not_depend_on_the_batch_size(strategy):
    """FAPL Eq. 13 sums both terms over the batch, so lambda * L_C / L_S must be the same for
    a batch and for that batch repeated (the old summed-center/mean-CE convention grew it
    with the batch); under DDP (equal batches per rank) the average of the ranks' losses is
    the loss of the whole batch."""
    from genreid.labels import LabelBatch, LabelsConfig, build_strategy, soft_cross_entropy

    torch.manual_seed(0)
    cfg = LabelsConfig(strategy=strategy, center_lambda=1e-3)
    s = build_strategy(cfg, 3, feat_dim=4)
    s.center.centers.copy_(torch.randn(3, 4))
    s.center.updated[:] = True
    logits, feats = torch.randn(8, 3), torch.rand(8, 4)
    labels = torch.tensor([0, 1, 2, 0, -1, 1, -1, 2])
    gen = labels < 0

    def ratio_and_loss(reps: int) -> tuple[float, float]:
        b = LabelBatch(logits.repeat(reps, 1), feats.repeat(reps, 1), labels.repeat(reps),
                       gen.repeat(reps), torch.full((8 * reps,), -1), 0)  # fmt: skip
        t = s(b)
        ce = soft_cross_entropy(b.logits, t.q, t.weight)
        return float(t.aux_loss / ce), float(ce + t.aux_loss)

    base, loss = ratio_and_loss(1)
    assert base > 0
    for reps in (4, 8):  # batch 32 and 64
        r, l = ratio_and_loss(reps)
        assert r == pytest.approx(base, rel=1e-5) and l == pytest.approx(loss, rel=1e-5)


def test_strategy_needs_generated(tmp_path):
    root, _ = make_data(tmp_path, n_gen=0)
    with pytest.raises(ConfigError, match="data.generated"):
        train(tiny_cfg(root, None, "labels.strategy=lsro"), tmp_path / "run")


def test_sampler_mixing_share_and_ranks():
    labels = [0, 0, 1, 1, 2, 2, 3, 3] + [-1] * 8
    gen = [False] * 8 + [True] * 8
    s = MixedBatchSampler(labels, gen, batch_size=4, seed=3)
    s.set_epoch(0)
    batches = s.global_batches()
    assert sorted(i for b in batches for i in b) == list(range(16))
    s.set_epoch(0)
    assert s.global_batches() == batches  # deterministic
    s.set_epoch(1)
    assert s.global_batches() != batches
    s.set_epoch(0, include_generated=False)
    assert all(i < 8 for b in s.global_batches() for i in b)
    share = MixedBatchSampler(labels, gen, batch_size=4, seed=3, gen_share=0.25)
    share.set_epoch(0)
    assert all(sum(gen[i] for i in b) == 1 for b in share.global_batches())
    pk = MixedBatchSampler(
        labels, gen, batch_size=4, seed=3, mode="pk", num_instances=2, gen_share=0.5
    )
    pk.set_epoch(0)
    for b in pk.global_batches():
        real = [labels[i] for i in b if not gen[i]]
        assert len(real) == 2 and len(set(real)) == 1
    ranks = [MixedBatchSampler(labels, gen, 4, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(0)
    parts = [list(r) for r in ranks]
    assert len(parts[0]) == len(parts[1]) == 2
    union = sorted(i for p in parts for b in p for i, _ in b)
    assert union == list(range(16))


def test_pk_sampler_warns_once_with_the_effective_batch_size():
    import warnings

    labels = [i // 4 for i in range(16)] + [-1] * 4  # 4 identities x 4 images, 4 generated
    gen = [False] * 16 + [True] * 4
    pk = MixedBatchSampler(labels, gen, batch_size=6, seed=0, mode="pk", num_instances=4)
    pk.set_epoch(0, include_generated=False)
    with pytest.warns(UserWarning, match="effective batch size is 4, not train.batch_size 6"):
        batches = pk.global_batches()
    assert {len(b) for b in batches} == {4}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pk.global_batches()  # said once
        len(pk)
    mixed = MixedBatchSampler(labels, gen, 8, mode="pk", num_instances=4, gen_share=0.25)
    mixed.set_epoch(0)  # 2 generated + 6 real -> 1 identity x 4 + 2 = 6
    with pytest.warns(UserWarning, match=r"4 real \+ 2 generated .* effective batch size is 6"):
        assert {len(b) for b in mixed.global_batches()} == {6}
    full = MixedBatchSampler(labels, gen, 8, mode="pk", num_instances=4)
    full.set_epoch(0, include_generated=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert {len(b) for b in full.global_batches()} == {8}


def test_paper_recipes_test_features():
    """ide tests on pool5 without flip, bottleneck on feature + flipped feature."""
    ide = load_config(ReIDTrainConfig, CONFIGS / "ide_paper.yaml")
    bottleneck = load_config(ReIDTrainConfig, CONFIGS / "bottleneck_paper.yaml")
    assert ide.eval.flip is False and bottleneck.eval.flip is True


def test_bottleneck_recipes_follow_the_paper_text_and_name_the_released_code():
    """Both SLSR papers: the inverse lr policy; ResNet-50 256x256 -> 224x224, DenseNet-121
    288x144 -> 256x128. The released code: a step schedule and 288x144 -> 256x128 for both."""
    paper = load_config(ReIDTrainConfig, "bottleneck_paper")
    dense = load_config(ReIDTrainConfig, "bottleneck_densenet_paper")
    code = load_config(ReIDTrainConfig, "bottleneck_released")
    assert (paper.optim.schedule, paper.optim.inv_gamma, paper.optim.inv_power) == (
        "inverse", 0.1, 0.025,
    )  # fmt: skip
    assert (paper.model.backbone, paper.data.resize, paper.data.size) == (
        "resnet50", [256, 256], (224, 224),
    )  # fmt: skip
    assert (dense.model.backbone, dense.data.resize, dense.data.size) == (
        "densenet121", [288, 144], (256, 128),
    )  # fmt: skip
    assert dense.optim.schedule == "inverse" and dense.train.epochs == paper.train.epochs == 130
    assert (code.optim.schedule, code.optim.milestones, code.data.resize) == (
        "step", [40, 80, 120], [288, 144],
    )  # fmt: skip


def test_sample_seed_touches_only_a_forked_cpu_rng(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from genreid.data.config import DataConfig
    from genreid.data.dataset import ImageDataset
    from genreid.data.records import ImageRecord, Role
    from genreid.data.transforms import train_transform

    pixels = np.random.default_rng(0).integers(0, 256, (32, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    spec = DataConfig(height=32, width=16, pad=4, erasing_p=0.5)
    ds = ImageDataset(
        [ImageRecord(str(tmp_path / "x.png"), 1, 1, Role.TRAIN)], train_transform(spec), {1: 0}
    )
    torch.manual_seed(123)
    before = torch.get_rng_state()
    cuda_seeds = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", cuda_seeds.append)
    a, b = ds[(0, 7)]["image"], ds[(0, 7)]["image"]
    others = [ds[(0, s)]["image"] for s in range(8, 12)]
    assert torch.equal(a, b) and not all(torch.equal(a, o) for o in others)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's CPU RNG is restored
    assert cuda_seeds == []  # CUDA generators are never reseeded


def test_schedules_and_param_groups():
    m = build_model(ModelConfig(arch="ide_tiny", width=8), 3)
    cfg = OptimConfig(lr=0.1, schedule="inverse")
    opt = build_optimizer(m, cfg)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 1.0])
    sch = LRSchedule(opt, cfg, epochs=5)
    for i in range(20):
        sch.step((i + 1) / 10)
    assert sch.lr()[0] == pytest.approx(0.1 * (1 + 0.1 * 20) ** -0.025)
    step = OptimConfig(lr=0.1, schedule="step", milestones=[2])
    sch = LRSchedule(build_optimizer(m, step), step, epochs=3)
    for i in range(19):  # epochs of 10 iterations
        sch.step((i + 1) / 10)
    assert sch.lr()[0] == pytest.approx(0.1) and sch.lr()[1] == pytest.approx(1.0)
    sch.step(2.0)
    assert sch.lr()[0] == pytest.approx(0.01)
    cos = OptimConfig(lr=0.1, schedule="cosine")
    sch = LRSchedule(build_optimizer(m, cos), cos, epochs=2)
    sch.step(1.0)
    assert sch.lr()[0] == pytest.approx(0.05)


def test_smprl_from_baseline_run_and_slsr(tmp_path):
    root, gen = make_data(tmp_path)
    short = ["train.epochs=1", "train.max_iters=1"]
    train(tiny_cfg(root, None, *short), tmp_path / "base")
    res = train(
        tiny_cfg(
            root,
            gen,
            *short,
            "labels.strategy=smprl",
            f"labels.options.smprl_from={tmp_path / 'base'}",
        ),
        tmp_path / "smprl",
    )
    assert res["generated_images"] == 8
    import numpy as np

    with np.load(tmp_path / "smprl" / "smprl_targets.npz") as z:
        q = z["q"]
    assert q.shape == (8, 4)
    np.testing.assert_allclose(np.sort(q, axis=1), np.tile([1, 2, 3, 4], (8, 1)) / 10, rtol=1e-6)
    # SLSR: identities 2 and 4 (labels 0, 1) in cluster 0, 6 and 8 (labels 2, 3) in cluster 1,
    # but one image of identity 2 in cluster 1: majority and any identity sets differ
    train_imgs = sorted(p for p in (root / "bounding_box_train").glob("0*.jpg"))
    train_imgs = [p for p in train_imgs if not p.name.startswith("0000")]
    rows, moved = [], False
    for p in train_imgs:
        c = 0 if int(p.name[:4]) <= 4 else 1
        if int(p.name[:4]) == 2 and not moved:
            c, moved = 1, True
        rows.append(f"{p.name},{c}")
    (tmp_path / "clusters.csv").write_text("path,cluster\n" + "\n".join(rows) + "\n")
    from genreid.engine.loop import Loop
    from genreid.engine.tasks.reid import ReIDTask
    from genreid.labels import LabelBatch

    expected = {
        "majority": [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]],
        "any": [[0.5, 0.5, 0, 0], [1 / 3, 0, 1 / 3, 1 / 3]],
    }
    for rule, want in expected.items():
        clusters = f"labels.options.clusters={tmp_path / 'clusters.csv'}"
        cfg = tiny_cfg(
            root,
            gen,
            *short,
            "labels.strategy=slsr",
            clusters,
            f"labels.options.cluster_ids={rule}",
        )
        task = ReIDTask(cfg)
        Loop(task, tmp_path / f"slsr_{rule}").run()
        got = task.strategy.cluster_q.tolist()
        assert [pytest.approx(r) for r in want] == got, rule
        # the targets the strategy gives generated images of clusters 0 and 1 in training
        batch = LabelBatch(torch.zeros(2, 4), torch.zeros(2, 128), torch.tensor([-1, -1]),
                           torch.tensor([True, True]), torch.tensor([0, 1]), 0)  # fmt: skip
        assert [pytest.approx(r) for r in want] == task.strategy(batch).q.tolist(), rule


def test_end_to_end_beats_untrained(tmp_path):
    from genreid.core.checkpoint import seed_everything
    from genreid.data.datasets import load_dataset
    from genreid.data.synthetic import render_dataset
    from genreid.eval.ranking.extract import evaluate_model

    root = tmp_path / "syn"
    render_dataset(root, ids=32, cams=3, seed=0, size=(64, 32), workers=1, progress=False)
    cfg = load_config(
        ReIDTrainConfig,
        CONFIGS / "tiny.yaml",
        [
            f"data.root={root}",
            "data.height=64",
            "data.width=32",
            "data.pad=4",
            "train.batch_size=16",
            "train.epochs=8",
            "train.eval_every=0",
            "train.progress=false",
            "train.threads=1",
        ],
    )
    ds = load_dataset("market1501", root)
    seed_everything(cfg.seed)  # the very network training starts from
    untrained = build_model(cfg.model, ds.num_train_pids)
    before, _, _ = evaluate_model(untrained, ds, (64, 32))
    res = train(cfg, tmp_path / "run")
    after = res["final"]
    assert after["rank1"] >= before["rank1"] + 0.15, (before, after)
    assert after["mAP"] >= before["mAP"] + 0.1, (before, after)


def test_generated_join_at_gen_start_epoch(tmp_path):
    root, gen = make_data(tmp_path)
    cfg = tiny_cfg(root, gen, "labels.strategy=pseudo_label", "labels.gen_start_epoch=1")
    train(cfg, tmp_path / "run")
    rows = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [r["generated_used"] for r in rows] == [False, True]
    assert [r["images"] for r in rows] == [16, 24]  # 16 real, then 16 real + 8 generated
    # what the generated images were taught: nothing in epoch 0; one-hot targets in epoch 1
    assert "gen/target_entropy" not in rows[0]
    assert rows[1]["gen/target_entropy"] == pytest.approx(0.0, abs=1e-9)
    assert 1 <= rows[1]["gen/effective_identities"] <= 4  # 4 identities


def test_all_in_one_learns_the_extra_class_and_features_ignore_it(tmp_path):
    """all_in_one: K+1 outputs, generated images on class K. After training the network puts
    generated images there; the test feature is the backbone's, before any classifier row."""
    from genreid.data.generated import read_generated
    from genreid.engine.loop import Loop
    from genreid.engine.tasks.reid import ReIDTask
    from genreid.eval.ranking.extract import reid_features

    root, gen = make_data(tmp_path, n_gen=16)
    cfg = tiny_cfg(root, gen, "labels.strategy=all_in_one", "train.epochs=6", "data.pad=0")
    task = ReIDTask(cfg)
    Loop(task, tmp_path / "run").run()
    model = task.model.eval()
    K = len(task.label_map)
    assert task.strategy.num_outputs == K + 1 and model.head[-1].out_features == K + 1
    fake = read_generated(gen)
    from genreid.data.dataset import ImageDataset
    from genreid.data.transforms import test_transform

    ds = ImageDataset(fake, test_transform(cfg.data.size)).batched()
    x = ds.collate([ds[i] for i in range(len(ds))])["image"]
    with torch.no_grad():
        pred = model.head(model.backbone(x)).argmax(1)
    assert (pred == K).float().mean() >= 0.75, pred.tolist()
    feats = reid_features(model, fake, cfg.data.size, flip=False)
    with torch.no_grad():
        pooled = torch.nn.functional.normalize(model.backbone(x), dim=1)
    assert feats.shape == (len(fake), model.feat_dim)
    torch.testing.assert_close(feats, pooled)


@pytest.mark.parametrize("extra", [[], ["labels.center_update=epoch"]])
def test_auto_center_lambda_lands_the_logged_ratio(tmp_path, extra):
    """labels.center_lambda=auto: the epoch mean of lambda * L_C / L_S in metrics.jsonl is
    within 10 % of labels.center_ratio while it calibrates, lambda is fixed and logged after,
    and every epoch of a run with a center term logs the ratio (a literal lambda too)."""
    root, gen = make_data(tmp_path)
    cfg = tiny_cfg(root, gen, "labels.strategy=fapl_dist", "labels.center_ratio=0.5",
                   "labels.center_calibration=2", "train.epochs=4", *extra)  # fmt: skip
    train(cfg, tmp_path / "auto")
    rows = [json.loads(x) for x in (tmp_path / "auto/metrics.jsonl").read_text().splitlines()]
    assert all("loss/center_ratio" in r and "center_lambda" in r for r in rows)
    assert [r["loss/center_ratio"] for r in rows[:2]] == pytest.approx([0.5, 0.5], rel=0.1)
    assert rows[0]["center_lambda"] == 0  # still matching step by step
    assert rows[1]["center_lambda"] == rows[2]["center_lambda"] == rows[3]["center_lambda"] > 0
    lit = tiny_cfg(root, None, "labels.strategy=baseline", "labels.center_lambda=1e-4")
    train(lit, tmp_path / "lit")
    rows = [json.loads(x) for x in (tmp_path / "lit/metrics.jsonl").read_text().splitlines()]
    assert all(r["center_lambda"] == pytest.approx(1e-4) for r in rows)
    assert all(0 < r["loss/center_ratio"] < 0.05 for r in rows)  # 1e-4 is inert here


def test_resume_is_exact_through_calibration_and_epoch_centers(tmp_path):
    root, gen = make_data(tmp_path)
    cfg = tiny_cfg(root, gen, "labels.strategy=fapl_onehot", "labels.center_update=epoch",
                   "labels.center_calibration=2", "train.epochs=3")  # fmt: skip
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b", stop_after=1)
    train(cfg, tmp_path / "b", resume=True)
    a = torch.load(tmp_path / "a/checkpoints/last.pt", weights_only=True)["modules"]
    b = torch.load(tmp_path / "b/checkpoints/last.pt", weights_only=True)["modules"]
    for part in ("model", "labels"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    assert int(a["labels"]["center.epochs_done"]) == 3
    assert bool(a["labels"]["center_weight.fixed"]) and a["labels"]["center_weight.value"] > 0


def test_triplet_term_is_logged_and_added_to_the_loss(tmp_path):
    """With labels.triplet the step's loss is the cross-entropy plus weight x triplet."""
    root, _ = make_data(tmp_path, ids=4)
    pk = ("data.sampler=pk", "data.pk_instances=2", "labels.triplet_margin=0.5")
    train(tiny_cfg(root, None, *pk, "labels.triplet=2.0"), tmp_path / "t")
    rows = [json.loads(x) for x in (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()]
    ends = [r for r in rows if r.get("epoch_end")]
    assert ends and all(r["loss/triplet"] > 0 for r in ends)
    for r in ends:  # one real-only batch per step: loss = CE + 2 * triplet
        assert r["loss"] == pytest.approx(r["loss/real"] + 2.0 * r["loss/triplet"], rel=1e-4)
