"""Sampling trained GANs: images + ``manifest.csv`` for re-ID training, and sample grids.

Every image has its own noise vector drawn from a seed derived from (seed, index), so the same
``--seed`` gives byte-identical files, and any one image can be regenerated from its row. The
grid beside real images shows files that were written, in rows named ``real`` / ``generated``;
sampling a run that has not finished training warns (:class:`SamplingWarning`) with the epoch
its checkpoint holds.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from genreid.core.checkpoint import load_checkpoint, module_state
from genreid.core.config import load_config
from genreid.core.errors import ConfigError, GenreidError
from genreid.core.runs import read_results
from genreid.data.errors import DatasetError
from genreid.data.generated import MANIFEST, write_manifest
from genreid.data.io import read_image
from genreid.data.transforms import GanTransform
from genreid.engine.tasks.gan import GanConfig
from genreid.models.gan import build_gan
from genreid.viz.grids import labelled_grid, to_pil

JPEG_QUALITY = 95


class SamplingError(GenreidError, ValueError):
    """A run folder or output folder that cannot be used for sampling."""


class SamplingWarning(UserWarning):
    """Sampling went ahead with something the user should know (an unfinished run)."""


def per_image_seed(seed: int, index: int) -> int:
    """A 63-bit seed for image ``index`` of a sampling run seeded with ``seed``."""
    digest = hashlib.sha256(f"genreid-gan:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def noise_for(g: nn.Module, seeds: Sequence[int]) -> torch.Tensor:
    """One noise vector per seed, each from its own generator (batch-independent)."""
    return torch.cat([g.sample_z(1, torch.Generator().manual_seed(s)) for s in seeds])


@dataclass
class TrainedGenerator:
    """A generator loaded from a run (or a cluster sub-run) and where it came from."""

    generator: nn.Module
    config: GanConfig
    run: Path
    cluster: int | None = None
    epoch: int = 0  # epochs the checkpoint completed
    batch_in_epoch: int = 0  # batches into the next epoch (a mid-epoch checkpoint)


def run_config(run: str | Path) -> GanConfig:
    """The resolved config a run was trained with (RUN/config.yaml)."""
    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise SamplingError(
            f"expected a GAN run folder with config.yaml at {run}, found none. Train one with "
            "`genreid gan train --config configs/gan/dcgan_tiny.yaml --out RUN`."
        )
    try:
        return load_config(GanConfig, path)
    except ConfigError as exc:
        raise SamplingError(f"{path} is not a GAN config ({exc})") from None


def load_generator(run: str | Path, device: str | torch.device = "cpu") -> TrainedGenerator:
    """The generator of RUN/checkpoints/last.pt in eval mode (batch-independent outputs): its
    weights' moving average when the run kept one (``train.ema``)."""
    run = Path(run)
    cfg = run_config(run)
    ckpt_path = run / "checkpoints" / "last.pt"
    if not ckpt_path.is_file():
        raise SamplingError(
            f"expected a checkpoint at {ckpt_path}, found none: the run has not finished an "
            "epoch yet. Train longer or resume it with `genreid gan train --out RUN --resume`."
        )
    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    g, _ = build_gan(cfg.model, cfg.data.size)
    # the EMA generator when the run kept one (train.ema), else the trained G
    g.load_state_dict(module_state(ckpt, "G_ema" if "G_ema" in ckpt.get("modules", {}) else "G"))
    cluster = ckpt.get("meta", ckpt).get("cluster")
    loop = ckpt.get("loop", {})
    return TrainedGenerator(
        g.to(device).eval(),
        cfg,
        run,
        None if cluster is None else int(cluster),
        int(loop.get("epoch", cfg.train.epochs)),
        int(loop.get("batch_in_epoch", 0)),
    )


def unfinished(gen: TrainedGenerator) -> str | None:
    """Why ``gen`` is not a finished run's generator (status or epochs short), or None."""
    res = read_results(gen.run) or {}
    status, epochs = res.get("status"), gen.config.train.epochs
    if status == "done" and gen.epoch >= epochs:
        return None
    if gen.batch_in_epoch:
        where = f"during epoch {gen.epoch + 1} of {epochs} ({gen.batch_in_epoch} batches in)"
    else:
        where = f"after epoch {gen.epoch} of {epochs}"
    if status:
        state = f"results.json says status {status!r}"
        reason = res.get("reason") or (
            f"train.max_iters={gen.config.train.max_iters}" if gen.config.train.max_iters else ""
        )
        state += f" ({reason})" if reason else ""
    else:
        state = "it has no results.json: still training, or killed"
    return (
        f"{gen.run} has not finished training ({state}): it stopped {where}, and the images "
        f"come from that checkpoint. Finish it with `genreid gan train --out {gen.run} --resume`."
    )


def generators_of(run: str | Path, device: str | torch.device = "cpu") -> list[TrainedGenerator]:
    """One generator for a plain run, or one per ``cluster_<c>/`` sub-run (sorted by cluster)."""
    run = Path(run)
    if not run.is_dir():
        raise SamplingError(f"run folder {run} does not exist; pass the --out of `gan train`.")
    subs = sorted(
        (p for p in run.glob("cluster_*") if p.is_dir() and p.name[8:].isdigit()),
        key=lambda p: int(p.name[8:]),
    )
    if subs:
        gens = [load_generator(p, device) for p in subs]
        for p, gen in zip(subs, gens, strict=True):
            gen.cluster = int(p.name[8:])
        return gens
    return [load_generator(run, device)]


