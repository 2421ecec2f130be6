"""Cluster manifests: ``path,cluster`` rows assigning real training images to clusters (SLSR).

The k-means step writes one; per-cluster GANs train on each cluster's images and the
``slsr`` strategy takes each cluster's identity set from it. Paths may be absolute, relative
to the CSV's folder or to the dataset root, or bare file names when those are unique among
the training images.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from genreid.data.errors import DatasetError
from genreid.data.records import ImageRecord

IDENTITY_RULES = ("majority", "any")


def cluster_identities(
    groups: dict[int, list[ImageRecord]], rule: str = "majority"
) -> dict[int, set[int]]:
    """The identity set C_c of every cluster (dataset pids).

    ``majority``: each identity belongs to the one cluster holding most of its images, so the
    sets are disjoint, about K/k identities each (SLSR's "0.004 ~ 3/751" at k = 3 on Market).
    Ties are spread over the tied clusters by identity number (pid mod their count): with two
    images per identity (VIPeR) a third of the identities tie, and "the lower cluster id"
    gave every one of them to the first cluster. ``any``: every identity with at least one
    image in c (sets overlap and grow towards all K).
    """
    if rule not in IDENTITY_RULES:
        raise DatasetError(f"identity-set rule {rule!r}: expected majority or any")
    if rule == "any":
        return {c: {r.pid for r in recs} for c, recs in groups.items()}
    counts: dict[int, dict[int, int]] = {}
    for c, recs in groups.items():
        for r in recs:
            per = counts.setdefault(r.pid, {})
            per[c] = per.get(c, 0) + 1
    sets: dict[int, set[int]] = {c: set() for c in groups}
    for pid, per in counts.items():
        most = max(per.values())
        tied = sorted(c for c, n in per.items() if n == most)
        sets[tied[pid % len(tied)]].add(pid)
    return sets


def read_cluster_manifest(
    path: str | Path, records: list[ImageRecord], root: str | Path | None = None
) -> dict[int, list[ImageRecord]]:
    """The training records of each cluster (sorted by cluster id), each with its ``cluster``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(
            f"cluster manifest: expected a CSV file with columns path,cluster, found nothing at "
            f"{path}. Write one line per training image (e.g. from the SLSR k-means step)."
        )
    real = [r for r in records if not r.generated]
    by_path = {str(Path(r.path).resolve()): r for r in real}
    names: dict[str, list[ImageRecord]] = {}
    for r in real:
        names.setdefault(Path(r.path).name, []).append(r)
    bases = [path.parent] + ([Path(root).expanduser()] if root else [])
    groups: dict[int, list[ImageRecord]] = {}
    seen: set[str] = set()
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "cluster"} <= set(reader.fieldnames):
            raise DatasetError(
                f"{path}: expected a header line 'path,cluster', found {reader.fieldnames}."
            )
        for row in reader:
            line = reader.line_num
            rel = (row["path"] or "").strip()
            try:
                cluster = int(row["cluster"])
            except (TypeError, ValueError):
                cluster = -1
            if cluster < 0:
                raise DatasetError(
                    f"{path}:{line}: expected cluster to be an integer >= 0, found "
                    f"{row['cluster']!r}."
                )
            p = Path(rel).expanduser()
            rec = None
            for cand in [p] if p.is_absolute() else [b / p for b in bases]:
                rec = by_path.get(str(cand.resolve()))
                if rec is not None:
                    break
            if rec is None and len(names.get(p.name, [])) == 1:
                rec = names[p.name][0]
            if rec is None:
                raise DatasetError(
                    f"{path}:{line}: {rel!r} is not a training image of the dataset at {root}. "
                    "Clusters hold training images only (never query or gallery); list "
                    "bounding_box_train-style images, relative to the dataset root or absolute."
                )
            if rec.path in seen:
                raise DatasetError(f"{path}:{line}: {rel!r} is listed twice; keep one row.")
            seen.add(rec.path)
            groups.setdefault(cluster, []).append(dataclasses.replace(rec, cluster=cluster))
    if not groups:
        raise DatasetError(f"{path}: expected at least one path,cluster row, found none.")
    return dict(sorted(groups.items()))
