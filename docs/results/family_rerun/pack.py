"""Pack the family rerun's finished splits into this folder, so a replaced machine continues.

Small files only (configs, results, metrics, evaluations, sample manifests), and only for the
splits whose every cell is evaluated with re-ranking: a split in progress is left out entirely,
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


def complete_splits(table: Path) -> list[str]:
    """The splits of a table folder whose every cell has a re-ranked evaluation."""
    done: dict[str, int] = {}
    for res in table.glob("runs/*/split*_seed*/eval/results.json"):
        if "rerank" in json.loads(res.read_text()).get("results", {}):
            split = res.parent.parent.name
            done[split] = done.get(split, 0) + 1
    return sorted(s for s, n in done.items() if n >= CELLS)


def pack(table: Path, out: Path) -> list[str]:
    """Write ``out`` (tar.xz) with the table's small files of its complete splits."""
    complete = complete_splits(table)
    with tarfile.open(out, "w:xz") as tar:
        for p in sorted(table.rglob("*")):
            rel = p.relative_to(table.parent)
            split = SPLIT.search(str(rel))
            if p.is_file() and not SKIP.search(p.name) and (not split or split[0] in complete):
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
