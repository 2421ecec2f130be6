"""Layers shared by E_s, G and D: reflect-padded convolutions with instance, layer or
adaptive instance normalisation and LeakyReLU 0.2, residual blocks and ASPP."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

Norm = Literal["none", "in", "ln", "adain"]


class LayerNorm2d(nn.Module):
    """Layer normalisation over C x H x W of each image, with a per-channel scale and shift
    (the decoder's upsampling stages, as in MUNIT/DG-Net)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x, x.shape[1:], eps=self.eps)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def adain(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Adaptive instance normalisation: each channel of each image normalised, then scaled by
    ``1 + scale`` and shifted by ``bias`` (B x C each, from the appearance code)."""
    x = F.instance_norm(x, eps=1e-5)
    return x * (1 + scale[:, :, None, None]) + bias[:, :, None, None]


def pad_as_is(x: torch.Tensor, pad: int, mode: str) -> torch.Tensor:
    """``F.pad`` on all four sides in ``x``'s own dtype. CPU autocast runs reflection padding in
    fp32, casting each bf16 activation to fp32 and back around every convolution; padding only
    copies values, so skipping the casts gives the same forward values (bf16 paths only)."""
    if torch.is_autocast_enabled(x.device.type):
        with torch.autocast(x.device.type, enabled=False):
            return F.pad(x, [pad] * 4, mode=mode)
    return F.pad(x, [pad] * 4, mode=mode)


class ConvBlock(nn.Module):
    """Reflect padding, convolution, normalisation, LeakyReLU 0.2 (optional). ``norm="adain"``
    takes its scale and bias in ``forward``. Where the padding is not smaller than the map
    (a dilated ASPP branch on a small test image) it is zero padding."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        dilation: int = 1,
        norm: Norm = "none",
        act: bool = True,
    ) -> None:
        super().__init__()
        self.pad = dilation * (kernel - 1) // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride, dilation=dilation)
        self.norm_kind = norm
        self.norm: nn.Module = {
            "in": nn.InstanceNorm2d(cout),
            "ln": LayerNorm2d(cout),
        }.get(norm, nn.Identity())
        self.act = nn.LeakyReLU(0.2) if act else nn.Identity()
        self.channels = cout

    def forward(
        self, x: torch.Tensor, scale: torch.Tensor | None = None, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.pad:
            mode = "reflect" if self.pad < min(x.shape[-2:]) else "constant"
            x = pad_as_is(x, self.pad, mode)
        x = self.conv(x)
        x = adain(x, scale, bias) if self.norm_kind == "adain" else self.norm(x)
        return self.act(x)


class ResBlock(nn.Module):
    """x + conv(norm, LeakyReLU) -> conv(norm): 3x3 convolutions at a fixed width."""

    def __init__(self, channels: int, norm: Norm = "in") -> None:
        super().__init__()
        self.conv1 = ConvBlock(channels, channels, 3, norm=norm)
        self.conv2 = ConvBlock(channels, channels, 3, norm=norm, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class AdaINResBlock(nn.Module):
    """A residual block whose two normalisations are AdaIN; ``params`` is B x 4C: scale and
    bias of the first, then of the second normalisation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = ConvBlock(channels, channels, 3, norm="adain")
        self.conv2 = ConvBlock(channels, channels, 3, norm="adain", act=False)

    @property
    def num_params(self) -> int:
        """Scale and bias for each channel of both AdaIN layers."""
        return 4 * self.channels

    def forward(self, x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``scale``, ``bias``: B x 2C (first layer's C, then the second's)."""
        c = self.channels
        h = self.conv1(x, scale[:, :c], bias[:, :c])
        return x + self.conv2(h, scale[:, c:], bias[:, c:])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 branch and 3x3 branches at dilations 3, 6, 9,
    concatenated and fused by a 1x1 convolution (E_s's last stage)."""

    def __init__(self, cin: int, branch: int, cout: int, dilations: tuple[int, ...] = (3, 6, 9)):
        super().__init__()
        self.branches = nn.ModuleList(
            [ConvBlock(cin, branch, 1, norm="in")]
            + [ConvBlock(cin, branch, 3, dilation=d, norm="in") for d in dilations]
        )
        self.fuse = ConvBlock(branch * (1 + len(dilations)), cout, 1, norm="in", act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([b(x) for b in self.branches], dim=1))


class MLP(nn.Module):
    """Linear -> LeakyReLU -> Linear -> LeakyReLU -> Linear (appearance code -> AdaIN)."""

    def __init__(self, cin: int, hidden: int, cout: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cin, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, cout),
        )
        self.out_features = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
