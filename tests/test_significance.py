"""Paired tests over the queries of one evaluation (the quickstart's comparison) and the
per-query scores ``genreid evaluate`` saves for them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from genreid.eval.ranking.features import FeatureSet
from genreid.eval.ranking.report import read_per_query, run_evaluation
from genreid.eval.ranking.significance import mcnemar_exact, paired_queries


def test_mcnemar_exact_by_hand():
    a = np.array([1, 1, 1, 1, 0, 0, 1, 0], bool)
    b = np.array([0, 0, 0, 1, 1, 0, 1, 0], bool)  # discordant: 3 only-a, 1 only-b
    # two-sided binomial on 3 of 4: P(X<=1)+P(X>=3) = (1+4+4+1)/16
    assert mcnemar_exact(a, b) == pytest.approx(10 / 16)
    assert mcnemar_exact(a, a) is None


def test_paired_queries_against_scipy():
    rng = np.random.default_rng(0)
    ap_a = rng.uniform(0, 1, 200)
    ap_b = np.clip(ap_a + rng.normal(0.05, 0.1, 200), 0, 1)
    rank_a, rank_b = rng.integers(0, 3, 200), rng.integers(0, 2, 200)
    out = paired_queries(ap_a, ap_b, rank_a, rank_b)
    assert out["queries"] == 200
    assert out["d_mAP"] == pytest.approx(ap_b.mean() - ap_a.mean())
    assert out["p_mAP"] == pytest.approx(stats.ttest_rel(ap_b, ap_a).pvalue)
    assert out["d_rank1"] == pytest.approx((rank_b == 0).mean() - (rank_a == 0).mean())
    hit_a, hit_b = rank_a == 0, rank_b == 0
    n01, n10 = int((~hit_a & hit_b).sum()), int((hit_a & ~hit_b).sum())
    assert out["p_rank1"] == pytest.approx(stats.binomtest(n10, n01 + n10).pvalue)
    with pytest.raises(ValueError, match="different query sets"):
        paired_queries(ap_a, ap_b[:-1], rank_a, rank_b)


def test_evaluate_saves_per_query_scores_that_average_to_the_results(tmp_path):
    rng = np.random.default_rng(1)
    q_pids, g_pids = np.arange(12) % 6, np.arange(30) % 6
    q_cams, g_cams = np.zeros(12, int), np.ones(30, int)
    qf = rng.normal(size=(12, 8)) + np.eye(8)[q_pids] * 2
    gf = rng.normal(size=(30, 8)) + np.eye(8)[g_pids] * 2
    paths = (np.array([f"q{i}.jpg" for i in range(12)]), np.array([f"g{i}.jpg" for i in range(30)]))
    fs = FeatureSet(qf, gf, q_pids, g_pids, q_cams, g_cams, *paths)
    res = run_evaluation(fs, tmp_path, rerank=True)
    pq = read_per_query(tmp_path / res["files"]["per_query"])
    for name in ("plain", "rerank"):
        assert pq[f"{name}_ap"].mean() == pytest.approx(res["results"][name]["mAP"])
        assert (pq[f"{name}_first_rank"] == 0).mean() == pytest.approx(
            res["results"][name]["rank1"]
        )
    assert pq["valid"].shape == (12,) and pq["valid"].all()
