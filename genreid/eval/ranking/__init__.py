"""genreid.eval.ranking: re-ID ranking evaluation. Features of a network and their file,
distances, CMC/mAP/mINP, k-reciprocal re-ranking, multi-query, protocol drivers, what
``genreid evaluate`` writes, paired tests and paper tables of the metrics.

The public functions are imported on first use, so that importing a submodule (or the
command line) does not pull in torch before it is needed.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "compute_distance": "genreid.eval.ranking.distance",
    "evaluate_rank": "genreid.eval.ranking.metrics",
    "re_ranking": "genreid.eval.ranking.rerank",
    "re_ranking_features": "genreid.eval.ranking.rerank",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'genreid.eval.ranking' has no attribute {name!r}")
