"""GAN speed: training and sampling images/s for DCGAN and WGAN-GP, and the Frechet distance.

Times discriminator and generator updates separately on random batches (no image decoding)
and combines them into one iteration of the paper schedule (DCGAN: 1 D step + 2 G steps;
WGAN-GP: 5 critic steps + 1 G step), so training images/s = real images per iteration / time.
Sampling is the generator in eval mode, then also JPEG encoding. Sizes: ``tiny`` (128x64,
d=16, the tiny configs) and ``paper`` (128x128, d=64). The Frechet distance is timed with the
eigh-based formula genreid uses and with scipy's ``sqrtm`` (pytorch-fid's formula).

    python benchmarks/gan_speed.py                  # CPU: small batches, ~1 minute on 2 cores
    python benchmarks/gan_speed.py --threads 1      # CPU on a busy machine (no oversubscription)
    python benchmarks/gan_speed.py --device cuda    # GPU: batch 64, more steps, FID dim 2048
    python benchmarks/gan_speed.py --variants fp32,bf16,channels_last,compile --presets tiny

Prints a table, then the same figures as JSON on the last line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genreid.core.config import load_config  # noqa: E402
from genreid.engine.fastpath import resolve_precision, use_fused  # noqa: E402
from genreid.engine.tasks.gan import GanConfig, GanSteps  # noqa: E402
from genreid.eval.generation.gen_metrics import (  # noqa: E402
    feature_stats,
    frechet_distance,
    frechet_distance_sqrtm,
)
from genreid.viz.grids import to_pil  # noqa: E402

PRESETS = {"tiny": ([128, 64], 16), "paper": ([128, 128], 64)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, n: int, warmup: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` (mean over ``n`` after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / n


def bench_gan(arch: str, preset: str, batch: int, steps: int, warmup: int, device) -> dict:
    size, width = PRESETS[preset]
    overrides = [f"data.height={size[0]}", f"data.width={size[1]}", f"model.width={width}"]
    cfg = load_config(GanConfig, None, [f"model.arch={arch}", *overrides])
    torch.manual_seed(0)
    s = GanSteps(cfg, device)
    real = (torch.rand(batch, 3, *size, device=device) * 2 - 1).contiguous()
    t_d = _timed(lambda: s.d_step(real), steps, warmup, device)
    t_g = _timed(lambda: s.g_step(batch), steps, warmup, device)
    n_d, n_g = s.d_steps, s.options.g_steps
    t_iter = n_d * t_d + n_g * t_g
    s.G.eval()
    with torch.no_grad():
        z = s.G.sample_z(batch).to(device)
        t_s = _timed(lambda: s.G(z), steps, warmup, device)
        images = s.G(z).cpu()

    def encode() -> None:
        for img in images:
            to_pil(img).save(io.BytesIO(), format="JPEG", quality=95)

    t_jpeg = _timed(encode, 1, 0, torch.device("cpu"))
    params = sum(p.numel() for p in s.G.parameters()) + sum(p.numel() for p in s.D.parameters())
    return {
        "arch": arch,
        "preset": preset,
        "size": f"{size[0]}x{size[1]}",
        "width": width,
        "batch": batch,
        "steps": steps,
        "params_M": round(params / 1e6, 2),
        "d_step_s": round(t_d, 4),
        "g_step_s": round(t_g, 4),
        "iteration": f"{n_d}D+{n_g}G",
        "train_img_s": round(n_d * batch / t_iter, 1),
        "sample_img_s": round(batch / t_s, 1),
        "sample_jpeg_img_s": round(batch / (t_s + t_jpeg), 1),
    }


def iteration_variants(arch: str, preset: str, batch: int, variants: list[str], rounds: int,
                       device: torch.device) -> dict:  # fmt: skip
    """One training iteration (the schedule's D and G steps) per fast-path variant (fp32,
    bf16 autocast inside the steps as in training, channels_last, compile of G and D, fused
    Adam; ``+``-joined combinations), timed round by round
    in this process: real images/s and the ratio to fp32 within each round (median)."""
    size, width = PRESETS[preset]
    overrides = [f"data.height={size[0]}", f"data.width={size[1]}", f"model.width={width}"]
    names = ["fp32", *[v for v in variants if v != "fp32"]]
    iterations, unsupported = {}, {}
    for name in names:
        parts = set(name.split("+"))
        cfg = load_config(GanConfig, None, [f"model.arch={arch}", *overrides])
        torch.manual_seed(0)
        dtype = resolve_precision("bf16" if "bf16" in parts else "fp32", device, "gan")
        s = GanSteps(cfg, device, amp=dtype)  # bf16: autocast inside the steps, as in training
        for opt in (s.optG, s.optD):  # fused: Adam's one-kernel update, as the loop sets it
            use_fused(opt, "fused" in parts)
        memory = torch.channels_last if "channels_last" in parts else torch.contiguous_format
        s.G.to(memory_format=memory)
        s.D.to(memory_format=memory)
        if "compile" in parts:
            s.G.compile()
            s.D.compile()
        real = (torch.rand(batch, 3, *size, device=device) * 2 - 1).contiguous(memory_format=memory)

        def one(s=s, real=real, n_g=s.options.g_steps) -> None:
            for _ in range(s.d_steps):
                s.d_step(real)
            for _ in range(n_g):
                s.g_step(batch)

        try:
            one()  # warm-up (and compilation)
        except RuntimeError as exc:  # e.g. compile and WGAN-GP's gradient penalty
            unsupported[name] = str(exc).splitlines()[0]
            continue
        iterations[name] = (one, s.d_steps)
    rounds_s = [{n: _timed(f, 1, 0, device) for n, (f, _) in iterations.items()}
                for _ in range(rounds)]  # fmt: skip
    out: dict = {
        n: {
            "train_img_s": round(statistics.median(iterations[n][1] * batch / r[n]
                                                   for r in rounds_s), 1),
            "speedup": round(statistics.median(r["fp32"] / r[n] for r in rounds_s), 3),
        }
        for n in iterations
    }  # fmt: skip
    return {**out, **{n: {"unsupported": why} for n, why in unsupported.items()}}


def bench_frechet(dim: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = 2 * dim
    a = feature_stats(rng.standard_normal((n, dim)))
    mix = np.eye(dim) + 0.5 * rng.standard_normal((dim, dim)) / np.sqrt(dim)
    b = feature_stats(rng.standard_normal((n, dim)) @ mix + 0.1)
    out = {"dim": dim}
    small = feature_stats(rng.standard_normal((8, 4)))
    frechet_distance(*small, *small)  # imports and first-call set-up outside the timings
    frechet_distance_sqrtm(*small, *small)
    for name, fn in (
        ("auto", lambda: frechet_distance(*a, *b)),
        ("eigh", lambda: frechet_distance(*a, *b, method="eigh")),
        ("scipy_sqrtm", lambda: frechet_distance_sqrtm(*a, *b)),
    ):
        t0 = time.perf_counter()
        out[name] = fn()
        out[f"{name}_s"] = round(time.perf_counter() - t0, 3)
    out["abs_diff_vs_sqrtm"] = abs(out["auto"] - out["scipy_sqrtm"])
    out["speedup_auto"] = round(out["scipy_sqrtm_s"] / max(out["auto_s"], 1e-9), 1)
    out["speedup_eigh"] = round(out["scipy_sqrtm_s"] / max(out["eigh_s"], 1e-9), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    ap.add_argument("--fid-dim", type=int, default=None, help="feature dimension (2048 = FID)")
    ap.add_argument("--presets", default="tiny,paper")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--variants", default="", help="interleaved, e.g. fp32,bf16,compile")
    ap.add_argument("--rounds", type=int, default=5, help="--variants: interleaved rounds")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    gpu = device.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
    fid_dim = args.fid_dim or (2048 if gpu else 1024)
    if args.variants:
        out = {}
        for arch in ("dcgan", "wgangp"):
            batch = 64 if gpu else 16
            res = iteration_variants(arch, args.presets.split(",")[0], batch,
                                     args.variants.split(","), args.rounds, device)  # fmt: skip
            out[arch] = res
            for n, r in res.items():
                if "unsupported" in r:
                    print(f"{arch:<8}{n:<24}unsupported: {r['unsupported']}")
                    continue
                print(f"{arch:<8}{n:<24}{r['train_img_s']:>9.1f} img/s  x{r['speedup']:.3f}")
        print(json.dumps({"variants": out, "load_avg_1m": round(os.getloadavg()[0], 2)}))
        return
    rows = []
    for preset in args.presets.split(","):
        # CPU: small batches and few steps keep the whole run near 1-2 minutes on 2 cores
        steps = args.steps or (10 if gpu else {"tiny": 3, "paper": 1}[preset])
        warmup = 3 if gpu else 1
        batch = 64 if gpu else {"tiny": 16, "paper": 4}[preset]
        for arch in ("dcgan", "wgangp"):
            rows.append(bench_gan(arch, preset, batch, steps, warmup, device))
    fr = bench_frechet(fid_dim)
    cols = [
        "arch",
        "preset",
        "size",
        "width",
        "batch",
        "steps",
        "params_M",
        "iteration",
        "d_step_s",
        "g_step_s",
        "train_img_s",
        "sample_img_s",
        "sample_jpeg_img_s",
    ]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[c]).rjust(w) for c, w in zip(cols, widths, strict=True)))
    print(
        f"Frechet distance, {fr['dim']}-d: scipy sqrtm {fr['scipy_sqrtm_s']} s, genreid eigh "
        f"{fr['eigh_s']} s ({fr['speedup_eigh']}x), auto/Cholesky {fr['auto_s']} s "
        f"({fr['speedup_auto']}x); |difference| {fr['abs_diff_vs_sqrtm']:.2e}"
    )
    env = {
        "device": torch.cuda.get_device_name(device) if gpu else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "load_avg_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews CPU rates
        "torch": torch.__version__,
    }
    print(json.dumps({"env": env, "gan": rows, "frechet": fr}))


if __name__ == "__main__":
    main()
