"""genreid.eval: distances, ranking metrics (CMC, mAP, mINP) and k-reciprocal re-ranking."""

from genreid.eval.distance import compute_distance
from genreid.eval.metrics import evaluate_rank
from genreid.eval.rerank import re_ranking, re_ranking_features

__all__ = ["compute_distance", "evaluate_rank", "re_ranking", "re_ranking_features"]
