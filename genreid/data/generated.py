"""Folders of GAN-generated images: ``manifest.csv`` listing each image and its cluster.

Columns: ``path`` (relative to the folder), optional ``cluster`` (an integer >= 0, or empty),
and any others (``seed``, ``generator``...) that are kept in the file but not read here.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from genreid.core.text import listing
from genreid.data.errors import DatasetError
from genreid.data.records import ImageRecord, Role

MANIFEST = "manifest.csv"


def _cluster(value: str | None, manifest: Path, line: int) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        cluster = int(value)
    except ValueError:
        cluster = -1
    if cluster < 0:
        raise DatasetError(
            f"{manifest}:{line}: expected cluster to be an integer >= 0 or empty, found "
            f"{value!r}. Fix the manifest (or rerun the generator)."
        )
    return cluster


def read_generated(folder: str | Path) -> list[ImageRecord]:
    """Generated images of ``folder`` as training records (pid -1, camid -1, generated)."""
    base = Path(folder).expanduser()
    manifest = base / MANIFEST
    if not manifest.is_file():
        raise DatasetError(
            f"expected {MANIFEST} (columns path[,cluster,...]) in {base}, found none. "
            "Generate images with `genreid gan sample --run RUN --num N --out DIR`, or write "
            "the manifest with write_manifest."
        )
    with manifest.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise DatasetError(
                f"{manifest}: expected a header with a 'path' column, found "
                f"{reader.fieldnames}. The first line must name the columns, e.g. path,cluster."
            )
        rows = [(reader.line_num, row) for row in reader]
    records: list[ImageRecord] = []
    missing: list[str] = []
    for line, row in rows:
        rel = (row.get("path") or "").strip()
        if not rel:
            raise DatasetError(f"{manifest}:{line}: expected an image path, found an empty one.")
        path = base / rel
        if not path.is_file():
            missing.append(rel)
        cluster = _cluster(row.get("cluster"), manifest, line)
        records.append(ImageRecord(str(path), -1, -1, Role.TRAIN, generated=True, cluster=cluster))
    if missing:
        shown = listing(missing)
        raise DatasetError(
            f"{manifest}: expected every listed image under {base}, found {len(missing)} "
            f"missing: {shown}. Regenerate the images or remove their rows."
        )
    return records


def sample_generated(records: list[ImageRecord], n: int, seed: int) -> list[ImageRecord]:
    """A seeded random subset of ``n`` generated images, stratified by cluster.

    Manifests list images cluster by cluster, so their first rows are one cluster only. Each
    cluster (images without one form a group of their own) keeps a share of ``n`` proportional
    to its size (largest remainders first, ties to the earlier cluster); the subset keeps the
    manifest order. ``n`` at or above the number of images keeps them all.
    """
    if n >= len(records):
        return list(records)
    groups: dict[int | None, list[int]] = {}
    for i, rec in enumerate(records):
        groups.setdefault(rec.cluster, []).append(i)
    exact = {c: n * len(idx) / len(records) for c, idx in groups.items()}
    quota = {c: int(x) for c, x in exact.items()}
    for c in sorted(groups, key=lambda c: quota[c] - exact[c])[: n - sum(quota.values())]:
        quota[c] += 1
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for c, idx in groups.items():
        keep += rng.choice(idx, size=quota[c], replace=False).tolist()
    return [records[i] for i in sorted(keep)]


def _relative(path: str | Path, base: Path) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(base.resolve())
        except ValueError:
            raise DatasetError(
                f"expected manifest paths inside {base}, found {path}. Save the image there."
            ) from None
    return p.as_posix()


def write_manifest(folder: str | Path, rows: Iterable[Mapping[str, object]]) -> Path:
    """Write ``folder/manifest.csv`` atomically; each row needs ``path``, may have ``cluster``."""
    base = Path(folder).expanduser()
    base.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    columns = ["path"]
    for row in rows:
        if "path" not in row:
            raise DatasetError(f"expected a 'path' in every manifest row, found {dict(row)}.")
        columns += [k for k in row if k not in columns]
    if "cluster" in columns:  # path, cluster first; other columns in first-seen order
        columns.remove("cluster")
        columns.insert(1, "cluster")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        out = {k: ("" if v is None else v) for k, v in row.items()}
        out["path"] = _relative(str(row["path"]), base)
        writer.writerow(out)
    target = base / MANIFEST
    tmp = base / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(buf.getvalue())
    os.replace(tmp, target)
    return target
