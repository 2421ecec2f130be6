"""CNN backbones (ResNet, DenseNet) that map an image to one pooled feature vector.

The ResNets are built from torchvision's blocks with torchvision's parameter names, so that
ImageNet weights (``width=64``) load unchanged; ``width`` scales every stage for small models
that train on a CPU in minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision.models as tvm
from torch import nn
from torchvision.models import densenet121
from torchvision.models.resnet import BasicBlock, Bottleneck

from genreid.core.errors import ConfigError
from genreid.models.pretrained import PretrainedError

# name -> (block, blocks per stage)
RESNETS: dict[str, tuple[type[nn.Module], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}
BACKBONES: tuple[str, ...] = (*RESNETS, "densenet121")


class ResNetBackbone(nn.Module):
    """ResNet trunk + global average pool (pool5); ``width`` 64 is the torchvision network."""

    def __init__(self, name: str = "resnet50", width: int = 64, last_stride: int = 2) -> None:
        super().__init__()
        block, layers = RESNETS[name]
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0], 1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], last_stride)
        self.out_dim = width * 8 * block.expansion
        self.pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int):
        downsample = None
        expansion = block.expansion  # type: ignore[attr-defined]
        if stride != 1 or self.inplanes != planes * expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * expansion),
            )
        out = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * expansion
        out += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*out)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's map (B x out_dim x H/32 x W/32, H/16 with ``last_stride=1``)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.feature_map(x)), 1)


class DenseNetBackbone(nn.Module):
    """DenseNet-121 features + ReLU + global average pool (1024-d)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = densenet121(weights=None).features
        self.out_dim = 1024
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.features(x))
        return torch.flatten(self.pool(x), 1)


def build_backbone(name: str, width: int = 64) -> nn.Module:
    """A backbone by name; unknown names list the known ones."""
    if name in RESNETS:
        return ResNetBackbone(name, width)
    if name == "densenet121":
        if width != 64:
            raise ConfigError("model.width applies to ResNet backbones only; densenet121 has 64")
        return DenseNetBackbone()
    raise ConfigError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")


def imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for a backbone (downloaded on first use); with no
    network, a one-line error naming the ways out."""
    builders: dict[str, tuple[Callable[..., nn.Module], tvm.WeightsEnum]] = {
        "resnet18": (tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1),
        "resnet34": (tvm.resnet34, tvm.ResNet34_Weights.IMAGENET1K_V1),
        "resnet50": (tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V1),
        "densenet121": (tvm.densenet121, tvm.DenseNet121_Weights.IMAGENET1K_V1),
    }
    if name not in builders:
        raise ConfigError(f"no ImageNet weights for backbone {name!r}")
    build, weights = builders[name]
    try:
        return build(weights=weights).state_dict()
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad download's hash
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
        raise PretrainedError(
            f"model.pretrained: imagenet: torchvision's {name} weights could not be loaded "
            f"({type(exc).__name__}: {exc}). Without a network: put {weights.url} at {cached}, "
            "or train from genreid's own weights: model.pretrained=synthetic (tiny archs), "
            "model.pretrained=FILE (a backbone from `genreid pretrain`) or model.pretrained=null"
        ) from None
