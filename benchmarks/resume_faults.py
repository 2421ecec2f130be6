"""Kill a training at many moments, resume it, and count the runs that end bitwise equal to
an uninterrupted one.

The run: ``genreid train --config tiny`` on synthetic data with 30 identities (``genreid data
synth --ids 30 --cams 6 --seed 1``), 30 epochs, seed 1, evaluation every 4 epochs. Each
victim is killed with SIGKILL either from outside at a random moment of its run, or from
inside at a crash point (``GENREID_CRASH_AT``): in the middle of a checkpoint write (written,
not yet renamed), just after a checkpoint was renamed into place, right after an evaluation,
or half-way through a metrics.jsonl line. It is then resumed (``--resume`` when it holds a
checkpoint, a fresh start otherwise) until it finishes, and its final weights, per-epoch
losses and final metrics are compared with the uninterrupted run's.

    python benchmarks/resume_faults.py                 # 24 kills (~10 min on 2 cores)
    python benchmarks/resume_faults.py --kills 8 --epochs 12
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CODE = ROOT  # --code points it at another checkout (e.g. an older genreid)


def digest(run: Path) -> str:
    """sha256 over the final weights of every module of a run."""
    ckpt = torch.load(run / "checkpoints/last.pt", map_location="cpu", weights_only=True)
    modules = ckpt.get("modules") or {"model": ckpt["model"]}  # genreid 0.1.0 checkpoints
    h = hashlib.sha256()
    for name in sorted(modules):
        for key in sorted(modules[name]):
            h.update(f"{name}.{key}".encode())
            h.update(modules[name][key].contiguous().numpy().tobytes())
    return h.hexdigest()


def losses(run: Path) -> list[float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    return [r["loss"] for r in rows if "loss" in r and "epoch" in r]


def final(run: Path) -> dict:
    res = json.loads((run / "results.json").read_text())
    return {k: v for k, v in res.get("final", {}).items()}


def command(args: argparse.Namespace, out: Path, resume: bool) -> list[str]:
    if resume:
        return [*args.genreid, "train", "--out", str(out), "--resume"]
    return [
        *args.genreid, "train", "--config", args.config, f"data.root={args.root}",
        f"train.epochs={args.epochs}", "train.eval_every=4", "seed=1", "train.progress=false",
        f"train.threads={args.threads}", "--out", str(out),
    ]  # fmt: skip


def run(cmd: list[str], crash: str | None = None, kill_after: float | None = None) -> int:
    env = {**os.environ, "PYTHONPATH": str(CODE)}
    env.pop("GENREID_CRASH_AT", None)
    if crash:
        env["GENREID_CRASH_AT"] = crash
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is None:
        _, err = p.communicate()
    else:
        try:
            _, err = p.communicate(timeout=kill_after)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            _, err = p.communicate()
    if p.returncode not in (0, -signal.SIGKILL):
        raise SystemExit(f"{cmd}: exit {p.returncode}\n{err.decode()[-2000:]}")
    return p.returncode


def done(out: Path, epochs: int) -> bool:
    """A finished run (genreid 0.1.0 wrote no ``status``, only ``epochs_completed``)."""
    if not (out / "results.json").is_file():
        return False
    res = json.loads((out / "results.json").read_text())
    return res.get("status", "done") == "done" and res.get("epochs_completed") == epochs


def finish(args: argparse.Namespace, out: Path) -> int:
    """Resume (or restart) until the run completes; returns how many calls it took."""
    calls = 0
    while not done(out, args.epochs):
        calls += 1
        run(command(args, out, resume=(out / "checkpoints/last.pt").is_file()))
        if calls > 3:
            raise SystemExit(f"{out} does not finish")
    return calls


def victims(args: argparse.Namespace, seconds: float, rng: random.Random) -> list[dict]:
    """The kills: crash points at random occurrences, and random moments from outside."""
    e = args.epochs
    plan = (
        []
        if args.random_only
        else [
            {"crash": f"checkpoint_write:{rng.randint(1, e)}"},
            {"crash": f"checkpoint_write:{rng.randint(1, e)}"},
            {"crash": f"checkpoint_write:{e}"},  # the last one
            {"crash": f"checkpoint_renamed:{rng.randint(1, e - 1)}"},
            {"crash": f"checkpoint_renamed:{e}"},  # finished, results.json not yet written
            {"crash": f"evaluation:{rng.randint(1, max(1, e // 4))}"},
            {"crash": f"evaluation:{max(1, e // 4)}"},
            {"crash": f"metrics_write:{rng.randint(1, e)}"},
            {"crash": "metrics_write:1"},
        ]
    )
    while len(plan) < args.kills:
        plan.append({"kill_after": round(rng.uniform(0.5, seconds), 2)})
    return plan[: args.kills]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0, help="which moments are chosen")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--root", type=Path, default=None, help="synthetic data (30 identities)")
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here")
    ap.add_argument("--code", type=Path, default=ROOT, help="the genreid checkout to run")
    ap.add_argument("--random-only", action="store_true", help="no crash points (old code)")
    args = ap.parse_args()
    global CODE
    CODE = args.code
    args.genreid = [sys.executable, "-m", "genreid.cli"]
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        base = args.out or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        if args.root is None:
            args.root = base / "synth"
            run([*args.genreid, "data", "synth", "--out", str(args.root), "--ids", "30",
                 "--cams", "6", "--seed", "1"])  # fmt: skip
        ref = base / "reference"
        t0 = time.perf_counter()
        run(command(args, ref, resume=False))
        seconds = time.perf_counter() - t0
        want = (digest(ref), losses(ref), final(ref))
        rows = []
        for k, victim in enumerate(victims(args, seconds, rng)):
            out = base / f"victim_{k:02d}"
            code = run(command(args, out, resume=False), **victim)
            killed = code == -signal.SIGKILL
            calls = finish(args, out)
            got = (digest(out), losses(out), final(out))
            rows.append({
                **victim, "killed": killed, "resumes": calls,
                "weights_equal": got[0] == want[0], "losses_equal": got[1] == want[1],
                "final_equal": got[2] == want[2],
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    equal = sum(r["weights_equal"] and r["losses_equal"] and r["final_equal"] for r in rows)
    killed = sum(r["killed"] for r in rows)
    print(
        f"{killed} of {len(rows)} runs killed (the rest finished before their moment); "
        f"{equal} of {len(rows)} ended bitwise equal to the uninterrupted run (weights, "
        f"per-epoch losses, final metrics); uninterrupted run {seconds:.1f} s"
    )
    summary = {"benchmark": "resume_faults", "kills": len(rows), "killed": killed, "equal": equal}
    print(json.dumps({**summary, "reference_seconds": round(seconds, 1), "rows": rows}))


if __name__ == "__main__":
    main()
