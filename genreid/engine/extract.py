"""Test features: (feature + feature of the flipped image), L2-normalised; evaluation; .npz.

The feature is what the model returns in eval mode (pool5 for ``ide``, the backbone feature
for ``bottleneck``), as METHODS §1 prescribes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional
from torch.utils.data import DataLoader

from genreid.data.records import ImageRecord, ReIDDataset
from genreid.data.reid_dataset import ReIDImageDataset
from genreid.data.transforms import test_transform


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    records: Sequence[ImageRecord],
    size: Sequence[int],
    batch_size: int = 128,
    flip: bool = True,
    device: torch.device | str = "cpu",
    workers: int = 0,
) -> torch.Tensor:
    """N x D float32 CPU tensor of L2-normalised (flip-averaged) features, in record order."""
    ds = ReIDImageDataset(records, test_transform(size))
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
    was_training = model.training
    model.eval()
    out = []
    for batch in loader:
        x = batch[0].to(device)
        f = model(x).float()
        if flip:
            f = f + model(x.flip(-1)).float()
        out.append(functional.normalize(f, dim=1).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 0)


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
    from genreid.eval.distance import compute_distance
    from genreid.eval.metrics import evaluate_rank

    qf = extract_features(model, dataset.query, size, batch_size, flip, device, workers)
    gf = extract_features(model, dataset.gallery, size, batch_size, flip, device, workers)
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
    from genreid.eval.features import save_features

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
) -> tuple[torch.nn.Module, Any, torch.device]:
    """(model in eval mode on its device, resolved config, device) of a ``genreid train`` run."""
    from genreid.config import load_config
    from genreid.engine.checkpoint import load_checkpoint
    from genreid.engine.distributed import resolve_device
    from genreid.engine.reid_config import ReIDTrainConfig
    from genreid.engine.trainer import model_spec
    from genreid.models.reid import build_model

    run = Path(run)
    if not (run / "config.yaml").is_file():
        raise FileNotFoundError(f"{run} is not a training run (no config.yaml)")
    cfg = load_config(ReIDTrainConfig, run / "config.yaml", list(overrides))
    ckpt = load_checkpoint(run / "checkpoints" / checkpoint)
    model = build_model(model_spec(cfg, int(ckpt["num_outputs"])))
    model.load_state_dict(ckpt["model"])
    device = resolve_device(cfg.train.device)
    model.to(device).eval()
    return model, cfg, device
