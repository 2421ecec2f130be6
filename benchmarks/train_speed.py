"""Re-ID training speed (images/s) of the tiny and paper recipes, on CPU or the GPU.

Times the full training step of ``genreid.engine.trainer`` (forward under the recipe's AMP
setting, label strategy, soft cross-entropy, backward, SGD step with the 10x head group) on
random images at each recipe's training size, 751 classes (Market-1501), strategy ``lsro``
with half of each batch generated. Data loading is not included (see --help).

    python benchmarks/train_speed.py                     # CPU: few iterations, small batches
    python benchmarks/train_speed.py --iters 20 --warmup 3 --paper-batch 64   # on a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch

from genreid.core.config import load_config
from genreid.engine.loop import amp_dtype
from genreid.engine.optim import build_optimizer
from genreid.engine.tasks.reid import ReIDTrainConfig
from genreid.labels import LabelBatch, build_strategy, soft_cross_entropy
from genreid.models import build_model

K = 751


def bench(recipe: str, batch: int, iters: int, warmup: int, device: torch.device) -> dict:
    """Images/s of ``iters`` timed training steps after ``warmup`` untimed ones."""
    cfg = load_config(ReIDTrainConfig, f"train/{recipe}")
    torch.manual_seed(0)
    model = build_model(cfg.model, K, load_pretrained=False).to(device).train()
    strategy = build_strategy("lsro", K, feat_dim=model.feat_dim).to(device)
    opt = build_optimizer(model, cfg.optim)
    dtype = amp_dtype(cfg.train.amp, device)
    h, w = cfg.data.height, cfg.data.width
    x = torch.randn(batch, 3, h, w, device=device)
    labels = torch.randint(0, K, (batch,), device=device)
    gen = torch.arange(batch, device=device) % 2 == 1
    labels[gen] = -1
    clusters = torch.full((batch,), -1, device=device)

    def step() -> None:
        ctx = torch.autocast("cuda", dtype=dtype) if dtype else contextlib.nullcontext()
        with ctx:
            logits, feats = model(x)
        b = LabelBatch(logits.float(), feats.float(), labels, gen, clusters, 0)
        t = strategy(b)
        loss = soft_cross_entropy(b.logits, t.q, t.weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    return {
        "recipe": recipe,
        "arch": model.spec.arch,
        "backbone": model.spec.backbone,
        "width": model.spec.width,
        "size": f"{h}x{w}",
        "batch": batch,
        "iters": iters,
        "amp": {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "off"),
        "seconds": round(secs, 3),
        "images_per_s": round(batch * iters / secs, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--tiny-batch", type=int, default=32)
    ap.add_argument(
        "--paper-batch",
        type=int,
        default=0,
        help="batch of the paper recipes (default: the config's on GPU, 8 on CPU)",
    )
    ap.add_argument("--recipes", default="tiny,ide_paper,bottleneck_paper")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(dev)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows = []
    for recipe in args.recipes.split(","):
        if recipe == "tiny":
            batch = args.tiny_batch
        else:
            cfg_batch = load_config(ReIDTrainConfig, f"train/{recipe}").train.batch_size
            batch = args.paper_batch or (cfg_batch if device.type == "cuda" else 8)
        rows.append(bench(recipe, batch, args.iters, args.warmup, device))
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (f"cpu x{torch.get_num_threads()} threads")
    )
    print(f"device: {name}, torch {torch.__version__}")
    print(f"{'recipe':<18}{'model':<26}{'size':<9}{'batch':>6}{'amp':>7}{'img/s':>10}")
    for r in rows:
        model = f"{r['arch']}/{r['backbone']}@{r['width']}"
        print(
            f"{r['recipe']:<18}{model:<26}{r['size']:<9}{r['batch']:>6}{r['amp']:>7}"
            f"{r['images_per_s']:>10.1f}"
        )
    print(json.dumps({"device": name, "torch": torch.__version__, "results": rows}))


if __name__ == "__main__":
    main()
