"""DCGAN generator, discriminator and losses (docs/GAN.md), any output size, depth, width."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genreid.core.errors import ConfigError
from genreid.models.gan.base import GanArch, GanModelConfig, GanOptions


def start_size(size: tuple[int, int], depth: int) -> tuple[int, int]:
    """The first feature map (H/2^depth, W/2^depth); sizes not divisible by 2^depth are errors."""
    h, w = size
    f = 2**depth
    if h % f or w % f or h < f or w < f:
        raise ConfigError(
            f"data.size {h}x{w} cannot be reached with model.depth={depth}: both sides must be "
            f"multiples of 2^depth = {f}. Use e.g. data.size=[128,64] or lower model.depth."
        )
    return h // f, w // f


def init_dcgan(module: nn.Module) -> None:
    """DCGAN init: conv/linear weights N(0, 0.02), BN weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """z ~ U[-1,1] -> Linear -> (8d)xh0xw0 -> ``depth`` stride-2 5x5 deconvolutions -> tanh."""

    def __init__(
        self,
        size: tuple[int, int] = (128, 128),
        z_dim: int = 100,
        width: int = 64,
        depth: int = 4,
        kernel: int = 5,
    ) -> None:
        super().__init__()
        self.size, self.z_dim = tuple(size), z_dim
        self.h0, self.w0 = start_size(self.size, depth)
        self.top = width * 2 ** (depth - 1)
        self.fc = nn.Linear(z_dim, self.top * self.h0 * self.w0)
        self.bn0 = nn.BatchNorm2d(self.top)
        layers: list[nn.Module] = []
        ch = self.top
        pad = kernel // 2
        for i in range(depth):
            last = i == depth - 1
            out = 3 if last else ch // 2
            layers.append(nn.ConvTranspose2d(ch, out, kernel, 2, pad, output_padding=1))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            ch = out
        self.net = nn.Sequential(*layers)
        init_dcgan(self)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise as in the released code: uniform in [-1, 1]."""
        return torch.rand(n, self.z_dim, generator=generator) * 2 - 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(z.shape[0], self.top, self.h0, self.w0)
        return self.net(torch.relu(self.bn0(x)))


class DCGANDiscriminator(nn.Module):
    """``depth`` stride-2 5x5 convolutions (BN after all but the first), LeakyReLU 0.2, Linear."""

    def __init__(
        self,
        size: tuple[int, int] = (128, 128),
        width: int = 64,
        depth: int = 4,
        kernel: int = 5,
    ) -> None:
        super().__init__()
        h0, w0 = start_size(tuple(size), depth)
        layers: list[nn.Module] = []
        ch_in, ch = 3, width
        for i in range(depth):
            layers.append(nn.Conv2d(ch_in, ch, kernel, 2, kernel // 2, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            ch_in, ch = ch, ch * 2
        self.net = nn.Sequential(*layers)
        self.fc = nn.Linear(ch_in * h0 * w0, 1)
        init_dcgan(self)

    def lower_blocks(self) -> list[nn.Module]:
        """The stride-2 blocks from the input on (what FreezeD freezes first)."""
        blocks: list[list[nn.Module]] = []
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                blocks.append([])
            blocks[-1].append(m)
        return [nn.Sequential(*b) for b in blocks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, one per image (sigmoid cross-entropy is applied by the trainer)."""
        return self.fc(self.net(x).flatten(1)).squeeze(1)


class DCGAN(GanArch):
    """Sigmoid cross-entropy discriminator, non-saturating generator loss (as released)."""

    name = "dcgan"
    defaults = {"z_dim": 100, "depth": 4, "lr": 2e-4, "betas": [0.5, 0.999]}
    cpu_auto_bf16 = True  # generated-image measures within noise of fp32 (docs/RESULTS.md)
    collapse_advice = (
        "a lower discriminator learning rate (optim.dis.lr) or more generator steps "
        "(train.options.g_steps=2 or 3), lower learning rates (optim.gen.lr, optim.dis.lr), "
        "or more training images per GAN (fewer clusters)."
    )

    @dataclass
    class Options(GanOptions):
        """``train.options`` of DCGAN."""

        d_steps: int = 1  # discriminator updates per iteration (one real batch each)
        g_steps: int = 2  # generator updates per iteration (the released code's 2)
        collapse_loss: float = 1e-3  # D loss below this with D(real)>0.99, D(fake)<0.01

        @property
        def d_updates(self) -> int:
            return self.d_steps

    @classmethod
    def build(cls, model: GanModelConfig, size: tuple[int, int]) -> tuple[nn.Module, nn.Module]:
        g = DCGANGenerator(size, model.z_dim, model.width, model.depth, model.kernel)
        d = DCGANDiscriminator(size, model.width, model.depth, model.kernel)
        return g, d

    @staticmethod
    def d_loss(
        D: nn.Module, real: torch.Tensor, fake: torch.Tensor, options: Any
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        lr_, lf = D(real), D(fake)
        loss = F.binary_cross_entropy_with_logits(
            lr_, torch.ones_like(lr_)
        ) + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
        return loss, {"d/real": torch.sigmoid(lr_).mean(), "d/fake": torch.sigmoid(lf).mean()}

    @staticmethod
    def g_loss(scores: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores))

    @staticmethod
    def collapsed(stats: dict[str, float], options: Any, patience: int) -> str | None:
        if (
            stats["loss/d"] < options.collapse_loss
            and stats["d/real"] > 0.99
            and stats["d/fake"] < 0.01
        ):
            return (
                f"the discriminator collapsed: D loss < {options.collapse_loss:g} with "
                f"D(real) > 0.99 and D(fake) < 0.01 for {patience} consecutive "
                "iterations, so the generator gets no gradient"
            )
        return None
