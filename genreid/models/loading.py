"""Rebuild the re-ID network of a finished (or running) ``genreid train`` run folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from genreid.core.checkpoint import load_checkpoint, module_state
from genreid.core.config import load_section
from genreid.core.errors import CheckpointError
from genreid.core.runs import require_run
from genreid.models.reid import ModelConfig, ReIDModel, build_model


def load_run_model(
    run: str | Path,
    checkpoint: str = "last.pt",
    device: str | torch.device = "cpu",
    overrides: Sequence[str] = (),
) -> ReIDModel:
    """The run's network with its trained weights, in eval mode on ``device``."""
    run = require_run(run, "training run")
    cfg = load_section(run / "config.yaml", "model", ModelConfig, list(overrides))
    path = run / "checkpoints" / checkpoint
    if not path.is_file():
        raise CheckpointError(
            f"{path} does not exist: the run has not finished an epoch yet; train it longer "
            "or resume it with `genreid train --out RUN --resume`"
        )
    ckpt = load_checkpoint(path)
    meta = ckpt.get("meta", ckpt)  # 0.1.0 checkpoints kept num_outputs at the top
    if "num_outputs" not in meta:
        raise CheckpointError(f"{path} is not a re-ID training checkpoint (no num_outputs)")
    model = build_model(cfg, int(meta["num_outputs"]), load_pretrained=False)
    model.load_state_dict(module_state(ckpt, "model"))
    return model.to(device).eval()
