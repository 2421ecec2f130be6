"""GAN training runs: run folder, exact resume, guards, per-cluster runs, sampling, manifests."""

from __future__ import annotations

import json

import pytest
import torch

from genreid.core.checkpoint import load_checkpoint
from genreid.core.config import load_config
from genreid.core.errors import RunFolderError
from genreid.data.dataset import ImageDataset
from genreid.data.errors import DatasetError
from genreid.data.generated import read_generated
from genreid.data.transforms import GanTransform
from genreid.engine.gan_sampling import SamplingError, per_image_seed, sample_to_folder
from genreid.engine.loop import TrainingStopped
from genreid.engine.tasks.gan import GanConfig, GanSteps, iteration_floor, train_gan
from tests.fixtures import checkpoint_tensors, make_market_tree

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """12 training images (3 identities x 2 cameras x 2), plus query and gallery."""
    return make_market_tree(tmp_path_factory.mktemp("market"), size=(16, 32))


def cfg_for(root, arch="dcgan", *extra: str) -> GanConfig:
    base = [
        f"data.root={root}",
        f"model.arch={arch}",
        "data.height=32",
        "data.width=16",
        "model.width=4",
        "model.depth=2",
        "train.batch_size=4",
        "train.progress=false",
        "train.log_every=1",
        "train.grid_size=4",
        "train.device=cpu",  # resume is bitwise exact on the CPU (GPU kernels may not be)
        *(["train.options.critic_steps=2"] if arch == "wgangp" else []),  # WGAN-GP's own key
    ]
    return load_config(GanConfig, None, [*base, *extra])


def test_run_folder(tmp_path, market):
    run = tmp_path / "run"
    res = train_gan(cfg_for(market, "dcgan", "train.epochs=2"), run)
    assert res["status"] == "done" and res["epochs_completed"] == 2 and res["iteration"] == 6
    for name in (
        "config.yaml",
        "env.json",
        "metrics.jsonl",
        "results.json",
        "train_images.txt",
        "checkpoints/last.pt",
        "figures/epoch_001.png",
        "figures/epoch_002.png",
    ):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(run / "tb"), size_guidance={"images": 0}).Reload()
    assert "samples" in tb.Tags()["images"]
    shots = tb.Images("samples")
    assert [s.step for s in shots] == [3, 6] and shots[0].width > 0 and shots[0].height > 0
    assert json.loads((run / "env.json").read_text())["stage"] == "gan"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if not r.get("epoch_end")] == [1, 2, 3, 4, 5, 6]
    assert {"loss/d", "loss/g", "d/real", "d/fake"} <= set(records[0])
    ends = [r for r in records if r.get("epoch_end")]
    assert [(r["epoch"], r["step"], r["iteration"]) for r in ends] == [(1, 3, 3), (2, 6, 6)]
    assert all({"data_seconds", "compute_seconds", "images_per_s"} <= set(r) for r in ends)
    used = (run / "train_images.txt").read_text().splitlines()
    assert len(used) == 12 and all("bounding_box_train" in p for p in used)
    # a second fresh run into the same folder is refused
    with pytest.raises(RunFolderError, match="--resume"):
        train_gan(cfg_for(market, "dcgan", "train.epochs=2"), run)


AUGMENTED = ("train.augment=color,translation,cutout", "train.ema=0.9")


