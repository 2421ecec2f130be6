"""Peer training speed (images/s end to end): genreid's loop against torchreid's engine.

Both sides train the tiny recipe's model (``ide_tiny``: ResNet-18 at width 16, random
weights) on the same synthetic Market-1501-layout images (rendered once by ``genreid data
synth``, or an existing folder with ``--root``), with the recipe's batch size, image size and
optimizer (Adam, lr 0.002, weight decay 5e-4, betas 0.9/0.999, cosine schedule), fp32, plain
cross-entropy (the recipe's ``baseline`` labels: no smoothing), and no evaluation:

- genreid: ``Loop.run`` of the re-ID task, with its own data pipeline (images decoded and
  resized once into memory when they fit, ``data.cache``; zero-pad 8, random crop, flip).
- torchreid (pip package ``torchreid``, KaiyangZhou's deep-person-reid): one
  ``ImageSoftmaxEngine.train`` epoch at a time, on an ``ImageDataManager`` over the same
  records (a registered ``ImageDataset``), with its transforms (``random_flip``,
  ``random_crop``; ``--peer-aug genreid`` swaps in torchvision's exact equivalent of genreid's
  augmentation) and its ``build_optimizer``/``build_lr_scheduler``.
- plain (``--peers plain``): the loop torchreid's tutorial writes out by hand, with
  torchvision's equivalent of genreid's augmentation; no torchreid needed.

Epochs alternate in one process (this machine's speed varies about 20 % between processes):
each genreid epoch is followed by one epoch of every peer, run from the task's end-of-epoch
hook, outside genreid's timed span. An epoch is timed from its start (the sampler's order and
the loader's workers included) to its last step; the first epoch of each side is warm-up.
The report gives medians over the other epochs and the genreid/peer ratio per epoch pair.

    python benchmarks/peer_speed.py                              # 1200 ids, 5 epochs, 2 threads
    python benchmarks/peer_speed.py --epochs 2 --ids 100         # a quick check
    python benchmarks/peer_speed.py --root /tmp/synth --peer-aug genreid --peers torchreid,plain

The peer is installed apart from the venv (torchreid 0.2.5 declares no dependencies; the two
it imports for drawing and downloading only, cv2 and gdown, are stood in for when absent):

    pip install --no-deps --target /work/scratch/peer/lib torchreid
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from genreid.core.config import load_config
from genreid.data.datasets import load_dataset
from genreid.data.records import ReIDDataset
from genreid.data.synthetic.writer import render_dataset
from genreid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from genreid.engine.loop import Loop
from genreid.engine.tasks.reid import ReIDTask, ReIDTrainConfig
from genreid.models import build_model

PEER_PATH = Path("/work/scratch/peer/lib")
PEER_DATASET = "genreid_synthetic"
PEERS = ("torchreid", "plain")


@dataclass
class Peer:
    """A training loop under test: ``run_epoch(epoch)`` trains one epoch, returns its images."""

    name: str
    run_epoch: Callable[[int], int]
    info: dict[str, Any] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


def rate(images: int, seconds: float) -> dict[str, float]:
    return {"images": images, "seconds": round(seconds, 3),
            "images_per_s": round(images / max(seconds, 1e-9), 1)}  # fmt: skip


def timed_epoch(peer: Peer, epoch: int) -> dict[str, float]:
    t0 = time.perf_counter()
    images = peer.run_epoch(epoch)
    return rate(images, time.perf_counter() - t0)


class PairedTask(ReIDTask):
    """The re-ID task, timed per epoch; after each of its epochs (outside the timed span) every
    peer trains one epoch. No evaluation."""

    def __init__(self, cfg: ReIDTrainConfig, peers: list[Peer], rows: list[dict]) -> None:
        super().__init__(cfg)
        self.peers, self.rows = peers, rows
        self._t0 = 0.0

    def batches(self, epoch: int, start: int) -> DataLoader:
        self._t0 = time.perf_counter()  # the loop's start of the epoch
        return super().batches(epoch, start)

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        seconds = time.perf_counter() - self._t0  # right after the epoch's last step
        s = self.loop.stats
        own = s.images / max(s.data_seconds + s.compute_seconds, 1e-9)
        row = {"epoch": epoch + 1, "genreid": rate(s.images, seconds)}
        row["genreid"]["loop_reported_images_per_s"] = round(own, 1)
        for peer in self.peers:
            row[peer.name] = timed_epoch(peer, epoch)
        self.rows.append(row)
        return super().end_epoch(epoch)

    def evaluate(self) -> dict[str, float]:
        return {}


class LogitsOnly(nn.Module):
    """A genreid re-ID model behaving as torchreid's softmax models do: logits in training,
    features in evaluation."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out[0] if self.training else out


