"""The ``model`` section of a DG-Net config: the sizes of the four networks and the test
feature. Paper scale is the default (ResNet-50, generator width 16, MLP 512, 256x128)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genreid.core.errors import ConfigError
from genreid.models.backbones import RESNETS

CODE_PARTS = 4  # the appearance code is max-pooled to C x 4 x 1: one stripe per AdaIN block


@dataclass
class DGNetModelConfig:
    """E_a (a ResNet), E_s and G (``gen_width``), D (``dis_*``) and the test feature."""

    backbone: str = "resnet50"  # E_a: resnet18, resnet34, resnet50
    width: int = 64  # E_a's first-stage channels (64: torchvision's; 16: the tiny ResNet-18)
    last_stride: int = 1  # stride of E_a's last stage (1 in DG-Net: a 16x8 map at 256x128)
    pretrained: str | None = "imagenet"  # imagenet, synthetic (shipped), a file, or null
    embed_dim: int = 512  # f_prim and f_fine
    dropout_prim: float = 0.5
    dropout_fine: float = 0.75
    gen_width: int = 16  # E_s's first conv; E_s: w, 2w, 2w, 4w; s and G's blocks have 8w
    mlp_dim: int = 512  # hidden size of the MLPs that map the code to AdaIN parameters
    dis_width: int = 32  # D's first layer
    dis_layers: int = 2  # stride-2 stages of each scale of D
    dis_scales: int = 3  # input, 1/2 and 1/4 size
    feature: Literal["both", "prim", "fine"] = "both"  # the test feature
    beta: float = 0.5  # weight of f_fine in the test feature (both)

    def check(self) -> None:
        if self.backbone not in RESNETS:
            raise ConfigError(
                f"model.backbone: DG-Net's appearance encoder is a ResNet; expected one of "
                f"{', '.join(RESNETS)}, got {self.backbone!r}"
            )
        if self.last_stride not in (1, 2):
            raise ConfigError(f"model.last_stride: expected 1 or 2, got {self.last_stride}")
        for key in ("width", "embed_dim", "gen_width", "mlp_dim", "dis_width", "dis_layers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key}: expected 1 or more, got {getattr(self, key)}")
        if not 1 <= self.dis_scales <= 4:
            raise ConfigError(f"model.dis_scales: expected 1 to 4, got {self.dis_scales}")
        for key in ("dropout_prim", "dropout_fine"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"model.{key}: expected [0, 1), got {getattr(self, key)}")
        if self.beta < 0:
            raise ConfigError(f"model.beta: expected 0 or more, got {self.beta}")

    def check_size(self, height: int, width: int) -> None:
        """E_s downsamples by 4 and G upsamples by 4; D halves the image per scale and stage."""
        f = max(4, 2 ** (self.dis_scales - 1 + self.dis_layers))
        if height % f or width % f:
            raise ConfigError(
                f"data.height x data.width = {height}x{width}: DG-Net needs both to be "
                f"multiples of {f} (the structure code is 1/4 of the image, and D has "
                f"{self.dis_scales} scales of {self.dis_layers} stride-2 stages); use e.g. "
                "128x64 or 256x128"
            )
