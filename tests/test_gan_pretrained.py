"""GANs initialised from weights (a run, a weights file with its hash, the shipped name) and
FreezeD keeping D's first blocks fixed."""

from __future__ import annotations

import pytest
import torch

from genreid.core.checkpoint import load_checkpoint
from genreid.engine.tasks.gan import GanSteps, train_gan
from genreid.models.gan import pretrained as gp
from genreid.models.pretrained import PretrainedError
from tests.test_gan_training import cfg_for, market  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("arch", ["dcgan", "wgangp"])
def test_a_run_or_its_weights_file_initialises_g_and_d(tmp_path, market, arch):  # noqa: F811
    run = tmp_path / "run"
    train_gan(cfg_for(market, arch, "train.epochs=1"), run)
    modules = load_checkpoint(run / "checkpoints" / "last.pt")["modules"]
    steps = GanSteps(cfg_for(market, arch, f"model.pretrained={run}"), CPU)
    assert same(steps.G.state_dict(), modules["G"]) and same(steps.D.state_dict(), modules["D"])
    assert steps.pretrained == str(run / "checkpoints" / "last.pt")
    # the same weights through a weights file with its sidecar
    file = tmp_path / f"gan_{arch}.pt"
    cfg = cfg_for(market, arch)
    side = gp.save_gan_file(steps.G, steps.D, cfg.model, cfg.data.size, file, {"made_by": "test"})
    assert side["sha256"] == gp.file_sha256(file) and side["made_by"] == "test"
    again = GanSteps(cfg_for(market, arch, f"model.pretrained={file}"), CPU)
    assert same(again.G.state_dict(), modules["G"]) and same(again.D.state_dict(), modules["D"])
    fresh = GanSteps(cfg_for(market, arch), CPU)
    assert not same(fresh.G.state_dict(), modules["G"])


def test_wrong_or_corrupt_weights_are_clear_errors(tmp_path, market):  # noqa: F811
    cfg = cfg_for(market, "dcgan")
    steps = GanSteps(cfg, CPU)
    file = tmp_path / "g.pt"
    gp.save_gan_file(steps.G, steps.D, cfg.model, cfg.data.size, file, {})
    with pytest.raises(PretrainedError, match="holds a dcgan for \\[32, 16\\] images"):
        GanSteps(cfg_for(market, "dcgan", f"model.pretrained={file}", "data.height=64"), CPU)
    with pytest.raises(PretrainedError, match="does not fit this model"):
        GanSteps(cfg_for(market, "dcgan", f"model.pretrained={file}", "model.width=8"), CPU)
    with pytest.raises(PretrainedError, match="genreid ships no dcgan at width 4"):
        GanSteps(cfg_for(market, "dcgan", "model.pretrained=synthetic"), CPU)
    with pytest.raises(PretrainedError, match="does not exist"):
        GanSteps(cfg_for(market, "dcgan", f"model.pretrained={tmp_path / 'none'}"), CPU)
    data = bytearray(file.read_bytes())
    data[-10] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(PretrainedError, match="does not match the sha256"):
        GanSteps(cfg_for(market, "dcgan", f"model.pretrained={file}"), CPU)


@pytest.mark.parametrize("arch", ["dcgan", "wgangp"])
def test_freeze_d_keeps_the_first_blocks_through_training_steps(market, arch):  # noqa: F811
    steps = GanSteps(cfg_for(market, arch, "train.freeze_d=1"), CPU)
    first, rest = steps.D.lower_blocks()[0], steps.D.lower_blocks()[1:]
    before = {k: v.clone() for k, v in steps.D.state_dict().items()}
    real = torch.rand(4, 3, 32, 16) * 2 - 1
    for _ in range(2):
        steps.d_step(real)
        steps.g_step(4)
    assert not any(p.requires_grad for p in first.parameters())  # still frozen after G's step
    assert all(p.requires_grad for b in rest for p in b.parameters())
    after = steps.D.state_dict()
    frozen = {n for n, _ in steps.D.named_parameters() if not _.requires_grad}
    assert frozen and all(torch.equal(before[n], after[n]) for n in frozen)
    moved = [n for n, p in steps.D.named_parameters() if p.requires_grad]
    assert any(not torch.equal(before[n], after[n]) for n in moved)


