"""A re-ID recipe over the 10 splits of VIPeR or PRID2011, several variants side by side.

Each variant ("arm") is a name and key=value overrides of the recipe; every arm trains once per
split (split s also seeds the training), and the table gives rank-1 and mAP as mean +- std over
splits with a paired t-test of each arm against the first. ``--validation 0.2`` holds out a
fifth of each split's *training* identities and evaluates there instead (choose
hyper-parameters this way; the test identities are then never loaded). Runs already finished
are reused, so the command continues where it stopped. Jobs run side by side with cores/jobs
threads each.

    python benchmarks/recipe_splits.py --dataset viper --root ../shared/datasets/VIPeR \\
        --out runs/viper_tiny --arm scratch --arm synthetic model.pretrained=synthetic
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from genreid.core.cpu import threads_per_job
from genreid.eval.ranking.significance import paired_t


def run_dir(args: argparse.Namespace, arm: str, split: int) -> Path:
    return Path(args.out) / arm / f"split_{split}"


def train(args: argparse.Namespace, arm: str, overrides: list[str], split: int) -> dict:
    """One training run through the CLI (skipped when finished); its final evaluation."""
    out = run_dir(args, arm, split)
    results = out / "results.json"
    done = results.is_file() and json.loads(results.read_text()).get("status") == "done"
    if not done:
        keys = [
            f"data.dataset={args.dataset}", f"data.root={args.root}",
            f"data.options.split={split}", f"seed={split}", f"train.threads={args.threads}",
            "train.progress=false",
        ]  # fmt: skip
        if args.validation:
            keys.append(f"data.options.validation={args.validation}")
        log = Path(args.out) / arm / f"split_{split}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "genreid.cli", "train", "--config", args.config,
               *keys, *overrides, "--out", str(out)]  # fmt: skip
        if out.exists():
            cmd.append("--resume")
        with log.open("w") as fh:
            subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)
    return json.loads(results.read_text())["final"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, choices=["viper", "prid2011"])
    ap.add_argument("--root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--validation", type=float, default=0.0, help="held-out training share")
    ap.add_argument("--jobs", type=int, default=2, help="trainings side by side")
    ap.add_argument(
        "--arm", nargs="+", action="append", required=True, metavar="NAME [KEY=VALUE ...]",
        help="a variant: a name and its overrides (repeat for several; the first is the reference)",
    )  # fmt: skip
    args = ap.parse_args()
    args.threads = threads_per_job(args.jobs)
    arms = {a[0]: a[1:] for a in args.arm}
    tasks = [(name, over, s) for s in range(args.splits) for name, over in arms.items()]
    start = time.time()
    with ThreadPoolExecutor(args.jobs) as pool:
        finals = list(pool.map(lambda t: train(args, *t), tasks))
    scores: dict[str, dict[str, list[float]]] = {n: {"rank1": [], "mAP": []} for n in arms}
    for (name, _, _), final in zip(tasks, finals, strict=True):
        for key in ("rank1", "mAP"):
            scores[name][key].append(100 * final[key])
    ref = next(iter(arms))
    where = f"validation {args.validation}" if args.validation else "test"
    print(f"{args.dataset}, {args.splits} splits ({where}), config {args.config}, "
          f"{time.time() - start:.0f} s, {args.jobs} jobs x {args.threads} threads")  # fmt: skip
    print(f"| arm | overrides | rank-1 % | mAP % | p rank-1 vs {ref} | p mAP vs {ref} |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for name, over in arms.items():
        row = {"overrides": over}
        cells = []
        for key in ("rank1", "mAP"):
            xs = scores[name][key]
            sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
            diffs = [a - b for a, b in zip(xs, scores[ref][key], strict=True)]
            p = paired_t(diffs) if name != ref else None
            row[key] = {"per_split": xs, "mean": statistics.mean(xs), "std": sd, "p": p}
            cells.append(f"{statistics.mean(xs):.1f} ± {sd:.1f}")
        ps = [row[k]["p"] for k in ("rank1", "mAP")]
        pcells = ["–" if p is None else f"{p:.3f}" for p in ps]
        print(f"| {name} | {' '.join(over) or '–'} | {' | '.join(cells)} | {' | '.join(pcells)} |")
        summary[name] = row
    out = Path(args.out) / ("summary_validation.json" if args.validation else "summary.json")
    record = {"dataset": args.dataset, "splits": args.splits, "validation": args.validation}
    out.write_text(json.dumps({**record, "arms": summary}, indent=1))


if __name__ == "__main__":
    main()
