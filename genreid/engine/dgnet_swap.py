"""Images from a trained DG-Net run: the swap grid (paper Fig. 1), the appearance
interpolation strip (Fig. 5) and folders of swapped images with ``manifest.csv`` (scored by
``genreid gan metrics``, usable as ``data.generated`` by every label strategy).

Networks run in eval mode; images are read at the run's size through the test transform, so
the same images and run give the same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from genreid.core.config import load_section
from genreid.core.errors import GenreidError
from genreid.data.config import DataConfig
from genreid.data.dataset import ImageDataset
from genreid.data.datasets import load_dataset
from genreid.data.errors import DatasetError
from genreid.data.generated import MANIFEST, write_manifest
from genreid.data.naming import parse_identities
from genreid.data.records import ImageRecord, Role
from genreid.data.transforms import denormalized, test_transform
from genreid.eval.generation.gen_quality import cross_identity_pairs
from genreid.models.dgnet import DGNetNetworks, load_dgnet_run
from genreid.viz.grids import to_pil
from genreid.viz.swap import interpolation_strip, swap_sheet

JPEG_QUALITY = 95


class SwapError(GenreidError, ValueError):
    """Images or an output folder that cannot be used for swapping."""


@dataclass
class TrainedDGNet:
    """The networks of a run (eval mode), its image size and its data section."""

    nets: DGNetNetworks
    size: tuple[int, int]
    data: DataConfig
    device: torch.device


def open_run(run: str | Path, checkpoint: str = "last.pt", device: str = "cpu") -> TrainedDGNet:
    """Load a ``dgnet`` run's networks for generation."""
    dev = torch.device(device)
    nets, _, _ = load_dgnet_run(run, checkpoint, dev)
    data = load_section(Path(run) / "config.yaml", "data", DataConfig)
    return TrainedDGNet(nets, data.size, data, dev)


def read_images(paths: Sequence[str | Path], size: tuple[int, int]) -> torch.Tensor:
    """N x 3 x H x W normalised images (the test transform at ``size``)."""
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise SwapError(f"image(s) not found: {', '.join(missing[:3])}; give existing files")
    records = [ImageRecord(str(p), -1, -1, Role.TRAIN) for p in paths]
    data = ImageDataset(records, test_transform(size))
    return torch.stack([data[i]["image"] for i in range(len(data))])


def unit(x: torch.Tensor) -> torch.Tensor:
    """Normalised images -> [-1, 1] (what the grid and PIL helpers take)."""
    return denormalized(x.cpu()) * 2 - 1


