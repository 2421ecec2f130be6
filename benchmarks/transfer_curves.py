"""Transfer curves: zero-shot and fine-tuned rank-1 of pretrained backbones against synthetic
identities, images per identity and pretraining CPU hours, from ``transfer.py``'s outputs.

Each input is the last JSON line of one ``transfer.py`` run; the backbone's sidecar
(``backbone.json``, or the shipped one for ``synthetic``) gives its identities, images and
epochs. CPU hours are the images seen (images x epochs) at the speed the shipped backbone's
own training measured (one thread, its sidecar's seconds): wall times of runs that shared the
cores with other jobs would not compare. Series are named on the command line:

    python benchmarks/transfer_curves.py --out docs/figures/transfer_curves.png \\
        --series "identities=runs/t/ids_*.json" --series "images per identity=runs/t/ipi_*.json"

Prints a table (one row per point) and writes the figure: a row per dataset, a column per
x axis, zero-shot and fine-tuned rank-1 (mean ± std over splits) as two lines per series.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genreid.models.pretrained import shipped_path, sidecar_path  # noqa: E402

AXES = (("ids", "synthetic identities"), ("images_per_id", "images per identity"),
        ("cpu_hours", "pretraining CPU hours"))  # fmt: skip


def last_json(path: str) -> dict:
    """The last JSON line of a file (``transfer.py`` prints its figures there)."""
    for line in reversed(Path(path).read_text().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"{path}: no JSON line (expected the output of benchmarks/transfer.py)")


def training_of(weights: str) -> dict:
    """The ``training`` record of a backbone file's sidecar (``synthetic``: the shipped one)."""
    path = shipped_path("resnet18", 16) if weights == "synthetic" else Path(weights)
    return json.loads(sidecar_path(path).read_text())["training"]


def point(path: str, images_per_second: float) -> dict:
    """One backbone's figures and what its sidecar says about how it was made."""
    figures = last_json(path)
    training = training_of(figures["pretrained"])
    seen = training["images"] * training["epochs"]
    return {
        "file": path,
        "ids": training["identities"],
        "images_per_id": round(training["images"] / training["identities"], 1),
        "cpu_hours": seen / images_per_second / 3600,
        "figures": figures,
    }


def print_table(series: dict[str, list[dict]]) -> None:
    print("series | identities | images/id | CPU h | dataset | mode | rank-1 | mAP")
    for name, pts in series.items():
        for p in pts:
            made = f"{name} | {p['ids']} | {p['images_per_id']} | {p['cpu_hours']:.2f}"
            for key, f in p["figures"].items():
                if "/" in key:
                    r1 = f"{f['rank1']:.1f} ± {f['rank1_std']:.1f}"
                    print(f"{made} | {key.replace('/', ' | ')} | {r1} | {f['mAP']:.1f} ± "
                          f"{f['mAP_std']:.1f}")  # fmt: skip


def draw(series: dict[str, list[dict]], out: str) -> None:
    """A row per dataset, a column per x axis; zero-shot dashed, fine-tuned solid."""
    import matplotlib  # lazy: only this script draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after the backend

    keys = {k for pts in series.values() for p in pts for k in p["figures"] if "/" in k}
    datasets = sorted({k.split("/")[0] for k in keys})
    size = (4.2 * len(AXES), 3.4 * len(datasets))
    fig, axes = plt.subplots(len(datasets), len(AXES), figsize=size, squeeze=False)
    for k, (name, pts) in enumerate(series.items()):
        for r, ds in enumerate(datasets):
            for c, (axis, label) in enumerate(AXES):
                ax = axes[r][c]
                for mode, style in (("zero-shot", "--o"), ("fine-tuned", "-s")):
                    rows = sorted((p for p in pts if f"{ds}/{mode}" in p["figures"]),
                                  key=lambda p: p[axis])  # noqa: B023  # fmt: skip
                    xs = [p[axis] for p in rows]
                    if len(xs) < 2 or max(xs) < 1.2 * min(xs):  # not what this series varies
                        continue
                    f = [p["figures"][f"{ds}/{mode}"] for p in rows]
                    ax.errorbar([p[axis] for p in rows], [x["rank1"] for x in f],
                                yerr=[x["rank1_std"] for x in f], fmt=style, capsize=3,
                                color=f"C{k}", label=f"{name}, {mode}")  # fmt: skip
                ax.set_xlabel(label)
                ax.set_ylabel(f"{ds} rank-1 %")
                ax.grid(alpha=0.3)
    for ax in axes.flat:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", action="append", required=True, help="NAME=GLOB of JSON files")
    ap.add_argument("--out", required=True, help="the figure (.png)")
    args = ap.parse_args()
    shipped = training_of("synthetic")
    rate = shipped["images"] * shipped["epochs"] / shipped["seconds"]
    print(f"CPU hours at the shipped backbone's training speed: {rate:.0f} images/s, 1 thread")
    series = {}
    for spec in args.series:
        name, pattern = spec.split("=", 1)
        files = sorted(glob.glob(pattern))
        if not files:
            raise SystemExit(f"--series {spec}: no file matches {pattern}")
        pts = [point(f, rate) for f in files]
        series[name] = sorted(pts, key=lambda p: (p["ids"], p["images_per_id"], p["cpu_hours"]))
    print_table(series)
    draw(series, args.out)


if __name__ == "__main__":
    main()
