"""The four DG-Net networks built from a ``model`` section, the test-time re-ID model (E_a and
its two heads) and the rebuilding of a trained run's networks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from genreid.core.checkpoint import load_run_checkpoint, module_state
from genreid.core.config import load_section, read_yaml
from genreid.core.errors import CheckpointError, RunFolderError
from genreid.core.runs import require_run
from genreid.models.dgnet.config import DGNetModelConfig
from genreid.models.dgnet.decoder import Decoder
from genreid.models.dgnet.discriminator import MultiScaleDiscriminator
from genreid.models.dgnet.encoders import AppearanceEncoder, StructureEncoder
from genreid.models.reid import load_backbone_state, pretrained_state

MODULES = ("E_a", "E_s", "G", "D")


class DGNetNetworks(nn.Module):
    """E_a, E_s, G and D of one DG-Net (``num_classes`` training identities)."""

    def __init__(self, cfg: DGNetModelConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.E_a = AppearanceEncoder(
            cfg.backbone, cfg.width, cfg.last_stride, num_classes, cfg.embed_dim,
            cfg.dropout_prim, cfg.dropout_fine,
        )  # fmt: skip
        self.E_s = StructureEncoder(cfg.gen_width)
        self.G = Decoder(self.E_a.code_dim, self.E_s.out_dim, cfg.mlp_dim)
        self.D = MultiScaleDiscriminator(cfg.dis_width, cfg.dis_layers, cfg.dis_scales)

    def swap(self, x_app: torch.Tensor, x_struct: torch.Tensor) -> torch.Tensor:
        """G(E_a(x_app), E_s(x_struct)): each image of ``x_struct`` dressed like the image of
        ``x_app`` at the same position."""
        return self.G(self.E_a(x_app).code, self.E_s(x_struct))


def build_dgnet(
    cfg: DGNetModelConfig, num_classes: int, load_pretrained: bool = True
) -> DGNetNetworks:
    """The networks; with ``load_pretrained`` E_a's ResNet starts from ``model.pretrained``."""
    nets = DGNetNetworks(cfg, num_classes)
    if load_pretrained and cfg.pretrained:
        state, source = pretrained_state(cfg.pretrained, cfg.backbone, cfg.width)
        load_backbone_state(nets.E_a, state, source)
    return nets


class DGNetReID(nn.Module):
    """The test model: E_a's two embeddings, each L2-normalised, concatenated with weight
    ``beta`` on f_fine (``feature="both"``), or one of them alone (``prim``, ``fine``).
    Like every re-ID model, its eval-mode output is the test feature."""

    def __init__(self, encoder: AppearanceEncoder, feature: str = "both", beta: float = 0.5):
        super().__init__()
        self.encoder = encoder
        self.feature, self.beta = feature, beta
        embed = encoder.prim.embed[0].out_features
        self.feat_dim = 2 * embed if feature == "both" else embed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f_prim, f_fine = self.encoder.embeddings(x)
        if self.feature == "prim":
            return f_prim
        if self.feature == "fine":
            return f_fine
        return torch.cat([F.normalize(f_prim, dim=1), self.beta * F.normalize(f_fine, dim=1)], 1)


def load_dgnet_run(
    run: str | Path,
    checkpoint: str = "last.pt",
    device: str | torch.device = "cpu",
    overrides: Sequence[str] = (),
) -> tuple[DGNetNetworks, DGNetModelConfig, dict[str, Any]]:
    """(the trained networks in eval mode on ``device``, the model section, the checkpoint's
    meta) of a ``dgnet`` run folder."""
    run = require_run(run, "DG-Net training run")
    task = read_yaml(run / "config.yaml").get("task", "reid")
    if task != "dgnet":
        raise RunFolderError(
            f"{run} is a {task!r} run, not a DG-Net one (task dgnet); pass the --out folder of "
            "a `genreid train --config dgnet_tiny` run"
        )
    cfg = load_section(run / "config.yaml", "model", DGNetModelConfig, list(overrides))
    path = run / "checkpoints" / checkpoint
    ckpt = load_run_checkpoint(run, checkpoint)
    meta = ckpt.get("meta", {})
    if ckpt.get("task") != "dgnet" or "num_classes" not in meta:
        raise CheckpointError(f"{path} is not a checkpoint of a DG-Net (task dgnet) run")
    nets = DGNetNetworks(cfg, int(meta["num_classes"]))
    for name in MODULES:
        getattr(nets, name).load_state_dict(module_state(ckpt, name))
    return nets.to(device).eval(), cfg, meta


def load_dgnet_reid(
    run: str | Path,
    checkpoint: str = "last.pt",
    device: str | torch.device = "cpu",
    overrides: Sequence[str] = (),
) -> DGNetReID:
    """The test model of a ``dgnet`` run (E_a and its heads), in eval mode."""
    nets, cfg, _ = load_dgnet_run(run, checkpoint, "cpu", overrides)
    return DGNetReID(nets.E_a, cfg.feature, cfg.beta).to(device).eval()
