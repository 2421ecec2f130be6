"""DiffAugment: each transform's known answer, differentiable end to end, applied to every
image D sees (real and generated, D's and G's losses); the EMA generator's update rule and its
use for sampling."""

from __future__ import annotations

import pytest
import torch

from genreid.core.errors import ConfigError
from genreid.engine.gan_sampling import load_generator
from genreid.engine.tasks.gan import GanSteps, train_gan
from genreid.models.gan import augment as aug
from tests.test_gan_training import cfg_for, market  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def grid(b: int = 1) -> torch.Tensor:
    """b x 1 x 3 x 4 images holding 1..12 row by row."""
    return torch.arange(1.0, 13.0).view(1, 1, 3, 4).repeat(b, 1, 1, 1)


def test_colour_transforms_by_hand():
    x = torch.tensor([[[[0.0]], [[0.5]], [[1.0]]]])  # one pixel, channels 0, 0.5, 1
    assert torch.equal(aug.brightness(x, torch.tensor([0.25])), x + 0.25)
    assert torch.allclose(aug.saturation(x, torch.tensor([0.0])), torch.full_like(x, 0.5))
    assert torch.allclose(
        aug.saturation(x, torch.tensor([2.0])), torch.tensor([-0.5, 0.5, 1.5]).view(1, 3, 1, 1)
    )
    assert torch.allclose(
        aug.contrast(x, torch.tensor([0.5])), torch.tensor([0.25, 0.5, 0.75]).view(1, 3, 1, 1)
    )


def test_translation_moves_pixels_and_fills_zeros():
    x = grid(2)
    out = aug.translate(x, torch.tensor([1, 0]), torch.tensor([0, -1]))
    assert out[0, 0].tolist() == [[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]]  # one row down
    assert out[1, 0].tolist() == [[2, 3, 4, 0], [6, 7, 8, 0], [10, 11, 12, 0]]  # one left


def test_cutout_zeroes_the_box_clipped_at_the_border():
    out = aug.cutout(grid(2), torch.tensor([1, -1]), torch.tensor([1, 3]), (2, 2))
    assert out[0, 0].tolist() == [[1, 2, 3, 4], [5, 0, 0, 8], [9, 0, 0, 12]]
    assert out[1, 0].tolist() == [[1, 2, 3, 0], [5, 6, 7, 8], [9, 10, 11, 12]]


def test_the_policy_is_differentiable():
    x = torch.rand(3, 3, 8, 4, dtype=torch.double, requires_grad=True)

    def seeded(t: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)  # the same draws at every evaluation gradcheck makes
        return aug.diff_augment(t, "color,translation,cutout")

    assert torch.autograd.gradcheck(seeded, (x,))
    with pytest.raises(ConfigError, match="train.augment: unknown DiffAugment policy colour"):
        aug.parse_policy("colour,cutout")


def test_d_sees_augmented_real_and_fake_images_in_both_losses(market, monkeypatch):  # noqa: F811
    seen = []

    def spy(x: torch.Tensor, policy: str) -> torch.Tensor:
        seen.append((x.detach().clone(), policy, x.requires_grad))
        return x

    monkeypatch.setattr(aug, "diff_augment", spy)
    steps = GanSteps(cfg_for(market, "dcgan", "train.augment=translation"), torch.device("cpu"))
    real = torch.rand(4, 3, 32, 16) * 2 - 1
    steps.d_step(real)
    assert len(seen) == 2 and torch.equal(seen[0][0], real) and seen[0][1] == "translation"
    assert seen[1][0].shape == real.shape and not torch.equal(seen[1][0], real)  # the fakes
    steps.g_step(4)
    assert len(seen) == 3 and seen[2][2]  # G's fakes, with their graph to G
    off = GanSteps(cfg_for(market, "dcgan"), torch.device("cpu"))
    off.d_step(real)
    off.g_step(4)
    assert len(seen) == 3  # no policy: D sees the images as they are


def test_ema_update_rule():
    model, ema = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(1.0)
    ema.weight.data.fill_(0.0)
    aug.ema_update(ema, model, decay=0.99, updates=0)  # warm-up: d = min(0.99, 1/10)
    assert ema.weight.item() == pytest.approx(0.9)
    aug.ema_update(ema, model, decay=0.5, updates=1000)  # d = 0.5
    assert ema.weight.item() == pytest.approx(0.95)


def test_sampling_uses_the_ema_generator(tmp_path, market):  # noqa: F811
    run = tmp_path / "run"
    train_gan(cfg_for(market, "dcgan", "train.epochs=2", "train.ema=0.9"), run)
    from genreid.core.checkpoint import load_checkpoint

    modules = load_checkpoint(run / "checkpoints" / "last.pt")["modules"]
    g = load_generator(run).generator.state_dict()
    assert all(torch.equal(g[k], modules["G_ema"][k]) for k in g)
    assert not all(torch.equal(modules["G"][k], modules["G_ema"][k]) for k in g)
