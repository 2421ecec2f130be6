"""Rebuild the re-ID network of a finished (or running) ``genreid train`` run folder (a
re-ID run, or a DG-Net run whose test model is its appearance encoder)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from genreid.core.checkpoint import load_run_checkpoint, module_state
from genreid.core.config import load_section, read_yaml
from genreid.core.errors import CheckpointError
from genreid.core.runs import require_run
from genreid.models.dgnet.network import DGNetReID, load_dgnet_reid
from genreid.models.reid import ModelConfig, ReIDModel, build_model


def load_run_model(
    run: str | Path,
    checkpoint: str = "last.pt",
    device: str | torch.device = "cpu",
    overrides: Sequence[str] = (),
) -> ReIDModel | DGNetReID:
    """The run's network with its trained weights, in eval mode on ``device``; its eval-mode
    output is the test feature."""
    run = require_run(run, "training run")
    if read_yaml(run / "config.yaml").get("task") == "dgnet":
        return load_dgnet_reid(run, checkpoint, device, overrides)
    cfg = load_section(run / "config.yaml", "model", ModelConfig, list(overrides))
    path = run / "checkpoints" / checkpoint
    ckpt = load_run_checkpoint(run, checkpoint)
    meta = ckpt.get("meta", ckpt)  # 0.1.0 checkpoints kept num_outputs at the top
    if "num_outputs" not in meta:
        raise CheckpointError(f"{path} is not a re-ID training checkpoint (no num_outputs)")
    model = build_model(cfg, int(meta["num_outputs"]), load_pretrained=False)
    model.load_state_dict(module_state(ckpt, "model"))
    return model.to(device).eval()