@pytest.mark.parametrize(
    "arch, extra", [("dcgan", ()), ("wgangp", ()), ("dcgan", AUGMENTED), ("wgangp", AUGMENTED)]
)
def test_resume_is_bitwise_exact(tmp_path, market, arch, extra):
    """Also with DiffAugment's draws and the EMA generator (its weights and update count)."""
    stop = "train.max_iters=4" if arch == "dcgan" else "train.max_iters=2"  # mid-epoch 2
    full, part = tmp_path / "full", tmp_path / "part"
    train_gan(cfg_for(market, arch, "train.epochs=3", *extra), full)
    first = train_gan(cfg_for(market, arch, "train.epochs=3", stop, *extra), part)
    assert first["status"] == "partial" and first["epochs_completed"] == 1
    ck = load_checkpoint(part / "checkpoints/last.pt")
    assert ck["loop"]["batch_in_epoch"] == 1  # stopped mid-epoch
    train_gan(cfg_for(market, arch, "train.epochs=3", *extra), part, resume=True)
    a = dict(checkpoint_tensors(load_checkpoint(full / "checkpoints/last.pt")))
    b = dict(checkpoint_tensors(load_checkpoint(part / "checkpoints/last.pt")))
    assert a.keys() == b.keys()
    assert any(k.startswith("/modules/G_ema") for k in a) == bool(extra)
    for key in a:
        if not key.startswith("/rng") and key != "/task_state/loader_rng":
            assert torch.equal(a[key], b[key]), key

    def losses(run):
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        timing = ("images_per_s", "seconds", "data_share")
        return [{k: v for k, v in r.items() if not any(t in k for t in timing)} for r in rows]

    assert losses(full) == losses(part)


HUGE_LR = ["optim.gen.lr=1e30", "optim.dis.lr=1e30"]


def test_nan_guard_keeps_last_good_checkpoint(tmp_path, market):
    run = tmp_path / "run"
    train_gan(cfg_for(market, "dcgan", "train.epochs=1"), run)
    good = (run / "checkpoints/last.pt").read_bytes()
    with pytest.raises(TrainingStopped) as info:
        train_gan(cfg_for(market, "dcgan", "train.epochs=3", *HUGE_LR), run, resume=True)
    msg = str(info.value)
    assert "NaN" in msg and "lower learning rate" in msg and "last good checkpoint" in msg
    assert (run / "checkpoints/last.pt").read_bytes() == good
    res = json.loads((run / "results.json").read_text())
    assert res["status"] == "stopped" and res["last_good_checkpoint"]["epochs"] == 1


def test_nan_loss_before_any_checkpoint(tmp_path, market, monkeypatch):
    original = GanSteps.d_step

    def nan_step(self, real):
        original(self, real * float("nan"))

    monkeypatch.setattr(GanSteps, "d_step", nan_step)
    with pytest.raises(TrainingStopped, match="discriminator loss became NaN.*No checkpoint"):
        train_gan(cfg_for(market, "dcgan", "train.epochs=1"), tmp_path / "run")
    assert not (tmp_path / "run/checkpoints/last.pt").exists()


def test_collapse_guards(tmp_path, market, monkeypatch):
    def collapsed(self, real):
        self.last.update({"loss/d": 1e-6, "d/real": 0.9999, "d/fake": 1e-4})

    monkeypatch.setattr(GanSteps, "d_step", collapsed)
    with pytest.raises(TrainingStopped, match="discriminator collapsed.*g_steps"):
        train_gan(
            cfg_for(market, "dcgan", "train.epochs=2", "train.collapse_patience=2"), tmp_path / "a"
        )
    monkeypatch.undo()
    with pytest.raises(TrainingStopped, match="critic gap"):
        train_gan(
            cfg_for(
                market,
                "wgangp",
                "train.epochs=2",
                "train.collapse_patience=1",
                "train.options.max_critic_gap=1e-12",
            ),
            tmp_path / "b",
        )