class FolderImages(Dataset):
    """(path, label) pairs read with PIL, as a hand-written tutorial dataset does."""

    def __init__(self, items: list[tuple[str, int]], transform: Callable) -> None:
        self.items, self.transform = items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[i]
        return self.transform(Image.open(path).convert("RGB")), label


def train_items(ds: ReIDDataset) -> list[tuple[str, int]]:
    """The training images genreid trains on, with its labels 0..K-1."""
    labels = ds.train_label_map()
    return [(r.path, labels[r.pid]) for r in ds.train if not r.generated and r.pid in labels]


def genreid_like_transform(cfg: ReIDTrainConfig) -> T.Compose:
    """torchvision's transforms that genreid's training pipeline reproduces bitwise: bicubic
    resize, zero padding, random crop, flip, to tensor, ImageNet normalisation, erasing."""
    d = cfg.data
    steps: list[Callable] = [T.Resize(list(d.resize) or list(d.size), T.InterpolationMode.BICUBIC)]
    if d.pad > 0 or (d.resize and tuple(d.resize) != d.size):
        steps += [T.Pad(d.pad), T.RandomCrop(d.size)]
    if d.flip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if d.erasing_p > 0:
        a = d.erasing_min_aspect
        steps.append(T.RandomErasing(d.erasing_p, tuple(d.erasing_area), (a, 1 / a), value=0))
    return T.Compose(steps)


def peer_model(cfg: ReIDTrainConfig, classes: int, device: torch.device) -> LogitsOnly:
    """The recipe's model with the same random weights genreid's side starts from."""
    torch.manual_seed(cfg.seed)
    return LogitsOnly(build_model(cfg.model, classes, load_pretrained=False)).to(device)


def check_peer_recipe(cfg: ReIDTrainConfig) -> None:
    """The optimizer settings the peers reproduce; others would silently differ."""
    o = cfg.optim
    if o.head_lr_mult != 1.0 or o.schedule not in ("cosine", "constant"):
        sys.exit(
            "peer_speed: the peers reproduce optim.head_lr_mult 1 and a cosine or constant "
            f"schedule; got head_lr_mult {o.head_lr_mult}, schedule {o.schedule}"
        )


def stand_in(name: str) -> types.ModuleType:
    """An empty module for an optional import; any use of it says so."""
    mod = types.ModuleType(name)

    def missing(attr: str) -> Any:
        raise AttributeError(f"{name} is not installed (peer_speed stood in for it): {attr}")

    mod.__getattr__ = missing  # type: ignore[method-assign]
    return mod


def import_torchreid(path: Path) -> tuple[types.ModuleType | None, list[str]]:
    """torchreid from ``path`` (pip's ``--target`` folder) or the environment, and the modules
    stood in for: cv2 (only for drawing ranked lists) and gdown (only for downloads) when they
    are not installed. None when it does not import."""
    if path.is_dir() and str(path) not in sys.path:
        sys.path.insert(0, str(path))
    stood = [n for n in ("cv2", "gdown") if importlib.util.find_spec(n) is None]
    for name in stood:
        sys.modules[name] = stand_in(name)
    try:
        with warnings.catch_warnings():  # its evaluation falls back to Python without Cython
            warnings.filterwarnings("ignore", message="Cython evaluation")
            import torchreid  # lazy: an optional peer, found on --peer-path
    except Exception as exc:  # any import failure means: no torchreid peer
        print(
            f"peer_speed: torchreid does not import from {path} ({type(exc).__name__}: {exc}); "
            f"install it with `pip install --no-deps --target {path} torchreid`, or run with "
            "--peers plain",
            file=sys.stderr,
        )
        return None, stood
    return torchreid, stood


