"""genreid.eval: distances, ranking metrics (CMC, mAP, mINP) and k-reciprocal re-ranking.

The public functions are imported on first use, so that importing a submodule (or the
command line) does not pull in torch before it is needed.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "compute_distance": "genreid.eval.distance",
    "evaluate_rank": "genreid.eval.metrics",
    "re_ranking": "genreid.eval.rerank",
    "re_ranking_features": "genreid.eval.rerank",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'genreid.eval' has no attribute {name!r}")
