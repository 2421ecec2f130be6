"""ONNX export: the feature `genreid export` writes, run by onnxruntime against PyTorch on the
CPU — largest absolute feature difference and images/s of both on the same batch (flip
averaging included, as `genreid extract` computes it), for the tiny and paper-scale networks.

    python benchmarks/onnx_speed.py                  # every thread count in --threads
    python benchmarks/onnx_speed.py --threads 1 --archs ide_tiny

Untrained weights (speed and exactness do not depend on training); the reference is PyTorch
in the same process, same batch and thread count. Prints a table, then JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genreid.eval.deploy.encoder import FeatureGraph, ort_forward, ort_session  # noqa: E402
from genreid.eval.deploy.export import images_per_s, to_onnx  # noqa: E402
from genreid.models.reid import ModelConfig, build_model  # noqa: E402

SIZES = {"ide_tiny": (128, 64), "bottleneck_tiny": (128, 64), "ide": (256, 128)}


def bench(arch: str, batch: int, threads: int, repeats: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, pretrained=None), 100, load_pretrained=False)
    graph = FeatureGraph(model, flip=True).eval()
    h, w = SIZES[arch]
    x = torch.randn(batch, 3, h, w)
    proto, exporter = to_onnx(graph, x[:2])
    forward = ort_forward(ort_session(proto.SerializeToString(), threads))
    with torch.no_grad():
        diff = float((forward(x) - graph(x)).abs().max())
    pt, ort = images_per_s(graph, x, repeats), images_per_s(forward, x, repeats)
    return {
        "arch": arch, "size": f"{h}x{w}", "batch": batch, "threads": threads,
        "exporter": exporter, "max_abs_diff": diff, "torch_images_per_s": round(pt, 1),
        "onnxruntime_images_per_s": round(ort, 1), "speedup": round(ort / pt, 2),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=["ide_tiny", "ide"], choices=sorted(SIZES))
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, load "
          f"{' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")  # fmt: skip
    rows = []
    for arch in args.archs:
        batch = 64 if arch.endswith("_tiny") else 16
        for threads in args.threads:
            r = bench(arch, batch, threads, args.repeats)
            rows.append(r)
            pt, ort = r["torch_images_per_s"], r["onnxruntime_images_per_s"]
            print(
                f"{arch:16s} {r['size']:8s} batch {batch:3d}, {threads} thread(s): max |diff| "
                f"{r['max_abs_diff']:.2e}; PyTorch {pt:8.1f} images/s, onnxruntime {ort:8.1f} "
                f"({r['speedup']:.2f}x)"
            )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