def register_dataset(tr: types.ModuleType) -> None:
    """A torchreid ImageDataset over a genreid synthetic folder, parsed by genreid's own
    Market-1501 parser so that both sides train on the same records and labels."""

    class GenreidSynthetic(tr.data.ImageDataset):
        def __init__(self, root: str = "", **kwargs: Any) -> None:
            ds = load_dataset("market1501", root)
            train = [(p, label, 0) for p, label in train_items(ds)]
            query = [(r.path, r.pid, r.camid) for r in ds.query]
            gallery = [(r.path, r.pid, r.camid) for r in ds.gallery]
            super().__init__(train, query, gallery, **kwargs)

    tr.data.register_image_dataset(PEER_DATASET, GenreidSynthetic)


def torchreid_peer(
    tr: types.ModuleType, cfg: ReIDTrainConfig, args: argparse.Namespace, out: Path
) -> Peer:
    """torchreid's ImageSoftmaxEngine with its data manager, transforms and builders."""
    from torch.utils.tensorboard import SummaryWriter  # lazy: only the torchreid peer logs

    cuda = args.device.type == "cuda"
    register_dataset(tr)
    aug = ["random_flip", "random_crop"]
    with contextlib.redirect_stdout(io.StringIO()):  # its dataset and transform summaries
        dm = tr.data.ImageDataManager(
            root=cfg.data.root, sources=PEER_DATASET, height=cfg.data.height,
            width=cfg.data.width, transforms=aug, use_gpu=cuda,
            batch_size_train=cfg.train.batch_size, workers=cfg.data.workers,
            train_sampler="RandomSampler",
        )  # fmt: skip
    if args.peer_aug == "genreid":
        dm.train_loader.dataset.transform = genreid_like_transform(cfg)
    model = peer_model(cfg, dm.num_train_pids, args.device)
    o = cfg.optim
    opt = tr.optim.build_optimizer(
        model, optim=o.name, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum,
        sgd_nesterov=o.nesterov, adam_beta1=0.9, adam_beta2=0.999,  # torch's (genreid's)
    )  # fmt: skip
    sched = None
    if o.schedule == "cosine":
        sched = tr.optim.build_lr_scheduler(opt, lr_scheduler="cosine", max_epoch=args.epochs)
    engine = tr.engine.ImageSoftmaxEngine(
        dm, model, opt, scheduler=sched, use_gpu=cuda, label_smooth=False
    )
    engine.writer = SummaryWriter(log_dir=str(out / "torchreid"))  # as engine.run opens it
    engine.max_epoch = args.epochs
    batches = len(dm.train_loader)

    def run_epoch(epoch: int) -> int:
        engine.epoch = epoch
        engine.train(print_freq=10**9)  # its epoch: loading, steps, meters, TensorBoard, lr
        return batches * cfg.train.batch_size  # drop_last

    transforms = "genreid's via torchvision" if args.peer_aug == "genreid" else "+".join(aug)
    info = {
        "version": tr.__version__,
        "deep_person_reid_version": getattr(tr.reid, "__version__", None),
        "path": str(Path(tr.__file__).parent),
        "loop": "torchreid.engine.ImageSoftmaxEngine.train",
        "data": "torchreid.data.ImageDataManager (RandomSampler, drop_last), PIL per image",
        "transforms": transforms,
        "optimizer": f"torchreid.optim.build_optimizer({o.name})",
        "schedule": f"torchreid.optim.build_lr_scheduler({o.schedule}), per epoch",
        "workers": cfg.data.workers,
    }
    return Peer("torchreid", run_epoch, info, engine.writer.close)


