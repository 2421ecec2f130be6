"""MpRL (Huang et al., TIP 2018): rank-weighted multi-pseudo labels ``smprl``/``dmprl1``/``dmprl2``.

Sort the classes by p ascending; the class of rank r (1 = least likely ... K = most likely)
gets weight r, normalised: q(k) = 2 rank(k) / (K (K+1)). The released MatConvNet code applies
the inverse permutation by mistake (idx(k)/K); genreid implements the rank rule as described.
``smprl`` computes q once from a trained baseline (:func:`compute_smprl_targets`); the dynamic
variants recompute it from the current network at every forward (a constant target).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from genreid.core.config import load_section
from genreid.core.distributed import barrier, is_main_process
from genreid.core.errors import ConfigError
from genreid.core.runs import require_run
from genreid.data.config import DataConfig
from genreid.data.dataset import ImageDataset
from genreid.data.records import ImageRecord
from genreid.data.transforms import test_transform
from genreid.labels.base import LabelBatch, LabelStrategy, TrainingSet
from genreid.labels.config import StrategyOptions
from genreid.models.loading import load_run_model

TARGETS_FILE = "smprl_targets.npz"


def rank_targets(p: torch.Tensor) -> torch.Tensor:
    """MpRL's rank rule on rows of probabilities (or logits: only the order matters)."""
    K = p.shape[1]
    ranks = torch.argsort(torch.argsort(p.float(), dim=1, stable=True), dim=1) + 1
    return ranks.float() * (2.0 / (K * (K + 1)))


class DMpRL1(LabelStrategy):
    """Dynamic MpRL-I: rank targets of the current network, generated images from epoch 0."""

    name = "dmprl1"

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        return rank_targets(batch.logits[mask].detach())


class DMpRL2(DMpRL1):
    """Dynamic MpRL-II: as dmprl1, weight 0.1, generated images from ``gen_start_epoch``."""

    name = "dmprl2"
    default_gen_weight = 0.1
    delayed_by_default = True


class SMpRL(LabelStrategy):
    """Static MpRL: fixed rank targets from a trained baseline, read from an .npz file."""

    name = "smprl"

    @dataclass
    class Options(StrategyOptions):
        """``labels.options`` of smprl: where its fixed targets come from."""

        smprl_from: str | None = None  # a trained baseline run folder
        smprl_targets: str | None = None  # or a ready .npz of fixed targets

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("rows", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("fixed", torch.zeros(0, self.num_outputs), persistent=False)

    def prepare(self, data: TrainingSet) -> None:
        path = self.options.smprl_targets or self._targets_from_baseline(data)
        paths, q = read_smprl_targets(path)
        train_records = data.records
        if q.shape[1] != self.num_outputs:
            raise ConfigError(
                f"smprl targets {path} have {q.shape[1]} classes, this run has "
                f"{self.num_outputs}; train the baseline on the same dataset"
            )
        row_of = {p: i for i, p in enumerate(paths)}
        rows = torch.full((len(train_records),), -1, dtype=torch.long)
        missing = []
        for i, rec in enumerate(train_records):
            if rec.generated:
                j = row_of.get(str(Path(rec.path).resolve()), -1)
                if j < 0:
                    missing.append(rec.path)
                rows[i] = j
        if missing:
            raise ConfigError(
                f"smprl targets {path} lack {len(missing)} generated image(s), e.g. "
                f"{missing[0]}; recompute them for this generated folder"
            )
        self.rows = rows.to(self.rows.device)
        self.fixed = torch.from_numpy(q).float().to(self.fixed.device)

    def _targets_from_baseline(self, data: TrainingSet) -> Path:
        """Fixed targets from ``labels.options.smprl_from``, computed once into the run folder."""
        if not self.options.smprl_from:
            raise ConfigError(
                "smprl needs fixed targets: set labels.options.smprl_from to a trained baseline "
                "run (or labels.options.smprl_targets to an .npz written by write_smprl_targets)"
            )
        if data.run_dir is None:
            raise ConfigError(
                "smprl with labels.options.smprl_from needs a run folder for its targets"
            )
        target = data.run_dir / TARGETS_FILE
        if is_main_process() and not target.is_file():
            gen = [r for r in data.records if r.generated]
            q = baseline_targets(self.options.smprl_from, gen, data.device)
            write_smprl_targets(target, [r.path for r in gen], q)
        barrier()
        return target

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        if batch.index is None:
            raise ConfigError("smprl needs the batch's training-set indices")
        rows = self.rows[batch.index[mask].to(self.rows.device)]
        if (rows < 0).any():
            raise ConfigError("smprl: a generated image has no fixed target")
        return self.fixed[rows].to(batch.logits.device)


@torch.no_grad()
def compute_smprl_targets(
    model: torch.nn.Module, loader, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Rank targets of every image from a trained baseline (eval mode, no augmentation).

    ``loader`` yields :class:`~genreid.data.dataset.ImageDataset` batches in dataset order.
    """
    was_training = model.training
    model.eval()
    out = []
    for batch in loader:
        x = batch["image"].to(device)
        logits = model.head(model.backbone(x))
        out.append(rank_targets(logits.float()).cpu())
    model.train(was_training)
    return torch.cat(out)


def baseline_targets(
    run: str | Path, records: list[ImageRecord], device: str | torch.device = "cpu"
) -> torch.Tensor:
    """sMpRL targets of ``records`` from the trained baseline run ``run``, at its test size."""
    run = require_run(run, "baseline training run (labels.options.smprl_from)")
    model = load_run_model(run, device=device)
    size = load_section(run / "config.yaml", "data", DataConfig).size
    loader = DataLoader(ImageDataset(records, test_transform(size)), batch_size=128)
    return compute_smprl_targets(model, loader, device)


def write_smprl_targets(path: str | Path, paths: Sequence[str], q: torch.Tensor) -> Path:
    """Save fixed targets as an .npz (``paths`` resolved, ``q`` N x K float32)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        paths=np.asarray([str(Path(p).resolve()) for p in paths], dtype=np.str_),
        q=q.cpu().numpy().astype(np.float32),
    )
    tmp.replace(path)
    return path


def read_smprl_targets(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read what :func:`write_smprl_targets` wrote."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"smprl targets file {p} does not exist")
    with np.load(p, allow_pickle=False) as data:
        return [str(x) for x in data["paths"]], data["q"]
