"""Features of images through a network, in dataset order, and the re-ID test feature.

:func:`extract_features` is the one loop over a dataset that every feature consumer uses
(evaluation, ``genreid extract``, the generation metrics). The re-ID test feature is what the
model returns in eval mode (pool5 for ``ide``, the backbone feature for ``bottleneck``),
plus that of the mirrored image when flip-averaging, L2-normalised (docs/TRAINING.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset

from genreid.core.config import apply_overrides, load_section, read_yaml
from genreid.core.distributed import resolve_device
from genreid.core.errors import ConfigError, NonFiniteFeaturesError
from genreid.core.runs import require_run
from genreid.data.config import DataConfig
from genreid.data.dataset import ImageDataset
from genreid.data.records import ImageRecord, ReIDDataset
from genreid.data.transforms import test_transform
from genreid.eval.ranking.config import EvalConfig
from genreid.eval.ranking.distance import compute_distance
from genreid.eval.ranking.features import save_features
from genreid.eval.ranking.metrics import evaluate_rank
from genreid.models.loading import load_run_model
from genreid.models.pretrained import PretrainedError, read_backbone_file, shipped_path
from genreid.models.reid import ModelConfig, build_model


@torch.no_grad()
def extract_features(
    forward: Callable[[torch.Tensor], torch.Tensor],
    dataset: Dataset,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    workers: int = 0,
) -> torch.Tensor:
    """N x D features (CPU) of every item of an :class:`ImageDataset`-style dataset, in order."""
    if isinstance(dataset, ImageDataset):
        dataset = dataset.batched()
    collate = getattr(dataset, "collate", None)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate
    )
    out = [forward(batch["image"].to(device)).cpu() for batch in loader]
    return torch.cat(out) if out else torch.zeros(0, 0)


def reid_forward(
    model: torch.nn.Module, flip: bool = True
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The re-ID test feature of a batch: eval-mode output (+ mirrored), L2-normalised."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        f = model(x).float()
        if flip:
            f = f + model(x.flip(-1)).float()
        return functional.normalize(f, dim=1)

    return forward


def reid_features(
    model: torch.nn.Module,
    records: Sequence[ImageRecord],
    size: Sequence[int],
    batch_size: int = 128,
    flip: bool = True,
    device: torch.device | str = "cpu",
    workers: int = 0,
) -> torch.Tensor:
    """N x D float32 test features of ``records`` (resized to ``size``), in record order."""
    was_training = model.training
    model.eval()
    try:
        dataset = ImageDataset(records, test_transform(size))
        return extract_features(reid_forward(model, flip), dataset, batch_size, device, workers)
    finally:
        model.train(was_training)


def require_finite(features: torch.Tensor, split: str) -> None:
    """Refuse features with NaN or inf before ranking, naming how many images have them."""
    bad = int((~torch.isfinite(features)).any(dim=1).sum())
    if bad:
        raise NonFiniteFeaturesError(
            f"{bad} of {len(features)} {split} images have NaN or inf test features: the "
            "network's activations overflow in eval mode (diverged weights, or BatchNorm "
            "statistics that do not fit them)"
        )


def evaluate_model(
    model: torch.nn.Module,
    dataset: ReIDDataset,
    size: Sequence[int],
    metric: str = "cosine",
    flip: bool = True,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    workers: int = 0,
) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """Rank-1/5/10, mAP and mINP on the query/gallery split, plus the features."""
    qf = reid_features(model, dataset.query, size, batch_size, flip, device, workers)
    gf = reid_features(model, dataset.gallery, size, batch_size, flip, device, workers)
    require_finite(qf, "query")
    require_finite(gf, "gallery")
    dist = compute_distance(qf, gf, metric=metric, device="cpu")
    cmc, mAP, per_query = evaluate_rank(
        dist,
        [r.pid for r in dataset.query],
        [r.pid for r in dataset.gallery],
        [r.camid for r in dataset.query],
        [r.camid for r in dataset.gallery],
        max_rank=min(50, len(dataset.gallery)),
        return_per_query=True,
    )
    cmc = np.asarray(cmc)
    metrics = {f"rank{k}": float(cmc[min(k, len(cmc)) - 1]) for k in (1, 5, 10)}
    metrics.update(mAP=float(mAP), mINP=float(per_query["mINP"]))
    return metrics, qf, gf


def save_dataset_features(
    path: str | Path, dataset: ReIDDataset, qf: torch.Tensor, gf: torch.Tensor, **extra: Any
) -> Path:
    """Write query/gallery features with identities, cameras and paths (``save_features``)."""
    q, g = dataset.query, dataset.gallery
    return save_features(
        path,
        qf.numpy(),
        gf.numpy(),
        [r.pid for r in q],
        [r.pid for r in g],
        [r.camid for r in q],
        [r.camid for r in g],
        [r.path for r in q],
        [r.path for r in g],
        **extra,
    )


def load_trained_model(
    run: str | Path, checkpoint: str = "last.pt", overrides: Sequence[str] = ()
) -> tuple[torch.nn.Module, DataConfig, EvalConfig, torch.device]:
    """(model in eval mode, its data and eval config sections, device) of a training run.

    ``overrides`` (``key=value``) change the saved config, e.g. ``eval.flip=false`` or
    ``train.device=cpu``.
    """
    run = require_run(run, "training run")
    overrides = list(overrides)
    for item in overrides:
        section = item.split("=", 1)[0].split(".", 1)[0]
        if section not in ("data", "model", "eval", "train"):
            raise ConfigError(
                f"override {item!r}: a trained run's features can change data.*, model.*, "
                "eval.* or train.* keys (e.g. eval.flip=false, train.device=cpu)"
            )
    config = run / "config.yaml"
    raw = apply_overrides(read_yaml(config), overrides)
    device = resolve_device((raw.get("train") or {}).get("device", "auto"))
    model = load_run_model(run, checkpoint, device, overrides)
    data = load_section(config, "data", DataConfig, overrides)
    ev = load_section(config, "eval", EvalConfig, overrides)
    return model, data, ev, device


def load_pretrained_model(
    source: str, size: tuple[int, int] | None = None, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, tuple[int, int], str]:
    """(network in eval mode, image size, file) for zero-shot features: a backbone weights file
    (``synthetic``: the one genreid ships) under an untrained IDE head, whose eval-mode output
    is the pooled backbone feature, the test feature of the trained baselines. The size is
    ``size``, else the one the file's synthetic set was rendered at."""
    path = shipped_path("resnet18", 16) if source.lower() == "synthetic" else Path(source)
    if not path.is_file():
        raise PretrainedError(
            f"--pretrained {source}: no such file; give synthetic (the shipped backbone) or a "
            "backbone file written by `genreid pretrain` (RUN/backbone.pt)"
        )
    _, header = read_backbone_file(path)  # the sidecar's sha256 and the format, checked
    if size is None:
        side = json.loads(path.with_suffix(".json").read_text())  # read_backbone_file needs it
        rendered = (side.get("synthetic") or {}).get("size")
        if not rendered:
            raise PretrainedError(f"{path}: its sidecar names no image size; pass --size HxW")
        size = (int(rendered[0]), int(rendered[1]))
    backbone, width = str(header["backbone"]), int(header["width"])
    cfg = ModelConfig(arch="ide", backbone=backbone, width=width, pretrained=str(path))
    model = build_model(cfg, 1).to(device).eval()
    return model, size, str(path)
