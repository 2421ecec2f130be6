"""``baseline``: real images only, one-hot targets (generated images are not used)."""

from __future__ import annotations

from genreid.labels.base import LabelStrategy


class Baseline(LabelStrategy):
    """IDE / bottleneck baseline: cross-entropy on the labeled images."""

    name = "baseline"
    uses_generated = False
