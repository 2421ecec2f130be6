"""k-reciprocal re-ranking: the fast versions against the authors' semantics and the paper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genreid.eval import re_ranking, re_ranking_features
from genreid.eval.rerank_reference import re_ranking_dense, re_ranking_loop


def euclid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plain float64 Euclidean distances (exact zeros between identical rows)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def make_features(n_q: int, n_g: int, dim: int, seed: int, n_ids: int = 12):
    """Identity means plus noise, so that neighbourhoods have structure."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_ids, dim)) * 1.5
    qf = means[rng.integers(0, n_ids, n_q)] + rng.standard_normal((n_q, dim))
    gf = means[rng.integers(0, n_ids, n_g)] + rng.standard_normal((n_g, dim))
    return qf, gf


def distances(qf, gf):
    return euclid(qf, gf), euclid(qf, qf), euclid(gf, gf)


@pytest.fixture(scope="module")
def medium():
    qf, gf = make_features(60, 200, 16, seed=0)
    return qf, gf, distances(qf, gf)


PARAMS = [(20, 6, 0.3), (10, 3, 0.5), (5, 1, 0.1), (7, 8, 0.0), (3, 2, 1.0)]


@pytest.mark.parametrize("k1,k2,lam", PARAMS)
def test_re_ranking_matches_reference_loop(medium, k1, k2, lam):
    _, _, (qg, qq, gg) = medium
    expected = re_ranking_loop(qg, qq, gg, k1, k2, lam)
    out = re_ranking(qg, qq, gg, k1=k1, k2=k2, lambda_value=lam)
    assert out.dtype == np.float32 and out.shape == (60, 200)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_re_ranking_matches_reference_with_ties():
    # Integer distances: many ties, broken identically by the same full-row np.argsort.
    rng = np.random.default_rng(5)
    pts = rng.integers(0, 4, (50, 3)).astype(np.float64)
    d = euclid(pts, pts)
    qg, qq, gg = d[:15, 15:], d[:15, :15], d[15:, 15:]
    for k1, k2 in [(6, 3), (20, 6)]:
        np.testing.assert_allclose(
            re_ranking(qg, qq, gg, k1, k2), re_ranking_loop(qg, qq, gg, k1, k2), atol=1e-6
        )


@pytest.mark.parametrize("k1,k2,lam", PARAMS)
def test_features_match_re_ranking(medium, k1, k2, lam):
    qf, gf, (qg, qq, gg) = medium
    expected = re_ranking(qg, qq, gg, k1=k1, k2=k2, lambda_value=lam)
    out = re_ranking_features(qf, gf, k1=k1, k2=k2, lambda_value=lam, device="cpu")
    assert out.dtype == np.float32 and out.shape == (60, 200)
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("block_size", [7, 64, 1000])
def test_features_block_sizes(medium, block_size):
    qf, gf, (qg, qq, gg) = medium
    expected = re_ranking(qg, qq, gg)
    out = re_ranking_features(qf, gf, device="cpu", block_size=block_size)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_features_float32_and_torch_inputs(medium):
    qf, gf, (qg, qq, gg) = medium
    expected = re_ranking(qg, qq, gg)
    q32, g32 = torch.from_numpy(qf.astype(np.float32)), torch.from_numpy(gf.astype(np.float32))
    np.testing.assert_allclose(re_ranking_features(q32, g32, device="cpu"), expected, atol=1e-5)


@pytest.mark.parametrize("k1,k2,lam", [(20, 6, 0.3), (6, 3, 0.5)])
def test_matches_dense_paper_version(medium, k1, k2, lam):
    qf, gf, (qg, qq, gg) = medium
    expected = re_ranking_dense(qg, qq, gg, k1, k2, lam)
    np.testing.assert_allclose(re_ranking(qg, qq, gg, k1, k2, lam), expected, atol=1e-5)
    out = re_ranking_features(qf, gf, k1, k2, lam, device="cpu")
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_tiny_problems_and_large_k():
    # k1 + 1 and k2 beyond the number of items: the reference's slices take every item.
    qf, gf = make_features(3, 9, 4, seed=2, n_ids=3)
    qg, qq, gg = distances(qf, gf)
    for k1, k2 in [(20, 6), (2, 30), (1, 1)]:
        expected = re_ranking_loop(qg, qq, gg, k1, k2)
        np.testing.assert_allclose(re_ranking(qg, qq, gg, k1, k2), expected, atol=1e-6)
        out = re_ranking_features(qf, gf, k1, k2, device="cpu")
        np.testing.assert_allclose(out, expected, atol=1e-5)
    assert re_ranking_features(qf[:0], gf, device="cpu").shape == (0, 9)


def test_output_is_a_bounded_distance():
    # Jaccard and normalised original distances both lie in [0, 1].
    qf, gf = make_features(40, 160, 8, seed=4, n_ids=8)
    rng = np.random.default_rng(4)
    qf = qf + rng.standard_normal(qf.shape) * 0.5
    out = re_ranking_features(qf, gf, device="cpu")
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1 + 1e-6


def test_shape_errors():
    with pytest.raises(ValueError, match="shapes"):
        re_ranking(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="dimensions"):
        re_ranking_features(np.zeros((2, 3)), np.zeros((4, 5)), device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(medium):
    qf, gf, (qg, qq, gg) = medium
    expected = re_ranking(qg, qq, gg)
    for dtype in (np.float64, np.float32):
        out = re_ranking_features(qf.astype(dtype), gf.astype(dtype), device="cuda")
        np.testing.assert_allclose(out, expected, atol=1e-5)
