"""Two trainings at once on the same cores: summed images/s as a ratio of one solo run.

Each run is a training process (the tiny recipe's model step on random 128x64 images, or a
real ``genreid train`` run on synthetic data with ``--real``) under one OpenMP setting:
torch's default threads with the OpenMP runtime's own spin-waiting (``omp_default``),
``OMP_WAIT_POLICY=PASSIVE``, a short ``GOMP_SPINCOUNT``, and ``threads=cores/J`` (what
genreid gives each of J parallel jobs). The solo reference is always the plain default (all
cores, no environment), measured in the same run; every setting is repeated.

    python benchmarks/shared_cores.py                  # model step, every setting, 3 repeats
    python benchmarks/shared_cores.py --real --settings omp_default,threads_per_job
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEP = r"""
import sys, time, torch
from genreid.core.cpu import steady_allocator
steady_allocator()  # as genreid's training loop does
from genreid.core.config import load_config
from genreid.engine.optim import build_optimizer
from genreid.engine.tasks.reid import ReIDTrainConfig
from genreid.labels import LabelBatch, build_strategy, soft_cross_entropy
from genreid.models import build_model
threads, seconds = int(sys.argv[1]), float(sys.argv[2])
if threads:
    torch.set_num_threads(threads)
cfg = load_config(ReIDTrainConfig, "tiny")
K, B = 60, cfg.train.batch_size
model = build_model(cfg.model, K, load_pretrained=False).train()
strategy = build_strategy("lsro", K, feat_dim=model.feat_dim)
opt = build_optimizer(model, cfg.optim)
x = torch.randn(B, 3, cfg.data.height, cfg.data.width)
labels = torch.randint(0, K, (B,))
gen = torch.arange(B) % 4 == 0
labels[gen] = -1
clusters = torch.full((B,), -1)
def step():
    logits, f = model(x)
    b = LabelBatch(logits, f, labels, gen, clusters, 0)
    t = strategy(b)
    loss = soft_cross_entropy(b.logits, t.q, t.weight)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
for _ in range(3):
    step()
t0, n = time.perf_counter(), 0
while time.perf_counter() - t0 < seconds:
    step()
    n += 1
print(B * n / (time.perf_counter() - t0))
"""

# name -> (extra environment, threads per job: 0 = torch's default, -1 = cores / jobs).
# 300000 spins is libgomp's own default when OMP_WAIT_POLICY is unset (torch's behaviour
# without any setting); it is set explicitly so that genreid's CLI default does not apply.
SETTINGS = {
    "omp_default": ({"GOMP_SPINCOUNT": "300000"}, 0),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, 0),
    "threads_per_job": ({"GOMP_SPINCOUNT": "300000"}, -1),
}


def setting(name: str) -> tuple[dict[str, str], int]:
    """A named setting, or ``spin_N``: GOMP_SPINCOUNT=N with torch's default threads."""
    if name.startswith("spin_"):
        return {"GOMP_SPINCOUNT": name[5:]}, 0
    return SETTINGS[name]


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT)
    return env


def _step_cmd(threads: int, seconds: float) -> list[str]:
    return [sys.executable, "-c", STEP, str(threads), str(seconds)]


def _real_cmd(threads: int, seconds: float, root: Path, out: Path) -> list[str]:
    epochs = max(2, int(seconds // 4))
    cmd = [
        sys.executable, "-m", "genreid.cli", "train", "--config", "tiny", f"data.root={root}",
        f"train.epochs={epochs}", "train.eval_every=0", "train.progress=false",
        "--out", str(out),
    ]  # fmt: skip
    if threads:
        cmd.append(f"train.threads={threads}")
    return cmd


def _real_rate(out: Path) -> float:
    """Images/s of the training epochs after the first (warm-up) of a finished run."""
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("epoch_end")][1:]
    return sum(r["images"] for r in rows) / sum(r["seconds"] for r in rows)


def run_jobs(jobs: int, name: str, args: argparse.Namespace, tmp: Path) -> list[float]:
    """Images/s of each of ``jobs`` processes started together under setting ``name``."""
    extra, threads = setting(name)
    cores = len(os.sched_getaffinity(0))
    if threads < 0:
        threads = max(1, cores // jobs)
    procs, outs = [], []
    for j in range(jobs):
        out = tmp / f"{name}_{jobs}_{j}_{time.monotonic_ns()}"
        cmd = (
            _real_cmd(threads, args.seconds, args.root, out)
            if args.real
            else _step_cmd(threads, args.seconds)
        )
        procs.append(
            subprocess.Popen(cmd, env=_env(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
        outs.append(out)
    rates = []
    for p, out in zip(procs, outs, strict=True):
        stdout, stderr = p.communicate()
        if p.returncode:
            raise SystemExit(stderr.decode()[-2000:])
        rates.append(_real_rate(out) if args.real else float(stdout.decode().split()[-1]))
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="omp_default,passive,spin_1000,threads_per_job")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=12.0, help="timed seconds per process")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--real", action="store_true", help="real `genreid train` runs")
    ap.add_argument("--root", type=Path, default=None, help="synthetic data for --real")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.real and args.root is None:
            args.root = tmp / "synth"
            subprocess.run(
                [sys.executable, "-m", "genreid.cli", "data", "synth", "--out", str(args.root),
                 "--ids", "120", "--cams", "6", "--seed", "0"],
                check=True, env=_env({}), capture_output=True,
            )  # fmt: skip
        solo = [run_jobs(1, "omp_default", args, tmp)[0] for _ in range(args.repeats)]
        ref = statistics.mean(solo)
        rows = [{"setting": "solo (omp_default)", "jobs": 1, "per_job": solo, "sum": ref}]
        for name in args.settings.split(","):
            if name != "omp_default":
                per_rep = [run_jobs(1, name, args, tmp)[0] for _ in range(args.repeats)]
                rows.append({"setting": f"solo ({name})", "jobs": 1, "per_job": per_rep,
                             "sum": statistics.mean(per_rep)})  # fmt: skip
            sums, each = [], []
            for _ in range(args.repeats):
                rates = run_jobs(args.jobs, name, args, tmp)
                sums.append(sum(rates))
                each += rates
            sd = statistics.pstdev(sums)
            rows.append({"setting": name, "jobs": args.jobs, "per_job": each,
                         "sum": statistics.mean(sums), "sum_sd": sd})  # fmt: skip
    cores = len(os.sched_getaffinity(0))
    kind = "genreid train (tiny, synthetic)" if args.real else "tiny model step"
    print(f"{kind}, {cores} cores, {args.repeats} repeats of {args.seconds:.0f} s; "
          f"ratio = summed images/s / solo default ({ref:.1f} images/s)")  # fmt: skip
    print(f"{'setting':<28}{'jobs':>5}{'img/s each (mean)':>19}{'sum':>9}{'ratio':>8}")
    for r in rows:
        each = statistics.mean(r["per_job"])
        print(f"{r['setting']:<28}{r['jobs']:>5}{each:>19.1f}{r['sum']:>9.1f}"
              f"{r['sum'] / ref:>8.2f}")  # fmt: skip
    print(json.dumps({"benchmark": "shared_cores", "kind": kind, "cores": cores,
                      "solo_reference": ref, "rows": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