def test_sampling_is_deterministic_and_reads_back(tmp_path, market):
    run = tmp_path / "run"
    train_gan(cfg_for(market, "wgangp", "train.epochs=1"), run)
    a = sample_to_folder(run, 5, tmp_path / "a", seed=3, batch_size=2).parent
    b = sample_to_folder(run, 5, tmp_path / "b", seed=3, batch_size=2).parent
    c = sample_to_folder(run, 5, tmp_path / "c", seed=4, size=(40, 20)).parent
    names = sorted(p.name for p in a.glob("*.jpg"))
    assert names == [f"{i:06d}.jpg" for i in range(5)]
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes()
    assert (a / names[0]).read_bytes() != (c / names[0]).read_bytes()
    assert (a / "manifest.csv").read_text() == (b / "manifest.csv").read_text()
    assert f"000002.jpg,,{per_image_seed(3, 2)}" in (a / "manifest.csv").read_text()
    recs = read_generated(c)
    assert len(recs) == 5 and all(r.generated and r.pid == -1 and r.cluster is None for r in recs)
    batch = next(
        iter(torch.utils.data.DataLoader(ImageDataset(recs, GanTransform([40, 20])), batch_size=5))
    )
    assert batch["image"].shape == (5, 3, 40, 20)
    assert batch["generated"].all() and (batch["label"] == -1).all()
    with pytest.raises(SamplingError, match="already holds"):
        sample_to_folder(run, 5, a)


def test_per_cluster_training_and_sampling(tmp_path, market):
    train = sorted((market / "bounding_box_train").glob("0*.jpg"))
    train = [p for p in train if not p.name.startswith("0000")]
    lines = ["path,cluster"]
    for i, p in enumerate(train):
        ref = f"bounding_box_train/{p.name}" if i % 2 else p.name  # relative to root, or bare
        lines.append(f"{ref},{i % 2 * 5}")  # clusters 0 and 5
    clusters = tmp_path / "clusters.csv"
    clusters.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    res = train_gan(cfg_for(market, "dcgan", "train.epochs=1", f"data.clusters={clusters}"), run)
    assert res["status"] == "done" and sorted(res["clusters"]) == ["0", "5"]
    for c in (0, 5):
        assert (run / f"cluster_{c}/checkpoints/last.pt").is_file()
        assert (run / f"cluster_{c}/figures/epoch_001.png").is_file()
        assert len((run / f"cluster_{c}/train_images.txt").read_text().splitlines()) == 6
    assert (run / "config.yaml").is_file() and (run / "results.json").is_file()
    out = tmp_path / "gen"
    sample_to_folder(run, 5, out, grid=tmp_path / "grid.png")
    recs = read_generated(out)
    assert [r.cluster for r in recs] == [0, 0, 0, 5, 5]
    assert (tmp_path / "grid.png").is_file()
    # resuming a finished per-cluster run is a no-op that keeps it done
    assert (
        train_gan(
            cfg_for(market, "dcgan", "train.epochs=1", f"data.clusters={clusters}"),
            run,
            resume=True,
        )["status"]
        == "done"
    )


def test_scaled_cluster_epochs_give_each_gan_the_iterations_of_one_gan_on_all(tmp_path, market):
    train = sorted(p for p in (market / "bounding_box_train").glob("0*.jpg"))
    train = [p for p in train if not p.name.startswith("0000")]  # 12 images
    clusters = tmp_path / "clusters.csv"  # 8 images in cluster 0, 4 in cluster 1
    clusters.write_text(
        "path,cluster\n" + "".join(f"{p.name},{int(i >= 8)}\n" for i, p in enumerate(train))
    )
    one = train_gan(cfg_for(market, "dcgan", "train.epochs=2"), tmp_path / "one")
    keys = ["train.epochs=2", f"data.clusters={clusters}"]
    same = train_gan(cfg_for(market, "dcgan", *keys), tmp_path / "same")
    scaled = train_gan(
        cfg_for(market, "dcgan", *keys, "train.cluster_epochs=scaled"), tmp_path / "scaled"
    )
    assert one["iteration"] == 2 * 12 // 4
    # same: 2 epochs each (8/4 and 4/4 batches per epoch); scaled: ceil(2 * 12/8) = 3 and
    # 2 * 12/4 = 6 epochs, 6 iterations each, as many as the GAN on all 12 images
    assert [same["clusters"][c]["iteration"] for c in "01"] == [4, 2]
    assert [scaled["clusters"][c]["epochs"] for c in "01"] == [3, 6]
    assert [scaled["clusters"][c]["iteration"] for c in "01"] == [6, 6]
    # min_iters counts the iterations of one GAN on all 12 images (3 an epoch): 9 -> 3 epochs
    # each (same), or 9 iterations each (scaled: 3 * 12/8 -> 5 epochs, 3 * 12/4 = 9 epochs)
    keys.append("train.min_iters=9")
    same = train_gan(cfg_for(market, "dcgan", *keys), tmp_path / "same9")
    assert [same["clusters"][c]["epochs"] for c in "01"] == [3, 3]
    scaled = train_gan(
        cfg_for(market, "dcgan", *keys, "train.cluster_epochs=scaled"), tmp_path / "scaled9"
    )
    assert [scaled["clusters"][c]["epochs"] for c in "01"] == [5, 9]
    assert [scaled["clusters"][c]["iteration"] for c in "01"] == [10, 9]


