"""Comparing methods: paired tests over seeds or splits (results tables) and over the queries
of one evaluation (the quickstart)."""

from __future__ import annotations

import statistics

import numpy as np
from scipy import stats


def paired_t(diffs: list[float]) -> float | None:
    """Two-sided p of a paired t-test on per-seed (or per-split) differences; None below two
    pairs or when every difference is the same."""
    if len(diffs) < 2 or statistics.pstdev(diffs) == 0:
        return None
    return float(stats.ttest_1samp(diffs, 0.0).pvalue)


def mcnemar_exact(hit_a: np.ndarray, hit_b: np.ndarray) -> float | None:
    """Two-sided exact McNemar p for paired hit/miss outcomes (e.g. rank-1 per query): a
    binomial test on the discordant pairs; None when there are none."""
    a, b = np.asarray(hit_a, bool), np.asarray(hit_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return None
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_queries(
    ap_a: np.ndarray, ap_b: np.ndarray, rank_a: np.ndarray, rank_b: np.ndarray
) -> dict[str, float | int | None]:
    """Method B against method A on the same queries: mean AP and rank-1 differences (B - A),
    a paired t-test on per-query AP and an exact McNemar test on rank-1 hits.

    One trained model per method: this measures how sure the difference is over the query
    sample, not over training seeds (which needs several runs, as the results tables do).
    """
    ap_a, ap_b = np.asarray(ap_a, np.float64), np.asarray(ap_b, np.float64)
    if ap_a.shape != ap_b.shape:
        raise ValueError(f"per-query scores of different query sets: {ap_a.shape} vs {ap_b.shape}")
    hit_a, hit_b = np.asarray(rank_a) == 0, np.asarray(rank_b) == 0
    return {
        "queries": int(ap_a.size),
        "d_mAP": float(ap_b.mean() - ap_a.mean()),
        "p_mAP": paired_t((ap_b - ap_a).tolist()),
        "d_rank1": float(hit_b.mean() - hit_a.mean()),
        "p_rank1": mcnemar_exact(hit_a, hit_b),
    }
