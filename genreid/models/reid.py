"""Re-ID networks: ``ide`` and ``bottleneck`` heads on a backbone (docs/TRAINING.md, Models).

The ``model`` config section *is* the network's specification; only the number of classifier
outputs comes from the data (and the label strategy). In training mode the model returns
``(logits, feature)``, the feature being the pooled backbone output (pool5) that FAPL's
centers use; in eval mode it returns that feature alone, the test feature of both baselines.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from genreid.core.errors import ConfigError, RegistryError
from genreid.core.registry import Registry
from genreid.models.backbones import BACKBONES, build_backbone, imagenet_state_dict
from genreid.models.pretrained import (
    PretrainedError,
    check_fits,
    is_backbone_file,
    load_weights,
    read_backbone_file,
    shipped_path,
    split_backbone,
    verify_sidecar,
)


@dataclass(frozen=True)
class Arch:
    """A re-ID architecture: a head on a backbone, with the defaults it fills in."""

    name: str
    head: str  # ide or bottleneck
    backbone: str
    width: int
    dropout: float


REID_ARCHS: Registry[Arch] = Registry(
    "re-ID architecture (model.arch)",
    {
        "ide": Arch("ide", "ide", "resnet50", 64, 0.75),
        "bottleneck": Arch("bottleneck", "bottleneck", "resnet50", 64, 0.5),
        "ide_tiny": Arch("ide_tiny", "ide", "resnet18", 16, 0.75),
        "bottleneck_tiny": Arch("bottleneck_tiny", "bottleneck", "resnet18", 16, 0.5),
    },
)
ARCHS: tuple[str, ...] = REID_ARCHS.names()
ACTIVATIONS = ("leaky_relu", "none")  # model.activation: the bottleneck head's, after its BN


@dataclass
class ModelConfig:
    """The ``model`` section: ``arch`` (ide, bottleneck, ide_tiny, bottleneck_tiny); empty or 0
    fields take the arch's defaults (``*_tiny``: ResNet-18 at width 16)."""

    arch: str = "ide"
    backbone: str = ""
    width: int = 0
    dropout: float | None = None
    bottleneck_dim: int = 512
    # after the bottleneck's BN: leaky_relu (0.1, SLSR's) or none (the ClassBlock of
    # Person_reID_baseline_pytorch, DG-Net's teacher: relu=False)
    activation: str = "leaky_relu"
    pretrained: str | None = None  # imagenet, synthetic (shipped) or a weights file

    def check(self) -> None:
        try:
            REID_ARCHS.key(self.arch)
        except RegistryError as exc:
            raise ConfigError(f"model.arch: {exc}") from None
        if self.backbone and self.backbone not in BACKBONES:
            raise ConfigError(
                f"model.backbone: unknown backbone {self.backbone!r}; expected one of "
                f"{', '.join(BACKBONES)}"
            )
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout: expected a value in [0, 1), got {self.dropout}")
        if self.width < 0 or self.bottleneck_dim < 1:
            raise ConfigError("model.width must be >= 0 and model.bottleneck_dim >= 1")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"model.activation: expected {' or '.join(ACTIVATIONS)}, got {self.activation!r}"
            )

    def resolved(self) -> ModelConfig:
        """A copy with the arch's defaults filled in (``arch`` becomes the head name)."""
        self.check()
        a = REID_ARCHS.get(self.arch)
        return dataclasses.replace(
            self,
            arch=a.head,
            backbone=self.backbone or a.backbone,
            width=self.width or a.width,
            dropout=a.dropout if self.dropout is None else self.dropout,
        )


