"""Re-ID training speed (images/s): the model step alone, and end to end through the loop.

Model step (default): forward under the recipe's AMP setting, label strategy, soft
cross-entropy, backward, optimizer step, on random images at each recipe's training size, 751
classes (Market-1501), strategy ``lsro`` with half of each batch generated; no data loading.

End to end (``--end-to-end``): a real ``genreid`` training run of the tiny recipe through the
one loop, with JPEG decoding and augmentation, on a synthetic dataset rendered once (``genreid
data synth --ids 1200 --cams 6``: 10,170 training images of 600 identities); evaluation is
off. It prints the loop's images/s (data waiting plus compute, epochs after the first) and the
share of that time spent waiting for data. Then, because one process can run 10% faster or
slower than the next on this machine, the ratio to the model step alone is measured in one
process, interleaved: rounds of ``--round-steps`` training steps fed by the loop's data
pipeline, each followed by as many steps of the same task on batches already in memory.

    python benchmarks/train_speed.py                     # CPU: few iterations, small batches
    python benchmarks/train_speed.py --iters 20 --warmup 3 --paper-batch 64   # on a GPU
    python benchmarks/train_speed.py --end-to-end        # tiny recipe, real data, CPU
    python benchmarks/train_speed.py --variants fp32,bf16,channels_last,compile --iters 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from genreid.core.config import load_config
from genreid.data.datasets import load_dataset
from genreid.engine.fastpath import autocast, cpu_has_native_bf16, resolve_precision, use_fused
from genreid.engine.loop import Loop, StepInfo
from genreid.engine.optim import build_optimizer
from genreid.engine.tasks.reid import ReIDTask, ReIDTrainConfig, train
from genreid.labels import LabelBatch, build_strategy, soft_cross_entropy
from genreid.models import build_model

K = 751
FAST_PARTS = {"fp32", "bf16", "channels_last", "compile", "foreach", "fused"}


def make_step(
    recipe: str,
    batch: int,
    device: torch.device,
    classes: int = K,
    strategy: str = "lsro",
    overrides: list[str] | None = None,
    variant: str = "recipe",
) -> tuple[Callable[[], None], dict]:
    """One training step of the recipe on fixed random images, and what it is. ``variant``:
    ``recipe`` (the config's own precision), or ``+``-joined fast-path parts: fp32, bf16,
    channels_last, compile, foreach (SGD's multi-tensor update), fused (SGD's fused kernel)."""
    cfg = load_config(ReIDTrainConfig, f"train/{recipe}", overrides)
    parts = set(variant.split("+"))
    torch.manual_seed(0)
    model = build_model(cfg.model, classes, load_pretrained=False).to(device).train()
    labels_strategy = build_strategy(strategy, classes, feat_dim=model.feat_dim).to(device)
    optim = cfg.optim
    opt = build_optimizer(model, optim)
    if "foreach" in parts:
        for group in opt.param_groups:
            group["foreach"] = True
    use_fused(opt, "fused" in parts)
    mode = "bf16" if "bf16" in parts else "fp32" if parts & FAST_PARTS else cfg.train.precision
    dtype = resolve_precision(mode, device, "reid")
    memory = torch.channels_last if "channels_last" in parts else torch.contiguous_format
    model = model.to(memory_format=memory)
    if "compile" in parts:
        model.compile()
    h, w = cfg.data.height, cfg.data.width
    x = torch.randn(batch, 3, h, w, device=device).contiguous(memory_format=memory)
    labels = torch.randint(0, classes, (batch,), device=device)
    gen = torch.arange(batch, device=device) % 2 == 1
    if labels_strategy.uses_generated:
        labels[gen] = -1
    else:
        gen[:] = False
    clusters = torch.full((batch,), -1, device=device)

    def step() -> None:
        with autocast(device, dtype):
            logits, feats = model(x)
        b = LabelBatch(logits.float(), feats.float(), labels, gen, clusters, 0)
        t = labels_strategy(b)
        loss = soft_cross_entropy(b.logits, t.q, t.weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    info = {
        "recipe": recipe, "arch": model.spec.arch, "backbone": model.spec.backbone,
        "width": model.spec.width, "size": f"{h}x{w}", "batch": batch,
        "amp": {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "off"),
    }  # fmt: skip
    return step, info


def timed(step: Callable[[], None], iters: int, device: torch.device) -> float:
    """Seconds of ``iters`` calls of ``step``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def bench(
    recipe: str,
    batch: int,
    iters: int,
    warmup: int,
    device: torch.device,
    classes: int = K,
    strategy: str = "lsro",
    overrides: list[str] | None = None,
) -> dict:
    """Images/s of ``iters`` timed training steps after ``warmup`` untimed ones."""
    step, info = make_step(recipe, batch, device, classes, strategy, overrides)
    for _ in range(warmup):
        step()
    secs = timed(step, iters, device)
    return {**info, "iters": iters, "seconds": round(secs, 3),
            "images_per_s": round(batch * iters / secs, 1)}  # fmt: skip


def variants(args: argparse.Namespace, device: torch.device) -> dict:
    """Every fast-path variant of one recipe's step, interleaved round by round in this
    process (the machine's noise between processes is about 20 %): images/s per variant and
    its ratio to fp32 within each round, median over rounds."""
    names = args.variants.split(",")
    if names[0] != "fp32":
        names = ["fp32", *[n for n in names if n != "fp32"]]
    steps = {}
    for name in names:
        step, _ = make_step(args.variant_recipe, args.tiny_batch, device, variant=name)
        for _ in range(args.warmup):
            step()  # compile happens here
        steps[name] = step
    rounds: list[dict[str, float]] = []
    for _ in range(args.rounds):
        rounds.append({n: args.tiny_batch * args.iters / timed(s, args.iters, device)
                       for n, s in steps.items()})  # fmt: skip
    out = {}
    for n in names:
        rates = [r[n] for r in rounds]
        ratios = [r[n] / r["fp32"] for r in rounds]
        out[n] = {
            "images_per_s": round(statistics.median(rates), 1),
            "ratio_to_fp32": round(statistics.median(ratios), 3),
            "ratio_min": round(min(ratios), 3),
            "ratio_max": round(max(ratios), 3),
        }
    return out


def end_to_end(args: argparse.Namespace, device: torch.device) -> dict:
    """The tiny recipe through the loop on real JPEGs vs its model step alone."""
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = Path(tmp) / "synth"
            cmd = [sys.executable, "-m", "genreid.cli", "data", "synth", "--out", str(root),
                   "--ids", "1200", "--cams", "6", "--seed", "0"]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True)
        ds = load_dataset("market1501", root)
        classes = ds.num_train_pids
        overrides = [
            f"data.root={root}", f"train.epochs={args.epochs}", "train.eval_every=0",
            f"train.device={device.type}", "train.progress=false", *args.set,
        ]  # fmt: skip
        cfg = load_config(ReIDTrainConfig, "train/tiny", overrides)
        if args.threads:
            cfg.train.threads = args.threads
        t0 = time.perf_counter()
        results = train(cfg, Path(tmp) / "run")
        wall = time.perf_counter() - t0
        rows = [json.loads(x) for x in (Path(tmp) / "run/metrics.jsonl").read_text().splitlines()]
        rounds = interleaved(cfg, Path(tmp) / "interleaved", args.rounds, args.round_steps)
    epochs = [r for r in rows if r.get("epoch_end")]
    timed = epochs[1:] or epochs  # the first epoch includes warm-up
    images = sum(r["images"] for r in timed)
    data_s = sum(r["data_seconds"] for r in timed)
    busy = sum(r["seconds"] for r in timed)
    e2e = images / busy
    ratios = sorted(r["end_to_end"] / r["step_only"] for r in rounds)
    return {
        "train_images": results["train_images"],
        "identities": classes,
        "epochs": len(epochs),
        "timed_epochs": len(timed),
        "workers": cfg.data.workers,
        "cache": cfg.data.cache,
        "threads": torch.get_num_threads(),
        "end_to_end_images_per_s": round(e2e, 1),
        "data_share": round(data_s / busy, 4),
        "wall_seconds_incl_cache_and_checkpoints": round(wall, 1),
        "interleaved_rounds": rounds,
        "ratio_median": round(ratios[len(ratios) // 2], 3),
        "ratio_min": round(ratios[0], 3),
        "ratio_max": round(ratios[-1], 3),
    }


def interleaved(cfg: ReIDTrainConfig, out: Path, rounds: int, steps: int) -> list[dict]:
    """Images/s of ``steps`` loop steps with data loading, then without, ``rounds`` times."""
    task = ReIDTask(cfg)
    loop = Loop(task, out)
    loop._start()  # the loop's set-up (threads, allocator, data, modules), no epochs
    n_batch = cfg.train.batch_size
    out_rows = []
    for r in range(rounds):
        it = iter(task.batches(r, 0))
        t0 = time.perf_counter()
        held = []
        for k in range(steps):
            batch = next(it)
            task.step(batch, StepInfo(r, k, steps, k))
            if len(held) < 20:
                held.append(batch)
        e2e = n_batch * steps / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for k in range(steps):
            task.step(held[k % len(held)], StepInfo(r, k, steps, k))
        alone = n_batch * steps / (time.perf_counter() - t0)
        out_rows.append({"end_to_end": round(e2e, 1), "step_only": round(alone, 1)})
    loop.jobs.leave()
    return out_rows


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
    ap.add_argument("--recipes", default="tiny,ide_paper,bottleneck_released,bottleneck_paper")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--end-to-end", action="store_true", help="the tiny recipe on real data")
    ap.add_argument(
        "--variants",
        default="",
        help="fast-path variants of --variant-recipe's step, interleaved: e.g. fp32,bf16,"
        "channels_last,bf16+channels_last,compile,bf16+compile,foreach",
    )
    ap.add_argument("--variant-recipe", default="tiny", help="the recipe of --variants")
    ap.add_argument("--epochs", type=int, default=3, help="end to end: epochs (first untimed)")
    ap.add_argument("--rounds", type=int, default=5, help="end to end: interleaved rounds")
    ap.add_argument("--round-steps", type=int, default=60, help="end to end: steps per round")
    ap.add_argument("--root", type=Path, default=None, help="end to end: a synthetic dataset")
    ap.add_argument("--set", nargs="*", default=[], help="end to end: key=value overrides")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(dev)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu x{torch.get_num_threads()} threads"
    )
    env = {"device": name, "torch": torch.__version__, "load_avg_1m": os.getloadavg()[0]}
    if args.variants:
        env["cpu_native_bf16"] = cpu_has_native_bf16()
        res = variants(args, device)
        print(f"device: {name}, torch {torch.__version__}, native bf16: {env['cpu_native_bf16']}")
        print(f"{args.variant_recipe}, batch {args.tiny_batch}, {args.rounds} interleaved rounds "
              f"of {args.iters} steps (median; ratio range)")  # fmt: skip
        for n, r in res.items():
            print(f"  {n:<26}{r['images_per_s']:>9.1f} img/s  x{r['ratio_to_fp32']:.3f} "
                  f"({r['ratio_min']:.3f}-{r['ratio_max']:.3f})")  # fmt: skip
        print(json.dumps({**env, "variants": res}))
        return
    if args.end_to_end:
        r = end_to_end(args, device)
        print(f"device: {name}, torch {torch.__version__}")
        print(
            f"tiny recipe end to end ({r['train_images']} images, {r['timed_epochs']} timed "
            f"epochs, workers {r['workers']}, cache {r['cache']}): "
            f"{r['end_to_end_images_per_s']} images/s, {100 * r['data_share']:.1f}% waiting for "
            "data"
        )
        for k, row in enumerate(r["interleaved_rounds"]):
            print(f"  round {k + 1}: end to end {row['end_to_end']} images/s, model step "
                  f"alone {row['step_only']} images/s")  # fmt: skip
        print(
            f"ratio end to end / model step alone: median {r['ratio_median']} (range "
            f"{r['ratio_min']}-{r['ratio_max']}, {len(r['interleaved_rounds'])} rounds)"
        )
        print(json.dumps({**env, "end_to_end": r}))
        return
    rows = []
    for recipe in args.recipes.split(","):
        if recipe == "tiny":
            batch = args.tiny_batch
        else:
            cfg_batch = load_config(ReIDTrainConfig, f"train/{recipe}").train.batch_size
            batch = args.paper_batch or (cfg_batch if device.type == "cuda" else 8)
        rows.append(bench(recipe, batch, args.iters, args.warmup, device))
    print(f"device: {name}, torch {torch.__version__}")
    print(f"{'recipe':<18}{'model':<26}{'size':<9}{'batch':>6}{'amp':>7}{'img/s':>10}")
    for r in rows:
        model = f"{r['arch']}/{r['backbone']}@{r['width']}"
        print(
            f"{r['recipe']:<18}{model:<26}{r['size']:<9}{r['batch']:>6}{r['amp']:>7}"
            f"{r['images_per_s']:>10.1f}"
        )
    print(json.dumps({**env, "results": rows}))


if __name__ == "__main__":
    main()