@torch.no_grad()
def swap_matrix(
    model: TrainedDGNet, appearance: torch.Tensor, structure: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """n x m x 3 x H x W: G(a_i, s_j) for every appearance image i and structure image j."""
    nets, dev = model.nets, model.device
    codes = torch.cat([nets.E_a(a.to(dev)).code for a in appearance.split(batch_size)])
    structs = torch.cat([nets.E_s(s.to(dev)) for s in structure.split(batch_size)])
    n, m = codes.shape[0], structs.shape[0]
    rows = []
    for i in range(n):
        out = [
            nets.G(codes[i : i + 1].expand(s.shape[0], -1, -1, -1), s).cpu()
            for s in structs.split(batch_size)
        ]
        rows.append(torch.cat(out))
    return torch.stack(rows).view(n, m, *rows[0].shape[1:])


def swap_grid(
    model: TrainedDGNet, paths: Sequence[str | Path], out: str | Path, batch_size: int = 64
) -> Path:
    """Fig. 1: row i keeps image i's appearance, column j keeps image j's structure."""
    if len(paths) < 2:
        raise SwapError(f"--images: a swap grid needs 2 or more images, got {len(paths)}")
    x = read_images(paths, model.size)
    swapped = swap_matrix(model, x, x, batch_size)
    labels = [Path(p).stem for p in paths]
    cells = unit(swapped.flatten(0, 1)).unflatten(0, swapped.shape[:2])
    sheet = swap_sheet(unit(x), unit(x), cells, labels, labels)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


@torch.no_grad()
def interpolation(
    model: TrainedDGNet, paths: Sequence[str | Path], out: str | Path, steps: int = 8
) -> Path:
    """Fig. 5: the appearance code moved linearly from image A's to image B's (``steps``
    frames), decoded with A's structure (first row) and B's (second row)."""
    if len(paths) != 2:
        raise SwapError(f"--interpolate takes exactly 2 images (A and B), got {len(paths)}")
    if steps < 2:
        raise SwapError(f"--steps: expected 2 or more frames, got {steps}")
    x = read_images(paths, model.size).to(model.device)
    nets = model.nets
    code, s = nets.E_a(x).code, nets.E_s(x)
    alphas = [t / (steps - 1) for t in range(steps)]
    mixed = torch.cat([(1 - a) * code[:1] + a * code[1:] for a in alphas])
    frames = torch.stack([nets.G(mixed, s[r : r + 1].expand(steps, -1, -1, -1)) for r in (0, 1)])
    strip = interpolation_strip(
        unit(x[0]), unit(x[1]), unit(frames.flatten(0, 1)).unflatten(0, (2, steps)), alphas,
        (Path(paths[0]).stem, Path(paths[1]).stem),
    )  # fmt: skip
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    strip.save(out)
    return out


def training_pairs(
    model: TrainedDGNet, num: int, seed: int
) -> list[tuple[ImageRecord, ImageRecord]]:
    """``num`` (appearance, structure) pairs of training images of different identities,
    drawn with ``seed`` from the run's dataset."""
    d = model.data
    ds = load_dataset(d.dataset, d.require_root(), **d.options)
    label_map = ds.train_label_map()
    real = [r for r in ds.train if not r.generated and r.pid in label_map]
    if len({r.pid for r in real}) < 2:
        raise DatasetError(f"{d.dataset} at {d.root} has fewer than 2 training identities")
    return [(real[i], real[j]) for i, j in cross_identity_pairs([r.pid for r in real], num, seed)]


@torch.no_grad()
def swap_to_folder(
    model: TrainedDGNet,
    out: str | Path,
    paths: Sequence[str | Path] = (),
    num: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> Path:
    """Write swapped images and ``manifest.csv`` (path, appearance, structure and the two
    donors' identities, empty where a file name does not give one) into ``out``: every ordered
    pair of different ``paths``, or ``num`` random cross-identity pairs of the run's training
    images."""
    out = Path(out)
    if (out / MANIFEST).exists():
        raise SwapError(
            f"{out} already holds generated images ({MANIFEST}); choose a new folder or delete "
            "that one."
        )
    if paths:
        if len(paths) < 2:
            raise SwapError("--to-folder with --images needs 2 or more images")
        pairs = [(str(a), str(b)) for a in paths for b in paths if a != b]
        _, found = parse_identities(paths)  # by the datasets' file naming, when they follow one
        pids = {str(p): f[0] for p, f in zip(paths, found, strict=True)} if found else {}
    elif num:
        drawn = training_pairs(model, num, seed)
        pairs = [(a.path, s.path) for a, s in drawn]
        pids = {r.path: r.pid for pair in drawn for r in pair}
    else:
        raise SwapError("--to-folder needs --images A B ... or --num N (training pairs)")
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    nets, dev = model.nets, model.device
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        app = read_images([a for a, _ in chunk], model.size).to(dev)
        struct = read_images([s for _, s in chunk], model.size).to(dev)
        images = unit(nets.G(nets.E_a(app).code, nets.E_s(struct)))
        for k, ((a, s), img) in enumerate(zip(chunk, images, strict=True)):
            name = f"{start + k:06d}.jpg"
            to_pil(img).save(out / name, quality=JPEG_QUALITY)
            rows.append({
                "path": name, "cluster": None, "appearance": a, "structure": s,
                "appearance_pid": pids.get(a), "structure_pid": pids.get(s),
            })  # fmt: skip
    return write_manifest(out, rows)
