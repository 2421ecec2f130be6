"""WGAN-GP ResNet generator, critic and losses (IWGAN, FAPL §V-C5; docs/GAN.md), any size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genreid.core.errors import ConfigError
from genreid.models.gan.base import GanArch, GanModelConfig, GanOptions
from genreid.models.gan.dcgan import start_size


def channel_mults(depth: int) -> list[int]:
    """Width multipliers from the start map to the output: depth 5 -> [8, 8, 4, 2, 1, 1]."""
    return [min(8, 2 ** (depth - 1 - k)) if k < depth else 1 for k in range(depth + 1)]


class UpBlock(nn.Module):
    """BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, shortcut upsample + conv1x1."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.short = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=2, mode="nearest")
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return self.short(up) + h


class DownBlock(nn.Module):
    """LayerNorm(C,H,W)-ReLU-conv3x3-LN-ReLU-conv3x3-meanpool, shortcut meanpool + conv1x1."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        # GroupNorm with one group normalises over (C, H, W) with a per-channel affine, which is
        # the layer norm of the WGAN-GP code and works at any input size.
        self.ln1, self.ln2 = nn.GroupNorm(1, cin), nn.GroupNorm(1, cin)
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1)
        self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.short = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.ln1(x)))
        h = F.avg_pool2d(self.conv2(F.relu(self.ln2(h))), 2)
        return self.short(F.avg_pool2d(x, 2)) + h


class WGANGPGenerator(nn.Module):
    """z ~ N(0, I) -> Linear -> (8d)xh0xw0 -> ``depth`` up-blocks -> BN-ReLU-conv3x3 -> tanh."""

    def __init__(
        self,
        size: tuple[int, int] = (128, 128),
        z_dim: int = 128,
        width: int = 64,
        depth: int = 5,
    ) -> None:
        super().__init__()
        self.size, self.z_dim = tuple(size), z_dim
        self.h0, self.w0 = start_size(self.size, depth)
        chans = [width * m for m in channel_mults(depth)]
        self.top = chans[0]
        self.fc = nn.Linear(z_dim, self.top * self.h0 * self.w0)
        self.blocks = nn.Sequential(
            *(UpBlock(a, b) for a, b in zip(chans, chans[1:], strict=False))
        )
        self.bn = nn.BatchNorm2d(chans[-1])
        self.out = nn.Conv2d(chans[-1], 3, 3, 1, 1)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal noise."""
        return torch.randn(n, self.z_dim, generator=generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(z.shape[0], self.top, self.h0, self.w0)
        return torch.tanh(self.out(F.relu(self.bn(self.blocks(x)))))


class WGANGPCritic(nn.Module):
    """conv3x3 3->d, ``depth`` down-blocks (d ... 8d), Linear -> one unbounded score per image."""

    def __init__(self, size: tuple[int, int] = (128, 128), width: int = 64, depth: int = 5) -> None:
        super().__init__()
        h0, w0 = start_size(tuple(size), depth)
        chans = [width * m for m in reversed(channel_mults(depth))]
        self.inp = nn.Conv2d(3, chans[0], 3, 1, 1)
        self.blocks = nn.Sequential(
            *(DownBlock(a, b) for a, b in zip(chans, chans[1:], strict=False))
        )
        self.fc = nn.Linear(chans[-1] * h0 * w0, 1)

    def lower_blocks(self) -> list[nn.Module]:
        """The input convolution and the down blocks, from the input on (FreezeD)."""
        return [self.inp, *self.blocks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.inp(x)).flatten(1)).squeeze(1)


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2], x_hat = real + u (fake - real), u ~ U[0, 1] per image."""
    u = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x_hat = (real + u * (fake - real)).requires_grad_(True)
    out = D(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class WGANGP(GanArch):
    """Wasserstein critic loss with a gradient penalty; the generator minimises -E D(fake)."""

    name = "wgangp"
    defaults = {"z_dim": 128, "depth": 5, "lr": 1e-4, "betas": [0.0, 0.9]}
    collapse_advice = (
        "lower learning rates (optim.gen.lr=5e-5 optim.dis.lr=5e-5), a larger "
        "train.options.gp_weight, or betas [0.0, 0.9] as in the paper."
    )

    @dataclass
    class Options(GanOptions):
        """``train.options`` of WGAN-GP."""

        critic_steps: int = 5  # critic updates per generator update (one real batch each)
        g_steps: int = 1
        gp_weight: float = 10.0  # lambda of the gradient penalty
        max_critic_gap: float = 1e3  # |E D(real) - E D(fake)| above this is divergence

        @property
        def d_updates(self) -> int:
            return self.critic_steps

        def check(self) -> None:
            """Step counts >= 1, a penalty weight >= 0 and a divergence gap > 0."""
            super().check()
            if self.gp_weight < 0 or self.max_critic_gap <= 0:
                raise ConfigError(
                    "train.options.gp_weight and train.options.max_critic_gap: expected >= 0 "
                    f"and > 0, got {self.gp_weight} and {self.max_critic_gap}"
                )

    @classmethod
    def build(cls, model: GanModelConfig, size: tuple[int, int]) -> tuple[nn.Module, nn.Module]:
        return (
            WGANGPGenerator(size, model.z_dim, model.width, model.depth),
            WGANGPCritic(size, model.width, model.depth),
        )

    @staticmethod
    def d_loss(
        D: nn.Module, real: torch.Tensor, fake: torch.Tensor, options: Any
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        sr, sf = D(real), D(fake)
        gp = gradient_penalty(D, real, fake)
        gap = sr.mean() - sf.mean()
        loss = -gap + options.gp_weight * gp
        return loss, {"d/real": sr.mean(), "d/fake": sf.mean(), "wgan/gap": gap, "wgan/gp": gp}

    @staticmethod
    def g_loss(scores: torch.Tensor) -> torch.Tensor:
        return -scores.mean()

    @staticmethod
    def collapsed(stats: dict[str, float], options: Any, patience: int) -> str | None:
        if abs(stats["wgan/gap"]) > options.max_critic_gap:
            return (
                f"the critic gap |E D(real) - E D(fake)| exceeded {options.max_critic_gap:g} for "
                f"{patience} consecutive iterations (now {stats['wgan/gap']:.4g})"
            )
        return None
