"""Speed of the synthetic dataset renderer: images/s with 1 worker and with all cores.

Usage: python benchmarks/synth_speed.py [--ids 100] [--cams 6] [--workers 1,0]
Prints a table, then the same figures as JSON on the last line. The target is 200 images/s
on 2 cores. CPU seconds (own plus worker processes) are reported too: on a busy machine
wall-clock rates understate the renderer, while images per CPU-second do not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genreid.data.synthetic import render_dataset  # noqa: E402
from genreid.data.synthetic.writer import default_workers  # noqa: E402

TARGET = 200.0  # images/s on 2 cores


def _cpu_seconds() -> float:
    """User+system CPU time of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(ids: int, cams: int, seed: int, size: tuple[int, int], workers: int) -> dict:
    """Render once into a temporary folder; wall-clock and CPU figures."""
    with tempfile.TemporaryDirectory(prefix="synth_speed_") as tmp:
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        stats = render_dataset(tmp, ids, cams, seed, size, workers=workers, progress=False)
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    n = stats["images"]
    return {
        "workers": stats["workers"],
        "images": n,
        "seconds": round(wall, 3),
        "images_per_second": round(n / wall, 1),
        "vs_target": round(n / wall / TARGET, 2),
        "cpu_seconds": round(cpu, 3),
        "images_per_cpu_second": round(n / cpu, 1) if cpu > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ids", type=int, default=100)
    ap.add_argument("--cams", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, nargs=2, default=(128, 64), metavar=("H", "W"))
    ap.add_argument("--workers", default="1,0", help="comma-separated; 0 = all cores")
    args = ap.parse_args(argv)
    rows = [
        run(args.ids, args.cams, args.seed, tuple(args.size), int(w))
        for w in args.workers.split(",")
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(
        f"synthetic renderer: {args.ids} ids x {args.cams} cams, size {args.size[0]}x"
        f"{args.size[1]}, {default_workers()} cores, load average {load}"
    )
    head = ("workers", "images", "seconds", "img/s", "vs 200", "cpu s", "img/cpu-s")
    print("  ".join(f"{h:>9}" for h in head))
    for r in rows:
        vals = (
            r["workers"],
            r["images"],
            r["seconds"],
            r["images_per_second"],
            r["vs_target"],
            r["cpu_seconds"],
            r["images_per_cpu_second"],
        )
        print("  ".join(f"{v:>9}" for v in vals))
    summary = {
        "target_images_per_second": TARGET,
        "cores": default_workers(),
        "load_average": load,
        "ids": args.ids,
        "cams": args.cams,
        "runs": rows,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
