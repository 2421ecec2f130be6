"""GAN modules: output shapes at every size, paper layouts, configs, a few D steps learn."""

from __future__ import annotations

import pytest
import torch

from genreid.core.config import ConfigError, load_config
from genreid.data.dataset import ImageDataset
from genreid.data.records import ImageRecord, Role
from genreid.data.samplers import EpochSampler
from genreid.data.transforms import GanTransform
from genreid.engine.tasks.gan import GanConfig
from genreid.models.gan import GAN_ARCHS, build_gan
from genreid.models.gan.dcgan import DCGANDiscriminator, DCGANGenerator
from genreid.models.gan.wgangp import WGANGPCritic, WGANGPGenerator, channel_mults
from tests.fixtures import write_jpeg

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_cfg(arch: str, size: list[int], **model) -> GanConfig:
    h, w = size
    extra = [f"model.{k}={v}" for k, v in model.items()]
    return load_config(
        GanConfig,
        None,
        ["data.root=unused", f"data.height={h}", f"data.width={w}", f"model.arch={arch}",
         "model.width=4", *extra],
    )  # fmt: skip


@pytest.mark.parametrize("arch", ["dcgan", "wgangp"])
@pytest.mark.parametrize("size", [[128, 128], [128, 64], [64, 32]])
def test_shapes_for_every_size(arch, size):
    cfg = tiny_cfg(arch, size)
    g, d = build_gan(cfg.model, cfg.data.size)
    z = g.sample_z(2)
    x = g(z)
    assert x.shape == (2, 3, *size)
    assert x.min() >= -1 and x.max() <= 1
    assert d(x).shape == (2,)


def test_paper_layouts():
    g = DCGANGenerator((128, 128))
    assert (g.h0, g.w0, g.top, g.z_dim) == (8, 8, 512, 100)
    assert g.fc.out_features == 512 * 8 * 8
    d = DCGANDiscriminator((128, 128))
    assert d.fc.in_features == 512 * 8 * 8
    convs = [m for m in d.net if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in convs)
    # pedestrian aspect: start map 8x4
    assert (DCGANGenerator((128, 64)).h0, DCGANGenerator((128, 64)).w0) == (8, 4)
    w = WGANGPGenerator((128, 128))
    assert (w.h0, w.w0, w.top, w.z_dim) == (4, 4, 512, 128)
    assert [b.conv1.out_channels for b in w.blocks] == [512, 256, 128, 64, 64]
    c = WGANGPCritic((128, 128))
    assert [b.conv2.out_channels for b in c.blocks] == [64, 128, 256, 512, 512]
    assert c.fc.in_features == 512 * 4 * 4
    assert channel_mults(5) == [8, 8, 4, 2, 1, 1]


def test_noise_distributions():
    g = torch.Generator().manual_seed(0)
    u = DCGANGenerator((32, 16), width=4, depth=2).sample_z(500, g)
    assert u.shape == (500, 100) and u.min() >= -1 and u.max() <= 1 and u.min() < -0.9
    n = WGANGPGenerator((32, 16), width=4, depth=2).sample_z(500, g)
    assert n.shape == (500, 128) and abs(float(n.std()) - 1) < 0.05


def test_bad_size_and_config_errors():
    with pytest.raises(ValueError, match="multiples of 2\\^depth = 16"):
        DCGANGenerator((100, 50))
    with pytest.raises(ConfigError, match="data.height x data.width = 100x50"):
        tiny_cfg("dcgan", [100, 50])
    with pytest.raises(ConfigError, match="unknown config key 'train.critic_step'"):
        load_config(GanConfig, None, ["train.critic_step=3"])
    with pytest.raises(ConfigError, match="Did you mean 'train.options.critic_steps'"):
        load_config(GanConfig, None, ["model.arch=wgangp", "train.options.critic_step=3"])
    with pytest.raises(ConfigError, match="model.arch.*Did you mean 'wgangp'"):
        load_config(GanConfig, None, ["model.arch=wgangan"])
    with pytest.raises(ConfigError, match="train.precision: GANs train in fp32 or bf16"):
        load_config(GanConfig, None, ["train.precision=fp16"])
    with pytest.raises(ConfigError, match="train.precision: GANs train in fp32 or bf16"):
        load_config(GanConfig, None, ["train.amp=fp16"])  # the old name, from older run folders
    assert load_config(GanConfig, None, ["train.precision=bf16"]).train.precision == "bf16"
    with pytest.raises(ConfigError, match="data.root is empty"):
        GanConfig().data.require_root()


