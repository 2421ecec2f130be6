"""``compute_distance`` against plain NumPy for every metric, block size and input type."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genreid.eval.ranking import compute_distance


def numpy_distance(qf: np.ndarray, gf: np.ndarray, metric: str) -> np.ndarray:
    """Plain float64 definitions."""
    q, g = qf.astype(np.float64), gf.astype(np.float64)
    if metric == "cosine":
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        gn = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        return 1.0 - qn @ gn.T
    sq = ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    return np.sqrt(sq) if metric == "euclidean" else sq


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(0)
    return rng.standard_normal((23, 16)).astype(np.float32), rng.standard_normal((37, 16))


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("block_size", [1, 5, 23, 100, None])
def test_matches_numpy(feats, metric, block_size):
    qf, gf = feats
    out = compute_distance(qf, gf.astype(np.float32), metric, device="cpu", block_size=block_size)
    assert out.dtype == np.float32 and out.shape == (23, 37)
    np.testing.assert_allclose(out, numpy_distance(qf, gf, metric), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "sqeuclidean"])
def test_float64_and_torch_inputs(feats, metric):
    qf, gf = feats
    expected = numpy_distance(qf, gf, metric)
    out64 = compute_distance(qf.astype(np.float64), gf, metric, device="cpu")
    np.testing.assert_allclose(out64, expected, rtol=1e-6, atol=1e-6)
    out_t = compute_distance(torch.from_numpy(qf), torch.from_numpy(gf), metric, device="cpu")
    np.testing.assert_allclose(out_t, expected, rtol=1e-5, atol=1e-6)


def test_memory_budget_blocks(feats):
    qf, gf = feats
    tiny = compute_distance(qf, gf, "euclidean", device="cpu", memory_budget_mb=1e-4)
    np.testing.assert_allclose(tiny, numpy_distance(qf, gf, "euclidean"), rtol=1e-5, atol=1e-5)


def test_euclidean_self_distance_is_clamped():
    x = (np.random.default_rng(1).standard_normal((10, 64)) * 100).astype(np.float32)
    d = compute_distance(x, x, "euclidean", device="cpu")
    assert np.all(d >= 0) and np.all(np.isfinite(d))
    assert np.all(np.diag(d) < 1e-1 * np.median(d))


def test_zero_vector_cosine_and_errors():
    q = np.zeros((1, 4), dtype=np.float32)
    g = np.eye(4, dtype=np.float32)
    np.testing.assert_allclose(compute_distance(q, g, device="cpu"), np.ones((1, 4)))
    with pytest.raises(ValueError, match="metric"):
        compute_distance(q, g, "manhattan")
    with pytest.raises(ValueError, match="dimensions"):
        compute_distance(q, g[:, :3])
    assert compute_distance(q[:0], g, device="cpu").shape == (0, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("metric", ["cosine", "euclidean", "sqeuclidean"])
def test_cuda_matches_cpu(feats, metric):
    qf, gf = feats
    cpu = compute_distance(qf, gf, metric, device="cpu")
    gpu = compute_distance(qf, gf, metric, device="cuda", block_size=7)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-4)