def split_evenly(num: int, parts: int) -> list[int]:
    """``num`` split into ``parts`` counts differing by at most one (earlier parts larger)."""
    base, extra = divmod(num, parts)
    return [base + (i < extra) for i in range(parts)]


@torch.no_grad()
def generate(
    gen: TrainedGenerator, indices: Sequence[int], seed: int, batch_size: int = 64
) -> torch.Tensor:
    """Images (in [-1, 1], on the CPU) for global image indices under ``seed``."""
    g = gen.generator
    device = next(g.parameters()).device
    out = []
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        z = noise_for(g, [per_image_seed(seed, i) for i in chunk]).to(device)
        out.append(g(z).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def sample_to_folder(
    run: str | Path,
    num: int,
    out: str | Path,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    batch_size: int = 64,
    grid: str | Path | None = None,
    device: str = "cpu",
) -> Path:
    """Write ``num`` JPEGs and ``manifest.csv`` (path, cluster, seed) into ``out``."""
    if num < 1:
        raise SamplingError(f"--num: expected at least 1 image, got {num}")
    out = Path(out)
    if (out / MANIFEST).exists():
        raise SamplingError(
            f"{out} already holds generated images ({MANIFEST}); choose a new --out folder "
            "or delete that one."
        )
    gens = generators_of(run, device)
    for gen in gens:
        note = unfinished(gen)
        if note:
            warnings.warn(note, SamplingWarning, stacklevel=2)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    written: list[list[Path]] = []
    counts = split_evenly(num, len(gens))
    index = 0
    for gen, count in zip(gens, counts, strict=True):
        indices = list(range(index, index + count))
        index += count
        written.append([])
        for start in range(0, count, batch_size):
            chunk = indices[start : start + batch_size]
            images = generate(gen, chunk, seed, batch_size)
            for i, img in zip(chunk, images, strict=True):
                name = f"{i:06d}.jpg" if gen.cluster is None else f"c{gen.cluster}_{i:06d}.jpg"
                to_pil(img, size).save(out / name, quality=JPEG_QUALITY)
                written[-1].append(out / name)
                rows.append(
                    {
                        "path": name,
                        "cluster": gen.cluster,
                        "seed": per_image_seed(seed, i),
                    }
                )
    manifest = write_manifest(out, rows)
    if grid is not None:
        comparison_grid(gens, written, grid, seed=seed, size=size)
    return manifest


def training_images(run: str | Path) -> list[str]:
    """The image paths a run trained on (RUN/train_images.txt)."""
    path = Path(run) / "train_images.txt"
    if not path.is_file():
        return []
    return [line for line in path.read_text().splitlines() if line.strip()]


def _real_images(paths: list[str], count: int, seed: int, size: tuple[int, int]) -> torch.Tensor:
    if not paths:
        return torch.empty(0, 3, *size)
    g = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(paths), generator=g)[:count].tolist()
    tf = GanTransform(size, flip=False)
    out = []
    for i in sorted(chosen):
        try:
            out.append(tf(read_image(paths[i])))
        except DatasetError:
            continue  # a moved or deleted training image: the grid shows fewer reals
    return torch.stack(out) if out else torch.empty(0, 3, *size)


def grid_rows(
    gens: list[TrainedGenerator],
    samples: Sequence[Sequence[Path]],
    seed: int = 0,
    size: tuple[int, int] | None = None,
    cols: int = 8,
) -> list[tuple[str, list[Image.Image]]]:
    """Named rows of the comparison grid: per generator a row ``real`` of its training images,
    then rows ``generated`` of the first files it wrote (``samples``, one list per generator);
    a per-cluster run's names end with `` c<cluster>``."""
    rows: list[tuple[str, list[Image.Image]]] = []
    fake_rows = 1 if len(gens) > 1 else 2
    for gen, files in zip(gens, samples, strict=True):
        h, w = size or gen.config.data.size
        tag = "" if gen.cluster is None else f" c{gen.cluster}"
        reals = _real_images(training_images(gen.run), cols, seed, (h, w))
        if len(reals):
            rows.append((f"real{tag}", [to_pil(img) for img in reals]))
        fakes = []
        for f in list(files)[: cols * fake_rows]:
            with Image.open(f) as img:
                fakes.append(img.convert("RGB"))
        for start in range(0, len(fakes), cols):
            rows.append((f"generated{tag}", fakes[start : start + cols]))
    return rows


def comparison_grid(
    gens: list[TrainedGenerator],
    samples: Sequence[Sequence[Path]],
    path: str | Path,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    cols: int = 8,
) -> Path:
    """Write the PNG of :func:`grid_rows`: real training images above the written samples."""
    rows = grid_rows(gens, samples, seed, size, cols)
    h, w = size or gens[0].config.data.size
    sheet, _ = labelled_grid(rows, cols, (int(h), int(w)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
