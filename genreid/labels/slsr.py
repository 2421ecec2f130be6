"""``slsr``: sparse label smoothing over the identities of the image's cluster (SLSR Eq. 9-13).

q(k) = 1/|C_c| if identity k has at least one training image in cluster c, else 0, where c
is the generated image's cluster. The clusters of the real training images come from a CSV
(``labels.clusters``) with ``path,cluster`` rows (:mod:`genreid.data.clusters`). The released
``SLSloss`` trains plain LSRO; genreid implements the paper's sparse loss.
"""

from __future__ import annotations

import torch

from genreid.core.errors import ConfigError
from genreid.data.clusters import read_cluster_manifest
from genreid.data.records import ImageRecord
from genreid.labels.base import LabelBatch, LabelStrategy, TrainingSet


def cluster_identities(
    groups: dict[int, list[ImageRecord]], label_map: dict[int, int]
) -> dict[int, set[int]]:
    """cluster id -> label indices of the identities with at least one image in it."""
    return {c: {label_map[r.pid] for r in recs if r.pid in label_map} for c, recs in groups.items()}


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

    def prepare(self, data: TrainingSet) -> None:
        if not self.cfg.clusters:
            raise ConfigError(
                "slsr needs labels.clusters: a path,cluster CSV of the real "
                "training images (the clustering step writes it)"
            )
        real = [r for r in data.records if not r.generated and r.pid in data.label_map]
        groups = read_cluster_manifest(self.cfg.clusters, real, data.root)
        self.set_clusters(cluster_identities(groups, data.label_map))
        gen_clusters = {r.cluster for r in data.records if r.generated}
        if None in gen_clusters:
            raise ConfigError("slsr: some generated images have no cluster in their manifest.csv")
        unknown = sorted(
            c for c in gen_clusters if c >= len(self.cluster_q) or self.cluster_q[c].sum() == 0
        )
        if unknown:
            raise ConfigError(
                f"slsr: generated images use cluster(s) {unknown} that the cluster "
                f"manifest {self.cfg.clusters} does not have"
            )

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        c = batch.clusters[mask].to(self.cluster_q.device)
        if len(self.cluster_q) == 0 or (c < 0).any() or (c >= len(self.cluster_q)).any():
            raise ConfigError("slsr: a generated image has no known cluster")
        return self.cluster_q[c].to(batch.logits.device)