def test_min_iters_raises_the_epochs_of_a_small_set(tmp_path, market):
    # 12 images, batch 4: 3 iterations an epoch; min_iters 7 needs ceil(7/3) = 3 epochs
    res = train_gan(cfg_for(market, "dcgan", "train.epochs=1", "train.min_iters=7"), tmp_path / "a")
    assert res["epochs"] == 3 and res["iteration"] == 9
    # WGAN-GP, 2 critic steps an iteration: 14 critic steps of 3 a epoch need 5 epochs
    keys = ("train.epochs=1", "train.min_iters=7")
    res = train_gan(cfg_for(market, "wgangp", *keys), tmp_path / "b")
    assert res["epochs"] == 5 and res["iteration"] == 7
    # never lowers the epochs
    res = train_gan(cfg_for(market, "dcgan", "train.epochs=4", "train.min_iters=2"), tmp_path / "c")
    assert res["epochs"] == 4 and res["iteration"] == 12


@pytest.mark.parametrize(
    ("name", "images", "epochs"),
    [("dcgan_tiny", 632, 79), ("wgangp_tiny", 632, 79), ("dcgan_tiny", 2506, 20),
     ("wgangp_tiny", 2506, 20), ("dcgan_tiny", 12936, 5), ("wgangp_tiny", 12936, 5)],
)  # fmt: skip
def test_tiny_gans_floor_to_the_same_passes_over_a_small_set(name, images, epochs):
    # VIPeR's 632 images are 19 batches of 32: dcgan_tiny's 1,500 iterations (1 real batch
    # each) and wgangp_tiny's 300 (5 critic batches each) both need ceil(1500 / 19) = 79
    # epochs; the synthetic set's 2,506 (78 batches) 20; Market-1501 keeps the 5 configured
    cfg = load_config(GanConfig, f"gan/{name}")
    assert iteration_floor(cfg, images).train.epochs == epochs


def test_cluster_manifest_errors(tmp_path, market):
    query = next((market / "query").glob("*.jpg"))
    bad = tmp_path / "bad.csv"
    bad.write_text(f"path,cluster\nquery/{query.name},0\n")
    with pytest.raises(DatasetError, match="training images only"):
        train_gan(cfg_for(market, "dcgan", f"data.clusters={bad}"), tmp_path / "r1")
    bad.write_text("path,group\nx.jpg,0\n")
    with pytest.raises(DatasetError, match="path,cluster"):
        train_gan(cfg_for(market, "dcgan", f"data.clusters={bad}"), tmp_path / "r2")
    with pytest.raises(DatasetError, match="CSV file"):
        train_gan(cfg_for(market, "dcgan", f"data.clusters={tmp_path / 'no.csv'}"), tmp_path / "r3")


