"""Pack the family rerun's finished splits into this folder, so a replaced machine continues.

Small files only (configs, results, metrics, evaluations, sample manifests), and only for the
splits whose every cell is evaluated with re-ranking, or whose cells still running train on no
generated images (DG-Net, which makes its own): their finished cells are kept and the rest
start again (checkpoints are not kept, except the baseline's, DG-Net's teacher, while its
split's DG-Net is unfinished: its weights without the optimiser state, about 3 MB). Any other
split in progress is left out entirely, since its generated images are not kept.
Usage: ``python pack.py [RUNS]`` (default /work/runs).
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
from pathlib import Path

import torch

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


def this_cpu() -> str:
    """This machine's CPU model and whether it computes bf16 natively."""
    text = Path("/proc/cpuinfo").read_text()
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                  if ln.startswith("model name")), "unknown")  # fmt: skip
    return f"{model}, native bf16: {'avx512_bf16' in text or 'amx_bf16' in text}"


def note_machines(table: Path) -> None:
    """Record in TABLE/machines.json the CPU each evaluated cell ran on, the first time a
    pack sees it (cells finish on the machine that packs them next)."""
    path = table / "machines.json"
    seen = json.loads(path.read_text()) if path.is_file() else {}
    for cell in sorted(table.glob("runs/*/split*_seed*")):
        key = f"{cell.parent.name}/{cell.name}"
        if evaluated(cell) and key not in seen:
            seen[key] = this_cpu()
    path.write_text(json.dumps(seen, indent=1) + "\n")


def add_teacher(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    """A baseline's checkpoint as DG-Net loads it as its teacher: everything but the optimiser
    state (a third of the size; the run is finished, so nothing resumes from it)."""
    ckpt = torch.load(path, weights_only=True)
    ckpt["optimizers"] = {}
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    info = tarfile.TarInfo(arcname)
    info.size = buf.tell()
    info.mtime = int(path.stat().st_mtime)
    buf.seek(0)
    tar.addfile(info, buf)


def pack(table: Path, out: Path) -> list[str]:
    """Write ``out`` (tar.xz) with the table's small files of its complete splits."""
    note_machines(table)
    complete = complete_splits(table)
    running = unfinished(table)
    teachers = {table / "runs/baseline" / c.name / "checkpoints/last.pt" for c in running}
    with tarfile.open(out, "w:xz") as tar:
        for p in sorted(table.rglob("*")):
            rel = p.relative_to(table.parent)
            split = SPLIT.search(str(rel))
            if any(c in p.parents for c in running) or not p.is_file():
                continue
            if split and split[0] not in complete:
                continue
            if p in teachers:
                add_teacher(tar, p, str(rel))
            elif not SKIP.search(p.name):
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
