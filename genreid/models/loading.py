"""What a ``genreid train`` run folder holds, by its config's ``task`` (``RUN_KINDS``): how to
rebuild its test-time re-ID network (a re-ID run's model, a DG-Net run's appearance encoder)
and what a report says of it, for readers below the engine that cannot ask the task."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from genreid.core.checkpoint import load_run_checkpoint, module_state
from genreid.core.config import load_section, read_yaml
from genreid.core.errors import CheckpointError
from genreid.core.registry import Registry
from genreid.core.runs import require_run
from genreid.models.dgnet.network import DGNetReID, load_dgnet_reid
from genreid.models.reid import ModelConfig, ReIDModel, build_model

# (run folder, checkpoint file name, device, model overrides) -> the network in eval mode
TestModelLoader = Callable[[Path, str, str | torch.device, Sequence[str]], torch.nn.Module]


@dataclass(frozen=True)
class RunKind:
    """The run folders of one task, as reports and feature extraction see them."""

    name: str  # the task's name (a config's ``task``)
    title: str  # how messages name its runs ("a GAN run")
    test_model: TestModelLoader | None = None  # rebuilds its test-time re-ID network, if any
    uses_generated: bool = False  # may train on ``data.generated`` images
    draws_figures: bool = False  # writes sample sheets to RUN/figures


def _load_reid_model(
    run: Path, checkpoint: str, device: str | torch.device, overrides: Sequence[str]
) -> ReIDModel:
    """A re-ID run's network with its trained weights, in eval mode on ``device``."""
    cfg = load_section(run / "config.yaml", "model", ModelConfig, list(overrides))
    path = run / "checkpoints" / checkpoint
    ckpt = load_run_checkpoint(run, checkpoint)
    meta = ckpt.get("meta", ckpt)  # 0.1.0 checkpoints kept num_outputs at the top
    if "num_outputs" not in meta:
        raise CheckpointError(f"{path} is not a re-ID training checkpoint (no num_outputs)")
    model = build_model(cfg, int(meta["num_outputs"]), load_pretrained=False)
    model.load_state_dict(module_state(ckpt, "model"))
    return model.to(device).eval()


REID_RUN = RunKind("reid", "re-ID", _load_reid_model, uses_generated=True)
RUN_KINDS: Registry[RunKind] = Registry(
    "run kind",
    {
        "reid": REID_RUN,
        "gan": RunKind("gan", "GAN", draws_figures=True),
        "dgnet": RunKind("dgnet", "DG-Net", load_dgnet_reid, uses_generated=True,
                         draws_figures=True),
    },
)  # fmt: skip


def run_kind(task: object) -> RunKind | None:
    """The run kind of a config's ``task`` (None: no training task's, e.g. a pipeline's)."""
    return RUN_KINDS.get(str(task)) if task in RUN_KINDS else None


def load_run_model(
    run: str | Path,
    checkpoint: str = "last.pt",
    device: str | torch.device = "cpu",
    overrides: Sequence[str] = (),
) -> ReIDModel | DGNetReID:
    """The run's network with its trained weights, in eval mode on ``device``; its eval-mode
    output is the test feature. A config of no known task is read as a re-ID run's."""
    run = require_run(run, "training run")
    kind = run_kind(read_yaml(run / "config.yaml").get("task", "reid")) or REID_RUN
    if kind.test_model is None:
        raise CheckpointError(f"{run} is a {kind.title} run: it has no re-ID network to rebuild")
    return kind.test_model(run, checkpoint, device, overrides)  # type: ignore[return-value]
