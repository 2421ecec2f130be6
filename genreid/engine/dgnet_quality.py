"""How well a DG-Net swaps: the appearance-transfer rate and the generated-image measures.

DG-Net's premise is that G(a_i, s_j) keeps the *appearance* donor's identity. For seeded
cross-identity pairs of training images, a judge (the run's teacher, else its own E_a) embeds
each swapped image; the image's identity is the nearest identity centroid of the real
training images under the same judge. The appearance-transfer rate is the share whose
identity is the appearance donor's, the structure rate the share that is the structure
donor's. The swapped images are also scored like a GAN's (Frechet, KID, precision, recall in
the synthetic space) against the training images (DG-Net trains re-ID on all of them, so
none is held out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from genreid.core.config import read_yaml
from genreid.data.dataset import ImageDataset
from genreid.data.datasets import load_dataset
from genreid.data.records import ImageRecord
from genreid.data.transforms import denormalized, normalized, test_transform
from genreid.engine.dgnet_swap import open_run
from genreid.eval.generation.extractors import image_features
from genreid.eval.generation.gen_quality import (
    K_NEAREST,
    MeasureConfig,
    cross_identity_pairs,
    identity_centroids,
    quality,
    synthetic_space,
    tensor_features,
    transfer_rates,
)
from genreid.eval.ranking.extract import load_trained_model, reid_forward

Judge = Callable[[torch.Tensor], torch.Tensor]  # normalised images -> L2-normalised features


def reid_judge(model: torch.nn.Module, size: Sequence[int]) -> Judge:
    """A re-ID model's flip-averaged, L2-normalised test feature, images resized to ``size``
    (the model's training size) when they differ."""
    forward = reid_forward(model.eval(), flip=True)
    size = tuple(size)

    def judge(x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return forward(x)

    return judge


def _as_saved(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Generated images in the normalised space -> (the 8-bit image in [0, 1], that image
    normalised again): what a saved JPEG-free file would hold."""
    u = (denormalized(x.cpu()) * 255).round()
    return u / 255, normalized(u.to(torch.uint8))


@torch.no_grad()
def swap_quality(
    E_a: torch.nn.Module,
    E_s: torch.nn.Module,
    G: torch.nn.Module,
    records: Sequence[ImageRecord],
    size: tuple[int, int],
    judge: Judge,
    judge_name: str,
    cfg: MeasureConfig,
    device: torch.device,
    batch_size: int = 64,
) -> dict[str, Any]:
    """``transfer`` (appearance and structure rates, the judge) and ``generated`` (the four
    measures) of ``cfg.images`` swaps (0: as many as ``records``); networks in eval mode."""
    pids = [r.pid for r in records]
    data = ImageDataset(list(records), test_transform(size))

    def images(idx: Sequence[int]) -> torch.Tensor:
        return torch.stack([data[i]["image"] for i in idx]).to(device)

    everyone = range(len(records))
    chunks = [list(everyone[s : s + batch_size]) for s in range(0, len(records), batch_size)]
    real = np.concatenate([judge(images(c)).double().cpu().numpy() for c in chunks])
    centroids, ids = identity_centroids(real, pids)
    pairs = cross_identity_pairs(pids, cfg.images or len(records), cfg.seed)
    space = synthetic_space(device)
    judged, spaced = [], []
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s : s + batch_size]
        xa, xs = images([a for a, _ in chunk]), images([b for _, b in chunk])
        unit, again = _as_saved(G(E_a(xa).code, E_s(xs)))
        judged.append(judge(again.to(device)).double().cpu().numpy())
        spaced.append(tensor_features(space, unit.to(device)))
    rates = transfer_rates(
        np.concatenate(judged), centroids, ids,
        [pids[a] for a, _ in pairs], [pids[b] for _, b in pairs],
    )  # fmt: skip
    # the judge's own accuracy: real training images assigned to their identity (the ceiling)
    own = float(np.mean(ids[np.argmax(real @ centroids.T, axis=1)] == np.asarray(pids)))
    out: dict[str, Any] = {"transfer": {**rates, "judge": judge_name, "judge_on_real": own}}
    real_space = image_features(space, [r.path for r in records], batch_size, device)
    if min(len(real_space), len(pairs)) >= K_NEAREST + 1:
        q = quality(real_space, np.concatenate(spaced), cfg.seed)
        out["generated"] = {**q.as_dict(), "against": "the training images"}
    return out


def measure_run(
    run: str | Path,
    judge_run: str | Path | None = None,
    images: int = 256,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """:func:`swap_quality` of a finished DG-Net run folder: judged by ``judge_run`` (a re-ID
    run), else the run's teacher, else its own E_a."""
    model = open_run(run, device=device)
    teacher = read_yaml(Path(run) / "config.yaml").get("teacher")
    if judge_run or teacher:
        source = str(judge_run or teacher)
        reid, data, _, _ = load_trained_model(source, overrides=[f"train.device={device}"])
        judge, name = (
            reid_judge(reid, data.size),
            f"{'re-ID run' if judge_run else 'teacher'} {source}",
        )
    else:
        reid, data, _, _ = load_trained_model(run, overrides=[f"train.device={device}"])
        judge, name = reid_judge(reid, data.size), "the run's own E_a"
    d = model.data
    ds = load_dataset(d.dataset, d.require_root(), **d.options)
    label_map = ds.train_label_map()
    records = [r for r in ds.train if not r.generated and r.pid in label_map]
    n = model.nets
    return swap_quality(
        n.E_a, n.E_s, n.G, records, model.size, judge, name,
        MeasureConfig(images=images, seed=seed), model.device,
    )  # fmt: skip
