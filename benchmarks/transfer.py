"""Synthetic transfer of a backbone: zero-shot and fine-tuned rank-1/mAP over the 10 splits of
VIPeR and PRID2011, mean +- std over splits.

Zero-shot: the backbone with no training (`genreid extract --pretrained`), features of each
image and its mirror, cosine, in this process. Fine-tuned (``--fine-tune``): the tiny recipe
started from the backbone, one training per split through ``recipe_splits.py`` (finished runs
are reused, so the command continues where it stopped).

    python benchmarks/transfer.py --pretrained synthetic --splits 0-9            # ~1 minute
    python benchmarks/transfer.py --pretrained RUN/backbone.pt --fine-tune --out runs/transfer

Prints a line per dataset and mode, then the figures as JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from genreid.data.datasets import load_dataset  # noqa: E402
from genreid.eval.ranking.extract import evaluate_model, load_pretrained_model  # noqa: E402

DATASETS = {"viper": "VIPeR", "prid2011": "prid2011"}


def splits_of(text: str) -> list[int]:
    """``0-9`` or ``0,3,5``."""
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def zero_shot(
    model: torch.nn.Module,
    size: tuple[int, int],
    dataset: str,
    root: Path,
    split: int,
    validation: float = 0.0,
) -> dict[str, float]:
    """Rank-1 and mAP (%) of the backbone's features with no training on one split (with
    ``validation``: on that share of its training identities, the test ones not loaded)."""
    options = {"validation": validation} if validation else {}
    ds = load_dataset(dataset, str(root), split=split, **options)
    metrics, _, _ = evaluate_model(model, ds, size, "cosine", True, 128, "cpu")
    return {"rank1": 100 * metrics["rank1"], "mAP": 100 * metrics["mAP"]}


def fine_tuned(
    args: argparse.Namespace, keys: list[str], dataset: str, root: Path, split: int
) -> dict[str, float]:
    """The tiny recipe from the backbone (``keys``) on one split (its final evaluation), in %."""
    from recipe_splits import train  # lazy: only with --fine-tune

    ns = argparse.Namespace(
        dataset=dataset, root=str(root), out=str(Path(args.out) / dataset), config="train/tiny",
        threads=args.threads, validation=args.validation,
    )  # fmt: skip
    final = train(ns, "fine_tuned", keys, split)
    return {"rank1": 100 * final["rank1"], "mAP": 100 * final["mAP"]}


def summary(values: list[dict[str, float]]) -> dict[str, float]:
    out = {}
    for k in ("rank1", "mAP"):
        xs = [v[k] for v in values]
        out[k], out[f"{k}_std"] = statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrained", default="synthetic", help="synthetic or a backbone file")
    ap.add_argument("--datasets", default="viper,prid2011")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "datasets"))
    ap.add_argument("--splits", default="0-9")
    ap.add_argument("--fine-tune", action="store_true", help="also the tiny recipe per split")
    ap.add_argument("--out", default="runs/transfer", help="fine-tuned runs (reused)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--validation", type=float, default=0.0,
                    help="evaluate on this share of each split's training identities")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    figures: dict = {"pretrained": args.pretrained, "splits": args.splits}
    figures["validation"] = args.validation
    model, size, _ = load_pretrained_model(args.pretrained)  # once: every split reads it
    keys = [f"model.pretrained={args.pretrained}", f"model.backbone={model.spec.backbone}",
            f"model.width={model.spec.width}"]  # fmt: skip  # fine-tuning: the file's own width
    for name in args.datasets.split(","):
        root = Path(args.shared) / DATASETS[name]
        modes = {"zero-shot": lambda s: zero_shot(model, size, name, root, s, args.validation)}  # noqa: B023
        if args.fine_tune:
            modes["fine-tuned"] = lambda s: fine_tuned(args, keys, name, root, s)  # noqa: B023
        for mode, fn in modes.items():
            per = [fn(s) for s in splits_of(args.splits)]
            m = summary(per)
            figures[f"{name}/{mode}"] = {**m, "per_split": per}
            line = f"rank-1 {m['rank1']:.1f} ± {m['rank1_std']:.1f}  mAP {m['mAP']:.1f} ± "
            print(f"{name:9s} {mode:10s} {line}{m['mAP_std']:.1f}  ({len(per)} splits)", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