class ReIDModel(nn.Module):
    """Backbone + classifier head; ``head_parameters`` are the new layers (10x lr)."""

    def __init__(self, cfg: ModelConfig, num_outputs: int) -> None:
        super().__init__()
        spec = cfg.resolved()
        self.spec = spec
        self.num_outputs = num_outputs
        self.backbone = build_backbone(spec.backbone, spec.width)
        d = self.backbone.out_dim
        self.feat_dim = d
        if spec.arch == "ide":
            self.head = nn.Sequential(nn.Dropout(spec.dropout), nn.Linear(d, num_outputs))
            nn.init.normal_(self.head[1].weight, std=0.001)
            nn.init.zeros_(self.head[1].bias)
        else:
            b = spec.bottleneck_dim
            self.head = nn.Sequential(
                nn.Linear(d, b),
                nn.BatchNorm1d(b),
                nn.LeakyReLU(0.1) if spec.activation == "leaky_relu" else nn.Identity(),
                nn.Dropout(spec.dropout),
                nn.Linear(b, num_outputs),
            )
            nn.init.kaiming_normal_(self.head[0].weight, a=0, mode="fan_out")
            nn.init.zeros_(self.head[0].bias)
            nn.init.normal_(self.head[1].weight, 1.0, 0.02)
            nn.init.zeros_(self.head[1].bias)
            nn.init.normal_(self.head[4].weight, std=0.001)
            nn.init.zeros_(self.head[4].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        feat = self.backbone(x)
        if not self.training:
            return feat
        return self.head(feat), feat

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters())


def build_model(cfg: ModelConfig, num_outputs: int, load_pretrained: bool = True) -> ReIDModel:
    """A re-ID model; with ``load_pretrained`` its backbone is loaded from ``cfg.pretrained``:
    ``imagenet`` (torchvision, downloaded), ``synthetic`` (genreid's shipped weights from
    synthetic pedestrians, no download) or a file (a backbone file of ``genreid pretrain``,
    a state dict, a genreid checkpoint). Rebuilding a trained run skips that."""
    model = ReIDModel(cfg, num_outputs)
    pretrained = cfg.pretrained if load_pretrained else None
    if pretrained:
        state, source = pretrained_state(pretrained, model.spec.backbone, model.spec.width)
        load_backbone_state(model, state, source)
    return model


def pretrained_state(
    pretrained: str, backbone: str, width: int
) -> tuple[dict[str, torch.Tensor], str]:
    """(backbone state dict, where it came from) for a ``model.pretrained`` value: ``imagenet``,
    ``synthetic`` or a weights file."""
    if pretrained.lower() == "imagenet":
        return imagenet_state_dict(backbone), f"torchvision ImageNet {backbone}"
    if pretrained.lower() == "synthetic":
        state, header = read_backbone_file(shipped_path(backbone, width))
        source = f"genreid's synthetic-pedestrian {backbone} (width {width})"
        check_fits(header, backbone, width, source)
        return state, source
    return _read_state_file(pretrained, backbone, width), pretrained


def _read_state_file(path: str, backbone: str, width: int) -> dict[str, torch.Tensor]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise PretrainedError(
            f"model.pretrained: {p} does not exist; give imagenet, synthetic or the path of a "
            "weights file (a backbone.pt of `genreid pretrain`, or a state dict .pt/.pth)"
        )
    verify_sidecar(p)  # a backbone file of `genreid pretrain`: its sha256 first
    obj = load_weights(p, "a torch state dict saved with torch.save")
    if is_backbone_file(obj):
        state, header = split_backbone(obj, p)
        check_fits(header, backbone, width, str(p))
        return state
    if isinstance(obj, dict) and isinstance(obj.get("modules"), dict):
        obj = obj["modules"].get("model", obj)  # a genreid training checkpoint
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]  # a genreid 0.1.0 checkpoint
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PretrainedError(f"model.pretrained: {p} does not hold a state dict of tensors")
    return obj


def load_backbone_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy backbone weights (torchvision names or ``backbone.*``); classifier keys are skipped.
    ``model`` has a ``backbone`` and a ``spec`` with ``backbone`` and ``width`` (a
    :class:`ReIDModel`, DG-Net's appearance encoder)."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state):
        state = {k[9:]: v for k, v in state.items() if k.startswith("backbone.")}
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
    own = model.backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:3])}")
    if bad:
        k = bad[0]
        problems.append(
            f"{len(bad)} shape mismatch(es), e.g. {k}: file "
            f"{tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        )
    if problems:
        raise PretrainedError(
            f"model.pretrained: {source} does not fit backbone {model.spec.backbone} "
            f"(width {model.spec.width}): {'; '.join(problems)}"
        )
    model.backbone.load_state_dict(state, strict=True)
