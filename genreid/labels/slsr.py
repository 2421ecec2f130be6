"""``slsr``: sparse label smoothing over the identities of the image's cluster (SLSR Eq. 9-13).

q(k) = 1/|C_c| if identity k has at least one training image in cluster c, else 0, where c
is the generated image's cluster. The clusters of the real training images come from a CSV
(``labels.clusters``) with ``path,cluster`` rows. The released ``SLSloss`` trains plain LSRO;
genreid implements the paper's sparse loss.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import torch

from genreid.labels.base import LabelBatch, LabelStrategy


def read_cluster_manifest(
    path: str | Path, train_records: list, label_map: dict[int, int], data_root: str | None = None
) -> dict[int, set[int]]:
    """cluster id -> set of label indices with at least one real training image in it."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ValueError(f"labels.clusters: cluster manifest {p} does not exist")
    by_path: dict[str, int] = {}
    by_name: dict[str, list[int]] = defaultdict(list)
    for rec in train_records:
        if rec.generated or rec.pid not in label_map:
            continue
        by_path[str(Path(rec.path).resolve())] = label_map[rec.pid]
        by_name[Path(rec.path).name].append(label_map[rec.pid])
    sets: dict[int, set[int]] = defaultdict(set)
    unmatched = []
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "cluster"} <= set(reader.fieldnames):
            raise ValueError(f"{p}: expected a header 'path,cluster', found {reader.fieldnames}")
        for row in reader:
            rel = Path(row["path"].strip())
            try:
                cluster = int(row["cluster"])
            except ValueError:
                raise ValueError(
                    f"{p}:{reader.line_num}: cluster {row['cluster']!r} is not an integer"
                ) from None
            bases = (
                [Path()]
                if rel.is_absolute()
                else [p.parent] + ([Path(data_root)] if data_root else [])
            )
            label = None
            for base in bases:
                label = by_path.get(str((base / rel).resolve()))
                if label is not None:
                    break
            if label is None and len(by_name.get(rel.name, [])) == 1:
                label = by_name[rel.name][0]
            if label is None:
                unmatched.append(str(rel))
                continue
            sets[cluster].add(label)
    if unmatched:
        raise ValueError(
            f"{p}: {len(unmatched)} row(s) name no real training image of this dataset, e.g. "
            f"{unmatched[0]}; paths are absolute or relative to the CSV's folder or data.root"
        )
    if not sets:
        raise ValueError(f"{p}: no rows; expected path,cluster for the real training images")
    return dict(sets)


class SLSR(LabelStrategy):
    """Sparse uniform target over the cluster's identities; weight 1."""

    name = "slsr"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("cluster_q", torch.zeros(0, self.num_outputs), persistent=False)

    def set_clusters(self, sets: dict[int, set[int]]) -> None:
        """Build the per-cluster target rows from cluster -> identity label sets."""
        q = torch.zeros(max(sets) + 1, self.num_outputs)
        for c, ids in sets.items():
            if ids:
                q[c, sorted(ids)] = 1.0 / len(ids)
        self.cluster_q = q.to(self.cluster_q.device)

    def prepare(
        self, train_records: list, label_map: dict[int, int], data_root: str | None = None
    ) -> None:
        if not self.options.clusters:
            raise ValueError(
                "slsr needs labels.clusters: a path,cluster CSV of the real "
                "training images (the clustering step writes it)"
            )
        self.set_clusters(
            read_cluster_manifest(self.options.clusters, train_records, label_map, data_root)
        )
        gen_clusters = {r.cluster for r in train_records if r.generated}
        if None in gen_clusters:
            raise ValueError("slsr: some generated images have no cluster in their manifest.csv")
        unknown = sorted(
            c for c in gen_clusters if c >= len(self.cluster_q) or self.cluster_q[c].sum() == 0
        )
        if unknown:
            raise ValueError(
                f"slsr: generated images use cluster(s) {unknown} that the cluster "
                f"manifest {self.options.clusters} does not have"
            )

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        c = batch.clusters[mask].to(self.cluster_q.device)
        if len(self.cluster_q) == 0 or (c < 0).any() or (c >= len(self.cluster_q)).any():
            raise ValueError("slsr: a generated image has no known cluster")
        return self.cluster_q[c].to(batch.logits.device)