def test_resume_refusals(tmp_path, market):
    with pytest.raises(RunFolderError, match="nothing to resume"):
        train_gan(cfg_for(market), tmp_path / "none", resume=True)
    run = tmp_path / "run"
    train_gan(cfg_for(market, "dcgan", "train.epochs=1"), run)
    with pytest.raises(RunFolderError, match="model.width"):
        train_gan(cfg_for(market, "dcgan", "train.epochs=2", "model.width=8"), run, resume=True)
    # optimiser keys the resume would not apply (the checkpoint's weight decay, Adam's state)
    for key in ("optim.gen.weight_decay=0.1", "optim.dis.name=sgd", "train.grid_size=8"):
        with pytest.raises(RunFolderError) as err:
            train_gan(cfg_for(market, "dcgan", "train.epochs=2", key), run, resume=True)
        assert f"different {key.split('=')[0]} " in str(err.value)
        assert "only train.epochs" in str(err.value) and "optim.gen.lr," in str(err.value)


def test_auto_is_bf16_for_the_measured_dcgan_and_fp32_for_wgangp(tmp_path, market, monkeypatch):
    import genreid.engine.fastpath as fastpath

    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    dcgan = train_gan(cfg_for(market, "dcgan", "train.max_iters=1"), tmp_path / "d")
    assert dcgan["fast_path"] == {
        "precision": "bf16", "compile": False, "channels_last": True, "fused_optimizer": False
    }  # fmt: skip
    wgangp = train_gan(cfg_for(market, "wgangp", "train.max_iters=1"), tmp_path / "w")
    assert wgangp["fast_path"] == {
        "precision": "fp32", "compile": False, "channels_last": False, "fused_optimizer": False
    }  # fmt: skip


@pytest.mark.parametrize("arch", ["dcgan", "wgangp"])
def test_bf16_channels_last_trains_finite_fp32_weights_and_resumes_bitwise(tmp_path, market, arch):
    """bf16 autocast inside the steps (WGAN-GP's penalty differentiates through it) with
    channels_last: fp32 master weights, finite, not fp32's, and a resume as exact as fp32's."""
    fast = ("train.precision=bf16", "train.channels_last=true", "train.epochs=2")
    ref = train_gan(cfg_for(market, arch, "train.epochs=2", "train.precision=fp32"), tmp_path / "a")
    full = train_gan(cfg_for(market, arch, *fast), tmp_path / "b")
    assert full["fast_path"]["precision"] == "bf16" and full["fast_path"]["channels_last"]
    assert ref["fast_path"]["precision"] == "fp32"
    a = dict(checkpoint_tensors(load_checkpoint(tmp_path / "a/checkpoints/last.pt")))
    b = dict(checkpoint_tensors(load_checkpoint(tmp_path / "b/checkpoints/last.pt")))
    weights = [k for k in a if k.startswith("/modules/") and a[k].is_floating_point()]
    assert weights and all(a[k].dtype == b[k].dtype == torch.float32 for k in weights)
    assert all(torch.isfinite(b[k]).all() for k in weights)
    assert any(not torch.equal(a[k], b[k]) for k in weights)
    part = tmp_path / "part"
    train_gan(cfg_for(market, arch, *fast, "train.max_iters=4"), part)
    train_gan(cfg_for(market, arch, *fast), part, resume=True)
    c = dict(checkpoint_tensors(load_checkpoint(part / "checkpoints/last.pt")))
    assert all(torch.equal(b[k], c[k]) for k in weights)


def test_a_gan_run_takes_user_hooks_and_keeps_their_state(tmp_path, market):
    from genreid.engine.tasks.gan import GanTask
    from tests.test_loop import StepCounter

    counter = StepCounter()
    res = GanTask.train(cfg_for(market, "dcgan", "train.epochs=1"), tmp_path / "run",
                        hooks=[counter])  # fmt: skip
    assert counter.steps == res["steps"] > 0
    ckpt = load_checkpoint(tmp_path / "run/checkpoints/last.pt")
    assert ckpt["hooks"] == {"StepCounter": {"steps": counter.steps}}
