"""Re-ID networks: ``ide`` and ``bottleneck`` heads on a backbone (METHODS §1).

In training mode the model returns ``(logits, feature)``, the feature being the pooled
backbone output (pool5) that FAPL's centers use; in eval mode it returns that feature alone,
the test feature of both baselines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from genreid.models.backbones import build_backbone, imagenet_state_dict

ARCHS: tuple[str, ...] = ("ide", "bottleneck", "ide_tiny", "bottleneck_tiny")


class PretrainedError(ValueError):
    """Pretrained weights that are missing or do not fit the backbone."""


@dataclass(frozen=True)
class ModelSpec:
    """What defines a network: head, backbone, width, dropout, bottleneck size, outputs."""

    arch: str = "ide"
    backbone: str = ""
    width: int = 0
    dropout: float | None = None
    bottleneck_dim: int = 512
    num_outputs: int = 751

    def resolved(self) -> ModelSpec:
        """Fill the arch's defaults: ``*_tiny`` means resnet18 at width 16."""
        if self.arch not in ARCHS:
            known = ", ".join(ARCHS)
            raise ValueError(f"unknown model.arch {self.arch!r}; expected one of {known}")
        tiny = self.arch.endswith("_tiny")
        head = self.arch.removesuffix("_tiny")
        backbone = self.backbone or ("resnet18" if tiny else "resnet50")
        width = self.width or (16 if tiny else 64)
        dropout = self.dropout if self.dropout is not None else (0.75 if head == "ide" else 0.5)
        return ModelSpec(head, backbone, width, dropout, self.bottleneck_dim, self.num_outputs)


class ReIDModel(nn.Module):
    """Backbone + classifier head; ``head_parameters`` are the new layers (10x lr)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        spec = spec.resolved()
        self.spec = spec
        self.backbone = build_backbone(spec.backbone, spec.width)
        d = self.backbone.out_dim
        self.feat_dim = d
        if spec.arch == "ide":
            self.head = nn.Sequential(nn.Dropout(spec.dropout), nn.Linear(d, spec.num_outputs))
            nn.init.normal_(self.head[1].weight, std=0.001)
            nn.init.zeros_(self.head[1].bias)
        else:
            b = spec.bottleneck_dim
            self.head = nn.Sequential(
                nn.Linear(d, b),
                nn.BatchNorm1d(b),
                nn.LeakyReLU(0.1),
                nn.Dropout(spec.dropout),
                nn.Linear(b, spec.num_outputs),
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


def build_model(spec: ModelSpec, pretrained: str | None = None) -> ReIDModel:
    """A re-ID model, its backbone loaded from ``imagenet`` or a local state-dict file."""
    model = ReIDModel(spec)
    if pretrained:
        if pretrained.lower() == "imagenet":
            state = imagenet_state_dict(model.spec.backbone)
            source = f"torchvision ImageNet {model.spec.backbone}"
        else:
            state = _read_state_file(pretrained)
            source = pretrained
        load_backbone_state(model, state, source)
    return model


def _read_state_file(path: str) -> dict[str, torch.Tensor]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise PretrainedError(
            f"model.pretrained: {p} does not exist; give 'imagenet' or the path of a "
            "state-dict file (.pt/.pth)"
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PretrainedError(
            f"model.pretrained: cannot load {p} ({type(exc).__name__}: {exc}); expected a "
            "torch state dict saved with torch.save"
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]  # a genreid checkpoint
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PretrainedError(f"model.pretrained: {p} does not hold a state dict of tensors")
    return obj


def load_backbone_state(model: ReIDModel, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy backbone weights (torchvision names or ``backbone.*``); classifier keys are skipped."""
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
