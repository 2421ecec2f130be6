"""DG-Net speed: seconds per training iteration (forward, one D step, one joint E_a/E_s/G step)
of a shipped DG-Net config on random images, with L_prim/L_fine on (a random teacher of the
same size as E_a's ResNet-18/50 stands in for the trained one; no image decoding).

    python benchmarks/dgnet_speed.py --config dgnet_tiny --threads 1       # CPU, ~1 minute
    python benchmarks/dgnet_speed.py --config dgnet_paper --device cuda     # GPU, AMP (auto)

Prints a line per config, then the figures as JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genreid.core.config import load_config  # noqa: E402
from genreid.engine.fastpath import resolve_precision, use_fused  # noqa: E402
from genreid.engine.tasks.dgnet import DGNetConfig, DGNetSteps, Teacher  # noqa: E402
from genreid.models.reid import ModelConfig, build_model  # noqa: E402


def make_iteration(config: str, device: torch.device, precision: str, K: int, compiled: bool,
                   parts: frozenset[str] = frozenset()):  # fmt: skip
    """One full DG-Net iteration on fixed random images, its steps and config. ``parts`` may
    add channels_last (modules and images) and fused (Adam's fused kernel for G and D)."""
    cfg = load_config(
        DGNetConfig, config, ["model.pretrained=null", f"train.precision={precision}"]
    )
    dtype = resolve_precision(cfg.train.precision, device, "dgnet")
    m = cfg.model
    teacher_arch = "ide_tiny" if m.backbone == "resnet18" else "ide"
    teacher = Teacher(build_model(ModelConfig(arch=teacher_arch), K).to(device), cfg.data.size)
    torch.manual_seed(0)
    steps = DGNetSteps(cfg, K, device, teacher, dtype, load_pretrained=False)
    P, (h, w) = cfg.train.pairs, cfg.data.size
    memory = torch.channels_last if "channels_last" in parts else torch.contiguous_format
    x, xp = (torch.randn(P, 3, h, w, device=device).contiguous(memory_format=memory)
             for _ in range(2))  # fmt: skip
    for k in ("E_a", "E_s", "G", "D"):
        getattr(steps, k).to(memory_format=memory)
    for opt in (steps.opt_ea, steps.opt_gen, steps.opt_dis):  # as the loop sets it
        use_fused(opt, "fused" in parts)
    y = torch.arange(P, device=device) % K
    start = cfg.loss.start + cfg.loss.warmup  # time the full objective, as after the warm-up

    if compiled or "compile_gen" in parts:  # compile_gen: all but D (its gradient penalty)
        for k in ("E_a", "E_s", "G", "D") if compiled else ("E_a", "E_s", "G"):
            getattr(steps, k).compile()

    def one(i: int) -> None:
        steps.iteration(x, xp, y, start + i)

    return one, steps, cfg, dtype


def interleaved(args: argparse.Namespace, device: torch.device) -> dict:
    """Fast-path variants of one config (fp32, bf16, channels_last, compile, fused and their
    ``+`` combinations), timed round by
    round in this process: seconds per iteration and the ratio of fp32's time to theirs."""
    names = ["fp32", *[n for n in args.variants.split(",") if n != "fp32"]]
    runs, unsupported = {}, {}
    for n in names:
        parts = set(n.split("+"))
        one, *_ = make_iteration(args.config, device, "bf16" if "bf16" in parts else "fp32",
                                 args.classes, "compile" in parts, frozenset(parts))  # fmt: skip
        try:
            for i in range(args.warmup if args.warmup is not None else 1):
                one(i)
        except RuntimeError as exc:  # compile and D's gradient penalty (double backward)
            unsupported[n] = str(exc).splitlines()[0]
            continue
        runs[n] = one
    rounds = []
    for _ in range(args.rounds):
        row = {}
        for n, one in runs.items():
            t0 = time.perf_counter()
            for i in range(args.iters or 3):
                one(i)
            row[n] = (time.perf_counter() - t0) / (args.iters or 3)
        rounds.append(row)
    timed = {
        n: {
            "seconds_per_iter": round(statistics.median(r[n] for r in rounds), 4),
            "speedup": round(statistics.median(r["fp32"] / r[n] for r in rounds), 3),
        }
        for n in runs
    }
    return {**timed, **{n: {"unsupported": why} for n, why in unsupported.items()}}


def bench(config: str, device: torch.device, iters: int, warmup: int, amp: str, K: int) -> dict:
    one, steps, cfg, dtype = make_iteration(config, device, amp, K, False)
    P, (h, w) = cfg.train.pairs, cfg.data.size
    for i in range(warmup):
        one(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for i in range(iters):
        one(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    sec = (time.perf_counter() - t0) / iters
    params = {
        k: sum(p.numel() for p in getattr(steps, k).parameters()) for k in ("E_a", "E_s", "G", "D")
    }
    out = {
        "config": config,
        "size": f"{h}x{w}",
        "pairs": P,
        "amp": str(dtype).removeprefix("torch.") if dtype else "off",
        "seconds_per_iter": round(sec, 4),
        "iters_per_s": round(1 / sec, 3),
        "images_per_s": round(2 * P / sec, 1),
        "hours_for_config": round(cfg.iterations * sec / 3600, 2),
        "params_M": {k: round(v / 1e6, 2) for k, v in params.items()},
    }
    if device.type == "cuda":
        out["max_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="dgnet_tiny", help="comma-separated DG-Net configs")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--iters", type=int, default=None, help="timed iterations")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--amp", default="auto", help="train.precision: auto, fp32, bf16, fp16")
    ap.add_argument("--variants", default="", help="interleaved: e.g. fp32,bf16,compile")
    ap.add_argument("--rounds", type=int, default=3, help="--variants: interleaved rounds")
    ap.add_argument("--classes", type=int, default=751, help="training identities (Market: 751)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = torch.device("cpu" if name == "auto" else name)
    gpu = device.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
    if args.variants:
        res = interleaved(args, device)
        print(f"{args.config}, threads {torch.get_num_threads()}, {args.rounds} rounds:")
        for n, r in res.items():
            if "unsupported" in r:
                print(f"  {n:<16}unsupported: {r['unsupported']}")
                continue
            print(f"  {n:<16}{r['seconds_per_iter']:>8.3f} s/iteration  x{r['speedup']:.3f}")
        print(json.dumps({"variants": res, "load_avg_1m": round(os.getloadavg()[0], 2)}))
        return
    rows = []
    for config in args.config.split(","):
        iters = args.iters or (20 if gpu else 5)
        warmup = args.warmup if args.warmup is not None else (3 if gpu else 1)
        row = bench(config, device, iters, warmup, args.amp, args.classes)
        rows.append(row)
        print(
            f"{config}: {row['size']}, {row['pairs']} pairs, amp {row['amp']}: "
            f"{row['seconds_per_iter']} s/iteration ({row['iters_per_s']} it/s, "
            f"{row['images_per_s']} real images/s); the config's iterations take "
            f"{row['hours_for_config']} h"
        )
    env = {
        "device": torch.cuda.get_device_name(device) if gpu else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
    }
    print(json.dumps({"env": env, "dgnet": rows}))


if __name__ == "__main__":
    main()
