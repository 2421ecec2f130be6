"""``slsr``: sparse label smoothing over the identities of the image's cluster (SLSR Eq. 9-13).

q(k) = 1/|C_c| if identity k is in the identity set C_c of the generated image's cluster c,
else 0. The clusters of the real training images come from a CSV (``labels.options.clusters``)
with ``path,cluster`` rows (:mod:`genreid.data.clusters`); ``labels.options.cluster_ids`` says
how C_c is formed: ``majority`` (default: each identity in the cluster holding most of its
images, disjoint sets as the paper's numbers imply) or ``any`` (every identity with an image in c).
The released ``SLSloss`` trains plain LSRO; genreid implements the paper's sparse loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from genreid.core.errors import ConfigError
from genreid.data.clusters import cluster_identities, read_cluster_manifest
from genreid.labels.base import LabelBatch, LabelStrategy, TrainingSet
from genreid.labels.config import StrategyOptions


class SLSR(LabelStrategy):
    """Sparse uniform target over the cluster's identities; weight 1."""

    name = "slsr"

    @dataclass
    class Options(StrategyOptions):
        """``labels.options`` of slsr: the clusters of the real images and their identities."""

        clusters: str | None = None  # path,cluster CSV of the real training images
        cluster_ids: Literal["majority", "any"] = "majority"  # how a cluster's identities form

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
        opts = self.options
        if not opts.clusters:
            raise ConfigError(
                "slsr needs labels.options.clusters: a path,cluster CSV of the real "
                "training images (the clustering step writes it)"
            )
        real = [r for r in data.records if not r.generated and r.pid in data.label_map]
        groups = read_cluster_manifest(opts.clusters, real, data.root)
        sets = cluster_identities(groups, opts.cluster_ids)
        empty = sorted(c for c, ids in sets.items() if not ids)
        if empty:
            raise ConfigError(
                f"slsr: with labels.options.cluster_ids={opts.cluster_ids}, cluster(s) {empty} "
                f"of {opts.clusters} hold no identity; use labels.options.cluster_ids=any or "
                "fewer clusters"
            )
        self.set_clusters({c: {data.label_map[p] for p in ids} for c, ids in sets.items()})
        gen_clusters = {r.cluster for r in data.records if r.generated}
        if None in gen_clusters:
            raise ConfigError("slsr: some generated images have no cluster in their manifest.csv")
        unknown = sorted(
            c for c in gen_clusters if c >= len(self.cluster_q) or self.cluster_q[c].sum() == 0
        )
        if unknown:
            raise ConfigError(
                f"slsr: generated images use cluster(s) {unknown} that the cluster "
                f"manifest {opts.clusters} does not have"
            )

    def generated_targets(self, batch: LabelBatch, mask: torch.Tensor) -> torch.Tensor:
        c = batch.clusters[mask].to(self.cluster_q.device)
        if len(self.cluster_q) == 0 or (c < 0).any() or (c >= len(self.cluster_q)).any():
            raise ConfigError("slsr: a generated image has no known cluster")
        return self.cluster_q[c].to(batch.logits.device)
