"""k-reciprocal re-ranking: the fast versions against the authors' semantics and the paper."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from genreid.eval.ranking import re_ranking, re_ranking_features, rerank
from genreid.eval.ranking.rerank_reference import (
    _original_distance,
    re_ranking_dense,
    re_ranking_loop,
)


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


# ---- the parts of the fast path, each against a plain version ----------------------------


def tie_features(n_q: int, n_g: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points on a small integer grid: many exactly tied distances and duplicate points."""
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 4, (n_q + n_g, 3)).astype(np.float64)
    return pts[:n_q], pts[n_q:]


def expansion_sets_loop(rank: np.ndarray, k1: int) -> list[np.ndarray]:
    """R*(i) item by item, as the authors' code builds it."""
    half = int(np.around(k1 / 2.0))

    def reciprocal(i: int, k: int) -> np.ndarray:
        forward = rank[i, : k + 1]
        return forward[np.where(rank[forward, : k + 1] == i)[0]]

    sets = []
    for i in range(len(rank)):
        recip, expansion = reciprocal(i, k1), reciprocal(i, k1)
        for cand in recip:
            cand_recip = reciprocal(cand, half)
            if len(np.intersect1d(cand_recip, recip)) > 2.0 / 3 * len(cand_recip):
                expansion = np.append(expansion, cand_recip)
        sets.append(np.unique(expansion))
    return sets


@pytest.mark.parametrize("seed,k1", [(0, 20), (1, 6), (2, 3), (3, 1)])
def test_expansion_sets_match_authors_loop(seed, k1):
    qf, gf = make_features(30, 90, 6, seed=seed) if seed % 2 else tie_features(30, 90, seed)
    x = np.concatenate([qf, gf])
    rank = np.argsort(euclid(x, x), axis=1, kind="stable")
    rows, cols = rerank.expansion_sets(rank, k1)
    expected = expansion_sets_loop(rank, k1)
    assert np.array_equal(rows, np.repeat(np.arange(len(x)), [len(s) for s in expected]))
    assert np.array_equal(cols, np.concatenate(expected))


@pytest.mark.parametrize("block", [5, 16, 50, 1000])
@pytest.mark.parametrize("ties", [False, True])
def test_neighbours_and_maxima_match_full_sort(block, ties):
    qf, gf = tie_features(20, 70, 4) if ties else make_features(20, 70, 5, seed=6)
    x = np.concatenate([qf, gf])
    full = euclid(x, x) ** 2
    width = 21
    left, right = rerank._augmented(torch.from_numpy(qf), torch.from_numpy(gf), torch.float64)
    values, index, maxima, qg = rerank._neighbours_and_maxima(left, right, 20, width, block)
    expected = np.sort(full, axis=1)[:, :width]
    np.testing.assert_allclose(values.numpy(), expected, atol=1e-9)
    # the listed items are distinct and sit at the listed distances (any choice among ties)
    assert all(len(set(row)) == width for row in index.numpy())
    np.testing.assert_allclose(np.take_along_axis(full, index.numpy(), 1), expected, atol=1e-9)
    np.testing.assert_allclose(maxima.numpy(), full.max(1), atol=1e-9)
    np.testing.assert_allclose(qg, full[:20, 20:], atol=1e-9)


def test_gemm_paths_agree(monkeypatch):
    rng = np.random.default_rng(7)
    a = torch.from_numpy(rng.standard_normal((300, 70), dtype=np.float32))
    b = torch.from_numpy(rng.standard_normal((200, 70), dtype=np.float32))
    exact = a.double() @ b.double().t()
    np.testing.assert_allclose(rerank._gemm_nt(a, b).double(), exact, atol=1e-4)
    monkeypatch.setattr(rerank, "_onednn_linear", lambda: False)
    assert torch.equal(rerank._gemm_nt(a, b), torch.mm(a, b.t()))


def test_features_float32_without_onednn(medium, monkeypatch):
    qf, gf, (qg, qq, gg) = medium
    q32, g32 = qf.astype(np.float32), gf.astype(np.float32)
    fast = re_ranking_features(q32, g32, device="cpu")
    monkeypatch.setattr(rerank, "_onednn_linear", lambda: False)
    plain = re_ranking_features(q32, g32, device="cpu")
    np.testing.assert_allclose(plain, fast, atol=1e-5)
    np.testing.assert_allclose(plain, re_ranking(qg, qq, gg), atol=1e-5)


def random_v(n_rows: int, n_cols: int, seed: int) -> sp.csr_matrix:
    """Sparse non-negative rows with values from a small set, so that minima often tie."""
    rng = np.random.default_rng(seed)
    dense = rng.choice([0.0, 0.0, 0.0, 0.125, 0.25, 0.5], size=(n_rows, n_cols))
    return sp.csr_matrix(dense)


@pytest.mark.parametrize("seed", [0, 1])
def test_min_overlap_numpy_and_torch_match_dense(seed):
    Vq, Vg = random_v(13, 40, seed), random_v(29, 40, seed + 10).astype(np.float32)
    dense_q, dense_g = Vq.toarray().astype(np.float32), Vg.toarray()
    expected = np.minimum(dense_q[:, None, :], dense_g[None, :, :]).sum(-1, dtype=np.float64)
    gT = Vg.T.tocsr()
    np.testing.assert_allclose(rerank._min_overlap(Vq, gT), expected, atol=1e-12)
    arrays = [
        torch.from_numpy(a)
        for a in (
            Vq.indptr.astype(np.int64),
            Vq.indices.astype(np.int64),
            Vq.data.astype(np.float32),
            gT.indptr.astype(np.int64),
            gT.indices.astype(np.int64),
            gT.data,
        )
    ]
    out = rerank._min_overlap_torch(*arrays, 29)
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("k1,k2,lam", [(20, 6, 0.3), (6, 3, 0.5), (5, 1, 0.1)])
def test_torch_jaccard_matches_scipy_path(ties, k1, k2, lam):
    # The torch Jaccard step (the CUDA path), run on the CPU, small batches included.
    qf, gf = tie_features(25, 80, 8) if ties else make_features(25, 80, 6, seed=9)
    dist = _original_distance(*distances(qf, gf))
    rank = np.argsort(dist, axis=1)  # as the reference loop, ties included

    def run(**kw):
        original = np.array(dist[:25, 25:], dtype=np.float32)
        args = (rank, lambda r, c: dist[r, c], original, k1, k2, lam)
        return rerank.rerank_from_neighbours(*args, **kw)

    scipy_out = run()
    np.testing.assert_allclose(
        scipy_out, re_ranking_loop(*distances(qf, gf), k1, k2, lam), atol=1e-6
    )
    for work in (None, 50):
        torch_out = run(device=torch.device("cpu"), work_elements=work)
        np.testing.assert_allclose(torch_out, scipy_out, atol=1e-7)
    np.testing.assert_allclose(run(work_elements=50), scipy_out, atol=1e-7)