@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_pretrain_writes_a_generator_file_that_initialises_a_gan(tmp_path, market, ema):  # noqa: F811
    """The file's G is the generator that samples: G itself, or with train.ema its EMA."""
    from genreid.cli.pretrain import summary_line
    from genreid.core.config import load_config
    from genreid.engine.pretrain import PretrainConfig, run_pretrain

    small = [
        "synthetic.ids=6", "synthetic.size=[32, 16]", "threads=1", "recipe=gan/dcgan_tiny",
        "recipe_overrides=[model.width=4, model.depth=2, train.epochs=1, train.min_iters=null, "
        f"train.batch_size=4, train.progress=false, train.device=cpu, train.ema={ema}]",
    ]  # fmt: skip
    side = run_pretrain(load_config(PretrainConfig, "pretrain_tiny", small), tmp_path / "pre")
    file = tmp_path / "pre" / "generator.pt"
    assert side["format"] == "genreid-gan" and side["sha256"] == gp.file_sha256(file)
    assert side["made_by"] == "genreid pretrain" and side["generated"]["fake_images"] > 0
    line = summary_line(side, tmp_path / "pre")  # what `genreid pretrain` prints at the end
    assert f"{file}: dcgan at width 4 for 32x16 images" in line and "recall" in line
    modules = load_checkpoint(tmp_path / "pre" / "train" / "checkpoints" / "last.pt")["modules"]
    steps = GanSteps(
        cfg_for(market, "dcgan", f"model.pretrained={file}", "model.width=4"), CPU
    )  # the market fixture's 32x16 images, the same architecture
    sampler = "G_ema" if ema else "G"
    assert same(steps.G.state_dict(), modules[sampler]) and same(steps.D.state_dict(), modules["D"])
    if ema:
        assert not same(modules["G_ema"], modules["G"])  # so the check above tells them apart


# ---------------------------------------------------------------- the shipped tiny generator
def test_shipped_generator_matches_its_record_and_initialises_the_tiny_dcgan():
    """The shipped file's sha256 is its sidecar's, it was made by `genreid pretrain` on a set
    that shares no people with the seed-0 test sets, and `model.pretrained: synthetic` on the
    tiny recipe loads exactly its G and D (a different size is a clear error)."""
    import json

    from genreid.core.config import load_config
    from genreid.engine.tasks.gan import GanConfig
    from genreid.models.pretrained import WEIGHTS_DIR

    name = gp.shipped_gan_name("dcgan", 16, (128, 64))
    assert name in gp.shipped_gans()
    path = WEIGHTS_DIR / name
    side = json.loads(path.with_suffix(".json").read_text())
    assert gp.file_sha256(path) == side["sha256"] and side["file"] == name
    assert side["made_by"] == "genreid pretrain" and side["command"].startswith("genreid pretrain")
    assert side["synthetic"]["seed"] != 0 and side["size"] == [128, 64]
    assert path.stat().st_size < 10 * 2**20
    cfg = load_config(GanConfig, "gan/dcgan_tiny", ["model.pretrained=synthetic"])
    steps = GanSteps(cfg, CPU)
    g_state, d_state, where = gp.read_gan_weights("synthetic", cfg.model, cfg.data.size)
    assert where == str(path)
    assert same(steps.G.state_dict(), g_state) and same(steps.D.state_dict(), d_state)
    with pytest.raises(PretrainedError, match="genreid ships no dcgan at width 16 for 64x32"):
        small = ["model.pretrained=synthetic", "data.height=64", "data.width=32"]
        GanSteps(load_config(GanConfig, "gan/dcgan_tiny", small), CPU)


def test_the_tiny_recipe_is_dcgan_tiny_from_the_shipped_generator_with_an_ema():
    """gan/dcgan_tiny_pretrained differs from dcgan_tiny only where docs/RESULTS.md chose it:
    the shipped generator, EMA 0.99, no DiffAugment; and it is the tiny GAN of the tables."""
    import dataclasses

    from genreid.core.config import load_config
    from genreid.engine.reproduce.spec import load_table
    from genreid.engine.tasks.gan import GanConfig

    base = dataclasses.asdict(load_config(GanConfig, "gan/dcgan_tiny"))
    tiny = dataclasses.asdict(load_config(GanConfig, "gan/dcgan_tiny_pretrained"))
    differ = {(s, k) for s in base if isinstance(base[s], dict)
              for k in base[s] if base[s][k] != tiny[s][k]}  # fmt: skip
    assert differ == {("model", "pretrained"), ("train", "ema")}
    assert tiny["model"]["pretrained"] == "synthetic" and tiny["train"]["ema"] == 0.99
    assert tiny["train"]["augment"] == "" and tiny["train"]["min_iters"] == 1500
    sources = load_table("family").sources
    for name in ("dcgan", "dcgan_k"):  # one GAN per split, one per cluster (SLSR)
        assert sources[name].gan["tiny"].config == "gan/dcgan_tiny_pretrained"
    assert sources["dcgan"].gan["paper"].config == "gan/dcgan_paper"
