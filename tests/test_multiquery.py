"""Multi-query pooling against a plain loop."""

from __future__ import annotations

import numpy as np
import pytest

from genreid.eval.ranking.multiquery import pool_multiquery


def l2n(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def loop_reference(q, qp, qc, mq, mp, mc, method: str, normalize: bool) -> np.ndarray:
    out = []
    for f, p, c in zip(q, qp, qc, strict=True):
        sel = (mp == p) & (mc == c)
        feats = (l2n(mq[sel]) if normalize else mq[sel]) if sel.any() else None
        if feats is None:
            pooled = l2n(f) if normalize else f
        else:
            pooled = feats.mean(0) if method == "mean" else feats.max(0)
        out.append(l2n(pooled) if normalize else pooled)
    return np.stack(out)


@pytest.mark.parametrize("method", ["mean", "max"])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_loop(method: str, normalize: bool) -> None:
    rng = np.random.default_rng(1)
    nq, nmq, d = 30, 200, 16
    qp = rng.integers(0, 12, nq)
    qc = rng.integers(1, 4, nq)
    qp[0], qc[0] = 99, 1  # identity without multi-query images: keeps its own feature
    mp = rng.integers(0, 12, nmq)
    mc = rng.integers(1, 4, nmq)
    q = rng.normal(size=(nq, d)).astype(np.float32)
    mq = rng.normal(size=(nmq, d)).astype(np.float32)
    got = pool_multiquery(q, qp, qc, mq, mp, mc, method=method, normalize=normalize)
    want = loop_reference(q, qp, qc, mq, mp, mc, method, normalize)
    assert got.shape == (nq, d) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[0], l2n(q[0]) if normalize else q[0], rtol=1e-5)


def test_same_identity_other_camera_not_pooled() -> None:
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    mq = np.array([[0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    got = pool_multiquery(q, [5], [1], mq, [5, 5], [2, 1], method="mean", normalize=False)
    np.testing.assert_allclose(got, [[1.0, 1.0]])


def test_empty_multiquery_set_and_bad_method() -> None:
    q = np.eye(3, dtype=np.float32)
    got = pool_multiquery(q, [1, 2, 3], [1, 1, 1], np.zeros((0, 3)), [], [], method="max")
    np.testing.assert_allclose(got, q)
    with pytest.raises(ValueError, match="mean or max"):
        pool_multiquery(q, [1, 2, 3], [1, 1, 1], q, [1, 2, 3], [1, 1, 1], method="median")
