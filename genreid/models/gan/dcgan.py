"""DCGAN generator and discriminator (METHODS §5), with configurable output size, depth, width."""

from __future__ import annotations

import torch
from torch import nn


def start_size(size: tuple[int, int], depth: int) -> tuple[int, int]:
    """The first feature map (H/2^depth, W/2^depth); sizes not divisible by 2^depth are errors."""
    h, w = size
    f = 2**depth
    if h % f or w % f or h < f or w < f:
        raise ValueError(
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, one per image (sigmoid cross-entropy is applied by the trainer)."""
        return self.fc(self.net(x).flatten(1)).squeeze(1)
