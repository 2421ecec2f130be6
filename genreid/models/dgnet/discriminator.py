"""D: a multi-scale patch discriminator (input, 1/2, 1/4 size), the LSGAN losses and the
gradient penalty on real images (R1: E ||grad_x D(x)||^2, per scale)."""

from __future__ import annotations

import torch
from torch import nn

from genreid.models.dgnet.blocks import ConvBlock


class PatchDiscriminator(nn.Module):
    """conv 1x1 (d) -> ``layers`` x [conv 3x3, conv 3x3 stride 2 (2d, at most 512)] -> conv 1x1
    -> a map of real/fake scores, one per patch."""

    def __init__(self, width: int = 32, layers: int = 2) -> None:
        super().__init__()
        d = width
        net: list[nn.Module] = [ConvBlock(3, d, 1)]
        for _ in range(layers):
            d2 = min(2 * d, 512)
            net += [ConvBlock(d, d, 3), ConvBlock(d, d2, 3, stride=2)]
            d = d2
        net.append(nn.Conv2d(d, 1, 1))
        self.net = nn.Sequential(*net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiScaleDiscriminator(nn.Module):
    """One patch discriminator per scale; each next scale sees the image average-pooled by 2."""

    def __init__(self, width: int = 32, layers: int = 2, scales: int = 3) -> None:
        super().__init__()
        self.nets = nn.ModuleList(PatchDiscriminator(width, layers) for _ in range(scales))
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for k, net in enumerate(self.nets):
            if k:
                x = self.down(x)
            outs.append(net(x))
        return outs


def lsgan_d_loss(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """Sum over scales of mean(D(fake)^2) + mean((D(real) - 1)^2)."""
    pairs = zip(fake, real, strict=True)
    terms = [f.float().pow(2).mean() + (r.float() - 1).pow(2).mean() for f, r in pairs]
    return torch.stack(terms).sum()


def lsgan_g_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """Sum over scales of mean((D(fake) - 1)^2)."""
    return torch.stack([(f.float() - 1).pow(2).mean() for f in fake]).sum()


def r1_penalty(
    real_out: list[torch.Tensor], real: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    """Sum over scales of E_batch ||d D_k(x) / d x||^2 on real images (``real`` must require
    grad). ``scale`` is the AMP loss scale the outputs were multiplied by (unscaled here)."""
    total = torch.zeros((), device=real.device)
    for out in real_out:
        (grad,) = torch.autograd.grad(out.float().sum() * scale, real, create_graph=True)
        grad = grad.float() / scale
        total = total + grad.pow(2).flatten(1).sum(1).mean()
    return total
