"""Do a family sweep's differences against the baseline survive k-reciprocal re-ranking?
Re-scores every finished run's saved test features (``runs/ROW/SPLIT/features.npz``) with and
without re-ranking (Zhong et al. 2017, k1 20, k2 6, lambda 0.3) and prints, per row, the mean
difference to the baseline on the same splits with a paired t-test, both ways. A quick check
from the saved features; `genreid reproduce family ... --rerank` writes the same comparison as
a table (re-extracting the features in each run's evaluation).

    python benchmarks/family_rerank.py /work/runs/family_viper [--rows lsro,fapl_dist]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genreid.eval.ranking.features import load_features  # noqa: E402
from genreid.eval.ranking.protocols import evaluate_arrays  # noqa: E402
from genreid.eval.ranking.significance import paired_t  # noqa: E402

METRICS = ("rank1", "rank5", "rank10", "rank20", "mAP")


def scores(features: Path) -> dict[str, dict[str, float]]:
    """Plain and re-ranked metrics (in %) of one run's saved features."""
    fs = load_features(features)
    ev = evaluate_arrays(fs.qf, fs.gf, fs.q_pids, fs.g_pids, fs.q_camids, fs.g_camids, rerank=True)
    res = ev.to_dict()["results"]
    return {kind: {m: 100 * res[kind][m] for m in METRICS} for kind in ("plain", "rerank")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="a `genreid reproduce family` --out folder")
    parser.add_argument("--rows", default="", help="comma-separated rows (default: all)")
    args = parser.parse_args()
    runs = args.sweep / "runs"
    rows = args.rows.split(",") if args.rows else sorted(p.name for p in runs.iterdir())
    rows = ["baseline"] + [r for r in rows if r != "baseline"]
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for row in rows:
        table[row] = {f.parent.name: scores(f) for f in sorted((runs / row).glob("*/features.npz"))}
    base = table["baseline"]
    head = " ".join(f"{m:>22}" for m in METRICS)
    print(f"{'row':<18}{'kind':<8}{head}")
    for row in rows:
        splits = sorted(set(table[row]) & set(base))  # paired: splits both rows finished
        if not splits:
            print(f"{row:<18}no finished run on a split the baseline has")
            continue
        for kind in ("plain", "rerank"):
            cells = []
            for m in METRICS:
                mean = statistics.mean(table[row][s][kind][m] for s in splits)
                if row == "baseline":
                    cells.append(f"{mean:>16.1f} n={len(splits):<3}")
                    continue
                diffs = [table[row][s][kind][m] - base[s][kind][m] for s in splits]
                p = paired_t(diffs)
                mark = "*" if p is not None and p < 0.05 else " "
                cells.append(
                    f"{statistics.mean(diffs):+6.1f}{mark} p={p or 1:<8.2g} n={len(splits):<2}"
                )
            print(f"{row:<18}{kind:<8}" + " ".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