def test_arch_defaults_fill_nulls():
    w = load_config(GanConfig, None, ["model.arch=wgangp", "data.root=x"])
    o = w.optim
    assert (w.model.z_dim, w.model.depth, o.gen.lr, o.dis.betas, w.train.options.g_steps) == (
        128,
        5,
        1e-4,
        [0.0, 0.9],
        1,
    )
    assert (w.train.options.critic_steps, w.train.options.gp_weight) == (5, 10.0)
    d = load_config(GanConfig, None, ["data.root=x", "optim.gen.lr=1e-3"])
    o = d.optim
    assert (d.model.z_dim, d.model.depth, o.gen.lr, o.gen.betas, d.train.options.g_steps) == (
        100,
        4,
        1e-3,
        [0.5, 0.999],
        2,
    )
    assert (o.dis.lr, o.dis.name, o.dis.weight_decay, o.dis.schedule) == (
        2e-4,
        "adam",
        0,
        "constant",
    )


@pytest.mark.parametrize("arch", ["dcgan", "wgangp"])
def test_few_steps_lower_discriminator_loss(arch):
    torch.manual_seed(0)
    cfg = tiny_cfg(arch, [32, 16], depth=2)
    g, d = build_gan(cfg.model, cfg.data.size)
    real = torch.rand(8, 3, 32, 16) * 0.5 + 0.25  # a fixed, bright batch
    with torch.no_grad():
        fake = g(g.sample_z(8))
    o = cfg.optim.dis
    opt = torch.optim.Adam(d.parameters(), lr=o.lr * 5, betas=tuple(o.betas))
    losses = GAN_ARCHS.get(arch)

    def loss_fn() -> torch.Tensor:
        torch.manual_seed(1)  # the same interpolation points every step (WGAN-GP)
        return losses.d_loss(d, real, fake, cfg.train.options)[0]

    first = float(loss_fn().detach())
    for _ in range(10):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    assert float(loss_fn().detach()) < first - 1e-3


def test_image_dataset_items_and_batches(tmp_path):
    recs = [
        ImageRecord(str(write_jpeg(tmp_path / "a.jpg", 1)), 7, 2, Role.TRAIN),
        ImageRecord(
            str(write_jpeg(tmp_path / "b.jpg", 2)), -1, -1, Role.TRAIN, generated=True, cluster=3
        ),
    ]
    ds = ImageDataset(recs, GanTransform([32, 16], flip=False), label_map={7: 0})
    item = ds[0]
    assert item["image"].shape == (3, 32, 16) and item["image"].min() >= -1
    assert (item["label"], item["camid"], item["generated"], item["cluster"]) == (0, 2, False, -1)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["label"].tolist() == [0, -1]
    assert batch["generated"].tolist() == [False, True]
    assert batch["cluster"].tolist() == [-1, 3] and batch["index"].tolist() == [0, 1]
    assert ImageDataset(recs)[1]["image"].max() <= 1  # default: [0, 1] tensor


def test_epoch_sampler_resumes_mid_epoch():
    s = EpochSampler(10, seed=3)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start=4)
    assert list(s) == full[4:] and len(s) == 6
    s.set_epoch(3)
    assert list(s) != full and sorted(s) == list(range(10))
    ranks = [EpochSampler(10, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(2)
    assert [list(r) for r in ranks] == [full[0::2], full[1::2]]


def test_losses_and_guards_live_with_the_architectures():
    from genreid.models.gan.dcgan import DCGAN
    from genreid.models.gan.wgangp import WGANGP

    assert dict(GAN_ARCHS.items()) == {"dcgan": DCGAN, "wgangp": WGANGP}
    d, w = DCGAN.Options(), WGANGP.Options()  # each arch's guard reads its own options
    collapsed = {"loss/d": 1e-6, "d/real": 0.9999, "d/fake": 1e-4}
    assert "collapsed" in DCGAN.collapsed(collapsed, d, 200)
    assert DCGAN.collapsed({"loss/d": 0.5, "d/real": 0.7, "d/fake": 0.3}, d, 200) is None
    assert "critic gap" in WGANGP.collapsed({"wgan/gap": 2e3}, w, 200)
    assert WGANGP.collapsed({"wgan/gap": 10.0}, w, 200) is None
    assert (d.d_updates, w.d_updates) == (1, 5)
    scores = torch.tensor([0.0, 2.0])
    assert float(DCGAN.g_loss(scores)) == pytest.approx(
        float(torch.nn.functional.softplus(-scores).mean())
    )
    assert float(WGANGP.g_loss(scores)) == -1.0
