"""Pack the family rerun's finished splits into this folder, so a replaced machine continues.

Small files only (configs, results, metrics, evaluations, sample manifests), and only for the
splits whose every cell is evaluated with re-ranking, or whose cells still running train on no
generated images (DG-Net, which makes its own): their finished cells are kept and the rest
start again (checkpoints are not kept, except the baseline's, DG-Net's teacher, while its
split's DG-Net is unfinished: about 9 MB). Any other split in progress is left out entirely,
since its generated images are not kept. Usage: ``python pack.py [RUNS]`` (default /work/runs).
"""

from __future__ import annotations

import json
import re
import sys
import tarfile
from pathlib import Path

CELLS = 14  # the family table's rows, each one run per split
SKIP = re.compile(r"\.(pt|png|jpg|jpeg|bmp|npz|npy|onnx)$|events\.out\.tfevents")
SPLIT = re.compile(r"split\d+_seed\d+")


def evaluated(cell: Path) -> bool:
    """A cell's run has its re-ranked evaluation."""
    res = cell / "eval" / "results.json"
    return res.is_file() and "rerank" in json.loads(res.read_text()).get("results", {})


def uses_generated(cell: Path) -> bool:
    """A cell's run reads generated images (its config's ``data.generated``)."""
    config = cell / "config.yaml"
    return not config.is_file() or "\n  generated: null" not in config.read_text()


def complete_splits(table: Path) -> list[str]:
    """The splits of a table folder that a restore can continue: every cell started, and
    every cell not evaluated yet free of generated images."""
    cells: dict[str, list[Path]] = {}
    for cell in table.glob("runs/*/split*_seed*"):
        cells.setdefault(cell.name, []).append(cell)
    return sorted(
        split
        for split, found in cells.items()
        if len(found) >= CELLS and not any(uses_generated(c) for c in found if not evaluated(c))
    )


def unfinished(table: Path) -> set[Path]:
    """The cells (run folders) without their re-ranked evaluation: left out of the pack."""
    return {c for c in table.glob("runs/*/split*_seed*") if not evaluated(c)}


def pack(table: Path, out: Path) -> list[str]:
    """Write ``out`` (tar.xz) with the table's small files of its complete splits."""
    complete = complete_splits(table)
    running = unfinished(table)
    teachers = {table / "runs/baseline" / c.name / "checkpoints/last.pt" for c in running}
    with tarfile.open(out, "w:xz") as tar:
        for p in sorted(table.rglob("*")):
            rel = p.relative_to(table.parent)
            split = SPLIT.search(str(rel))
            if any(c in p.parents for c in running) or not p.is_file():
                continue
            kept = not SKIP.search(p.name) or p in teachers
            if kept and (not split or split[0] in complete):
                tar.add(p, arcname=str(rel))
    return complete


def main() -> None:
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/runs")
    here = Path(__file__).resolve().parent
    for ds in ("viper", "prid2011"):
        table = runs / f"family2_{ds}"
        if table.is_dir():
            out = here / f"family2_{ds}.tar.xz"
            complete = pack(table, out)
            print(f"{ds}: complete splits {complete}; {out.name} {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
