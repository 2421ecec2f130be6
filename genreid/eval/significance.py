"""Comparing methods over seeds or splits: the paired test every results table uses."""

from __future__ import annotations

import statistics

from scipy import stats


def paired_t(diffs: list[float]) -> float | None:
    """Two-sided p of a paired t-test on per-seed (or per-split) differences; None below two
    pairs or when every difference is the same."""
    if len(diffs) < 2 or statistics.pstdev(diffs) == 0:
        return None
    return float(stats.ttest_1samp(diffs, 0.0).pvalue)
