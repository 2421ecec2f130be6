"""The two encoders: E_a, the re-ID network whose max-pooled map is the appearance code, and
E_s, a shallow network on the gray image whose output map is the structure code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from genreid.models.backbones import ResNetBackbone
from genreid.models.dgnet.blocks import ASPP, ConvBlock, ResBlock
from genreid.models.dgnet.config import CODE_PARTS


@dataclass(frozen=True)
class BackboneSpec:
    """What ``load_backbone_state`` checks a weights file against."""

    backbone: str
    width: int


class ClassHead(nn.Module):
    """Linear -> BN -> Dropout -> Linear: the 512-d embedding (after BN) and the logits."""

    def __init__(self, cin: int, embed_dim: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(cin, embed_dim), nn.BatchNorm1d(embed_dim))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, num_classes)
        nn.init.kaiming_normal_(self.embed[0].weight, a=0, mode="fan_out")
        nn.init.zeros_(self.embed[0].bias)
        nn.init.normal_(self.embed[1].weight, 1.0, 0.02)
        nn.init.zeros_(self.embed[1].bias)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(g)))


class Appearance(NamedTuple):
    """E_a's output: the code (B x C x 4 x 1) and the primary and fine-grained logits."""

    code: torch.Tensor
    prim: torch.Tensor
    fine: torch.Tensor


class AppearanceEncoder(nn.Module):
    """E_a: a ResNet (last stride 1), its map max-pooled to C x 4 x 1 (the appearance code)
    and globally max-pooled into two heads, primary and fine-grained."""

    def __init__(
        self,
        backbone: str,
        width: int,
        last_stride: int,
        num_classes: int,
        embed_dim: int = 512,
        dropout_prim: float = 0.5,
        dropout_fine: float = 0.75,
    ) -> None:
        super().__init__()
        self.spec = BackboneSpec(backbone, width)
        self.backbone = ResNetBackbone(backbone, width, last_stride)
        self.code_dim = self.backbone.out_dim  # channels of each of the 4 stripes
        self.num_classes = num_classes
        self.code_pool = nn.AdaptiveMaxPool2d((CODE_PARTS, 1))
        self.prim = ClassHead(self.code_dim, embed_dim, num_classes, dropout_prim)
        self.fine = ClassHead(self.code_dim, embed_dim, num_classes, dropout_fine)

    def forward(self, x: torch.Tensor) -> Appearance:
        fmap = self.backbone.feature_map(x)
        g = torch.amax(fmap, dim=(2, 3))
        return Appearance(self.code_pool(fmap), self.prim(g), self.fine(g))

    def embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f_prim and f_fine (the heads' BN outputs), the test features."""
        g = torch.amax(self.backbone.feature_map(x), dim=(2, 3))
        return self.prim.embed(g), self.fine.embed(g)

    def head_parameters(self) -> list[nn.Parameter]:
        return [*self.prim.parameters(), *self.fine.parameters()]

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters())


def gray(x: torch.Tensor) -> torch.Tensor:
    """The mean of the three (normalised) channels: E_s sees no colour, so G must take the
    colours from the appearance code."""
    return x.mean(dim=1, keepdim=True)


class StructureEncoder(nn.Module):
    """E_s: gray image -> conv s2 (w) -> conv (2w) -> conv (2w) -> conv s2 (4w) -> 4 residual
    blocks -> ASPP (four 2w branches) -> 1x1 -> structure code (8w x H/4 x W/4)."""

    def __init__(self, width: int = 16, res_blocks: int = 4) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            ConvBlock(1, w, 3, stride=2, norm="in"),
            ConvBlock(w, 2 * w, 3, norm="in"),
            ConvBlock(2 * w, 2 * w, 3, norm="in"),
            ConvBlock(2 * w, 4 * w, 3, stride=2, norm="in"),
            *[ResBlock(4 * w, norm="in") for _ in range(res_blocks)],
            ASPP(4 * w, 2 * w, 8 * w),
        )
        self.out_dim = 8 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: B x 3 x H x W (normalised RGB) -> B x 8w x H/4 x W/4."""
        return self.net(gray(x))