def plain_peer(cfg: ReIDTrainConfig, ds: ReIDDataset, args: argparse.Namespace) -> Peer:
    """The training loop torchreid's tutorial spells out, in plain PyTorch."""
    dev = args.device
    loader = DataLoader(
        FolderImages(train_items(ds), genreid_like_transform(cfg)),
        batch_size=cfg.train.batch_size, shuffle=True, num_workers=cfg.data.workers,
        drop_last=True, pin_memory=dev.type == "cuda",
    )  # fmt: skip
    model = peer_model(cfg, ds.num_train_pids, dev)
    o = cfg.optim
    if o.name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum,
                              nesterov=o.nesterov, weight_decay=o.weight_decay)  # fmt: skip
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    criterion = nn.CrossEntropyLoss()

    def run_epoch(epoch: int) -> int:
        model.train()
        images, total = 0, 0.0
        for x, y in loader:
            x, y = x.to(dev), y.to(dev)
            loss = criterion(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            images += x.shape[0]
        if o.schedule == "cosine":
            sched.step()
        return images

    info = {
        "loop": "plain PyTorch (DataLoader, model, CrossEntropyLoss, optimizer.step per batch)",
        "data": "torch DataLoader (shuffle, drop_last) over PIL images",
        "transforms": "genreid's via torchvision",
        "optimizer": f"torch.optim.{type(opt).__name__}",
        "schedule": f"CosineAnnealingLR per epoch ({o.schedule})",
        "workers": cfg.data.workers,
    }
    return Peer("plain", run_epoch, info)


def dataset_root(args: argparse.Namespace, tmp: Path, size: tuple[int, int]) -> Path:
    """``--root`` when it holds a synthetic render, else a new render there (or in ``tmp``)."""
    root = args.root or tmp / "synth"
    if not (root / "dataset.json").is_file():
        t0 = time.perf_counter()
        render_dataset(root, args.ids, args.cams, 0, size, workers=args.threads, progress=False)
        print(f"rendered {args.ids} identities x {args.cams} cameras into {root} in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    return root


def recipe(args: argparse.Namespace, root: Path) -> ReIDTrainConfig:
    """The tiny recipe with random weights, fp32, no evaluation, the benchmark's threads."""
    overrides = [
        f"data.root={root}", f"data.workers={args.workers}", f"data.cache={args.cache}",
        "model.pretrained=null", f"train.epochs={args.epochs}", "train.eval_every=0",
        f"train.device={args.device.type}", f"train.threads={args.threads}",
        "train.precision=fp32", "train.compile=false", "train.progress=false", *args.set,
    ]  # fmt: skip
    return load_config(ReIDTrainConfig, "train/tiny", overrides)


def build_peers(
    args: argparse.Namespace, cfg: ReIDTrainConfig, ds: ReIDDataset, out: Path
) -> tuple[list[Peer], list[str]]:
    """The peers asked for (and the modules stood in for torchreid's sake)."""
    peers, stood = [], []
    for name in args.peers:
        if name == "torchreid":
            tr, stood = import_torchreid(args.peer_path)
            if tr is None:
                sys.exit(2)
            peers.append(torchreid_peer(tr, cfg, args, out))
        else:
            peers.append(plain_peer(cfg, ds, args))
    return peers, stood


def summary(rows: list[dict], names: list[str]) -> dict[str, Any]:
    """Medians over the epochs after the first, and genreid/peer per epoch pair."""
    timed = rows[1:] or rows
    out: dict[str, Any] = {"timed_epochs": len(timed)}
    for n in ["genreid", *names]:
        out[n] = round(statistics.median(r[n]["images_per_s"] for r in timed), 1)
    for n in names:
        ratios = sorted(r["genreid"]["images_per_s"] / r[n]["images_per_s"] for r in timed)
        out[f"genreid_over_{n}"] = {
            "median": round(statistics.median(ratios), 3),
            "min": round(ratios[0], 3),
            "max": round(ratios[-1], 3),
        }
    return out


def report(env: dict, data: dict, peers: list[Peer], rows: list[dict], res: dict) -> None:
    names = [p.name for p in peers]
    print(f"device: {env['device']}, torch {env['torch']}, threads {env['threads']}, "
          f"workers {env['workers']} (each side), load average {env['load_avg_1m_start']:.2f} "
          f"-> {env['load_avg_1m_end']:.2f}")  # fmt: skip
    print(f"data: {data['train_images']} training images of {data['identities']} identities, "
          f"{data['size']}, batch {data['batch']}")  # fmt: skip
    print(f"genreid: {env['genreid']['loop']}, cache {env['genreid']['cache']}")
    for p in peers:
        version = f" {p.info['version']}" if "version" in p.info else ""
        print(f"{p.name}{version}: {p.info['loop']}, transforms {p.info['transforms']}")
    print("epoch " + "".join(f"{n + ' img/s':>18}" for n in ["genreid", *names]))
    for r in rows:
        tag = " (warm-up)" if r is rows[0] and len(rows) > 1 else ""
        cells = "".join(f"{r[n]['images_per_s']:>18.1f}" for n in ["genreid", *names])
        print(f"{r['epoch']:>5}{cells}{tag}")
    for n in names:
        q = res[f"genreid_over_{n}"]
        print(
            f"median of {res['timed_epochs']} timed epochs: genreid {res['genreid']} img/s, "
            f"{n} {res[n]} img/s, genreid/{n} {q['median']} (range {q['min']}-{q['max']})"
        )


def environment(
    args: argparse.Namespace, cfg: ReIDTrainConfig, peers: list[Peer], load_start: float
) -> dict[str, Any]:
    """Where and how it ran: machine, threads, versions, load, what each side does."""
    dev = args.device
    o = cfg.optim
    return {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "workers": cfg.data.workers,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "load_avg_1m_start": load_start,
        "load_avg_1m_end": os.getloadavg()[0],
        "genreid": {
            "loop": "genreid.engine.loop.Loop (re-ID task, tiny recipe)",
            "model": f"{cfg.model.arch} (random weights)",
            "cache": cfg.data.cache,
            "transforms": "bicubic resize, pad, random crop, flip (uint8), finished per batch",
            "optimizer": f"{o.name} (lr {o.lr}, weight decay {o.weight_decay})",
            "schedule": f"{o.schedule}, per step",
            "precision": "fp32",
            "workers": cfg.data.workers,
        },
        "peers": {p.name: p.info for p in peers},
        "one_process": "genreid's allocator settings (mallopt) apply to the peers too",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5, help="epochs per side (the first untimed)")
    ap.add_argument("--ids", type=int, default=1200, help="identities to render (half train)")
    ap.add_argument("--cams", type=int, default=6, help="cameras to render")
    ap.add_argument("--root", type=Path, default=None, help="a synthetic dataset to reuse")
    ap.add_argument("--threads", type=int, default=2, help="torch threads, both sides")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers, both sides")
    ap.add_argument("--cache", default="auto", help="genreid's data.cache: auto, on or off")
    ap.add_argument("--peers", default="torchreid", help="comma-separated: torchreid, plain")
    ap.add_argument("--peer-path", type=Path, default=PEER_PATH, help="torchreid's folder")
    ap.add_argument(
        "--peer-aug",
        choices=("torchreid", "genreid"),
        default="torchreid",
        help="torchreid's transforms (random_flip, random_crop) or genreid's via torchvision",
    )
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        help="recipe overrides (key=value); the peers follow size, batch, workers and optim",
    )
    args = ap.parse_args()
    args.peers = [p for p in args.peers.split(",") if p]
    if not args.peers or set(args.peers) - set(PEERS):
        ap.error(f"--peers: choose from {', '.join(PEERS)}")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        size = load_config(ReIDTrainConfig, "train/tiny").data.size
        root = dataset_root(args, tmp, size)
        cfg = recipe(args, root)
        check_peer_recipe(cfg)
        ds = load_dataset("market1501", root)
        peers, stood = build_peers(args, cfg, ds, tmp)
        rows: list[dict] = []
        task = PairedTask(cfg, peers, rows)
        results = Loop(task, tmp / "genreid").run()
        cached = task.train_set.prepared is not None
        for peer in peers:
            peer.close()
    res = summary(rows, [p.name for p in peers])
    env = environment(args, cfg, peers, load_start)
    env["genreid"]["cache"] += f" ({'on' if cached else 'off'})"
    env["stood_in_for_torchreid"] = stood
    data = {
        "root": str(args.root) if args.root else f"rendered: {args.ids} ids x {args.cams} cams",
        "train_images": results["train_images"],
        "identities": ds.num_train_pids,
        "size": f"{cfg.data.height}x{cfg.data.width}",
        "batch": cfg.train.batch_size,
    }
    report(env, data, peers, rows, res)
    print(json.dumps({**env, "data": data, "epochs": rows, "summary": res}))


if __name__ == "__main__":
    main()
