"""CMC / mAP / mINP of ``evaluate_rank`` on hand-made cases and against a brute-force loop.

``evaluate_rank`` ranks each query's true matches on one of two exact paths (sparse: the few
items below the hardest match are binary-searched; dense: counting or sorting the row), chosen
by a cost model; ``PATHS`` force each of them (and the torch code used for CUDA tensors,
run here on CPU tensors) so that every one is checked against the brute force.
"""

from __future__ import annotations

import contextlib
import warnings
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genreid.eval.ranking import evaluate_rank, metrics

# Module settings forcing one path; "torch" runs the CUDA code path on CPU tensors.
PATHS = {
    "auto": {"SPARSE_NS": metrics.SPARSE_NS},
    "sparse": {"SPARSE_NS": 0},
    "dense": {"SPARSE_NS": 1e30, "SORT_NS": np.inf},
    "sorted": {"SPARSE_NS": 1e30, "SORT_NS": -1},
    "torch": {"_as_distmat": lambda d: torch.from_numpy(np.array(d))},
    "torch_dense": {"SPARSE_NS": 1e30, "_as_distmat": lambda d: torch.from_numpy(np.array(d))},
    "torch_sparse": {"SPARSE_NS": 0, "_as_distmat": lambda d: torch.from_numpy(np.array(d))},
}


@contextlib.contextmanager
def forced_path(path: str):
    """Patch ``genreid.eval.ranking.metrics`` so that ``evaluate_rank`` takes ``path``."""
    with mock.patch.multiple(metrics, **PATHS[path]):
        yield


# Gallery of the hand case: (pid, camera) per index.
G_PIDS = np.array([1, 0, -1, 1, 2, 1, 3])
G_CAMS = np.array([0, 1, 1, 1, 2, 2, 1])
Q_PIDS = np.array([1, 2, 3, 5])
Q_CAMS = np.array([0, 1, 1, 0])
DIST = np.array(
    [
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
        [0.9, 0.05, 0.01, 0.3, 0.2, 0.8, 0.1],
        [0.5, 0.4, 0.3, 0.2, 0.1, 0.6, 0.7],
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    ],
    dtype=np.float32,
)


def brute_force(dist, q_pids, g_pids, q_cams, g_cams, max_rank, trapezoid=False):
    """Per-query definition: stable argsort, drop same-id-same-camera and junk, read ranks."""
    cmcs, aps, inps = [], [], []
    for i in range(len(q_pids)):
        order = np.argsort(dist[i], kind="stable")
        gp, gc = g_pids[order], g_cams[order]
        keep = ~(((gp == q_pids[i]) & (gc == q_cams[i])) | (gp == -1))
        hits = np.flatnonzero(gp[keep] == q_pids[i])  # 0-based ranks of true matches
        if len(hits) == 0:
            continue
        cmcs.append([float(hits[0] <= k) for k in range(max_rank)])
        precision = (np.arange(len(hits)) + 1) / (hits + 1)
        if trapezoid:
            old = np.array([j / r if r > 0 else 1.0 for j, r in enumerate(hits)])
            precision = (old + precision) / 2
        aps.append(precision.mean())
        inps.append(len(hits) / (hits[-1] + 1))
    return np.mean(cmcs, 0), float(np.mean(aps)), float(np.mean(inps))


def test_hand_case_market():
    # Query 0 (pid 1, cam 0): g0 is pid 1 on cam 0 -> removed; g2 is junk -> removed.
    #   kept order: g1 (distractor 0), g3 (match), g4, g5 (match), g6
    #   matches at ranks 2 and 4: AP = (1/2 + 2/4) / 2 = 1/2, INP = 2/4, first hit at rank 2.
    # Query 1 (pid 2, cam 1): junk g2 (0.01) removed; kept order g1, g6, g4 (match), g3, g5, g0
    #   match at rank 3: AP = 1/3, INP = 1/3.
    # Query 2 (pid 3, cam 1): its only gallery image g6 is on cam 1 -> no valid match, skipped.
    # Query 3 (pid 5): not in the gallery, skipped.
    cmc, mAP, per_query = evaluate_rank(
        DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5, return_per_query=True
    )
    np.testing.assert_allclose(cmc, [0.0, 0.5, 1.0, 1.0, 1.0])
    assert mAP == pytest.approx((1 / 2 + 1 / 3) / 2)
    np.testing.assert_allclose(per_query["ap"], [1 / 2, 1 / 3])
    np.testing.assert_allclose(per_query["inp"], [2 / 4, 1 / 3])
    assert per_query["mINP"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    np.testing.assert_array_equal(per_query["valid"], [True, True, False, False])
    np.testing.assert_array_equal(per_query["first_rank"], [1, 2])


def test_hand_case_trapezoid():
    # compute_AP.m: sum over matches of (old_precision + precision) / 2 / n_matches.
    # Query 0: match j=0 at 0-based rank 1: precision 1/2, old 0/1 -> (0 + 1/2)/2/2 = 1/8;
    #          match j=1 at rank 3: precision 2/4, old 1/3 -> (1/3 + 1/2)/2/2 = 5/24; AP = 1/3.
    # Query 1: match j=0 at rank 2: precision 1/3, old 0/2 -> (0 + 1/3)/2 = 1/6.
    cmc, mAP = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5, ap="trapezoid")
    assert mAP == pytest.approx((1 / 3 + 1 / 6) / 2)
    np.testing.assert_allclose(cmc, [0.0, 0.5, 1.0, 1.0, 1.0])


def test_minp_and_trapezoid_single_query():
    # Kept ranking (1-based): match, miss, match, miss, miss, match, miss.
    # AP = (1/1 + 2/3 + 3/6) / 3 = 13/18; INP = 3 matches / rank 6 of the last = 1/2.
    # Trapezoid: rank 0: (1 + 1)/2; rank 2: (1/2 + 2/3)/2; rank 5: (2/5 + 3/6)/2, each / 3
    #   = (1 + 7/12 + 9/20) / 3 = 61/90.
    g_pids = np.array([7, 8, 7, 9, 10, 7, 11])
    dist = np.arange(7, dtype=np.float32)[None, :]
    args = (dist, [7], g_pids, [0], np.ones(7, int))
    cmc, mAP, per_query = evaluate_rank(*args, max_rank=3, return_per_query=True)
    assert mAP == pytest.approx(13 / 18)
    assert per_query["mINP"] == pytest.approx(1 / 2)
    np.testing.assert_allclose(cmc, [1.0, 1.0, 1.0])
    assert evaluate_rank(*args, max_rank=3, ap="trapezoid")[1] == pytest.approx(61 / 90)


def test_ties_are_broken_by_gallery_index():
    # All distances equal: ranking is g0 (miss), g1 (match), g2 (match) -> AP = (1/2 + 2/3)/2.
    dist = np.zeros((1, 3), dtype=np.float32)
    cmc, mAP = evaluate_rank(dist, [1], [4, 1, 1], [0], [1, 1, 1], max_rank=2)
    assert mAP == pytest.approx((1 / 2 + 2 / 3) / 2)
    np.testing.assert_allclose(cmc, [0.0, 1.0])


def test_max_rank_beyond_gallery_pads_with_last_value():
    with pytest.warns(UserWarning, match="exceeds the gallery size"):
        cmc, _ = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=10)
    assert cmc.shape == (10,)
    np.testing.assert_allclose(cmc[2:], 1.0)


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate_rank(DIST[2:], Q_PIDS[2:], G_PIDS, Q_CAMS[2:], G_CAMS, max_rank=5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="protocol"):
        evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, protocol="duke")
    with pytest.raises(ValueError, match="ap"):
        evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, ap="11point")
    with pytest.raises(ValueError, match="entries"):
        evaluate_rank(DIST, Q_PIDS[:2], G_PIDS, Q_CAMS, G_CAMS)


def test_torch_input_and_float64_give_same_result():
    expected = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    for dist in (torch.from_numpy(DIST), DIST.astype(np.float64)):
        cmc, mAP = evaluate_rank(dist, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
        np.testing.assert_allclose(cmc, expected[0])
        assert mAP == pytest.approx(expected[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("path", ["auto", "sparse", "dense"])
@pytest.mark.parametrize("levels", [0, 5])
def test_cuda_tensor_input(path, levels):
    rng = np.random.default_rng(levels)
    dist = rng.integers(0, levels, (40, 90)) if levels else rng.random((40, 90))
    dist = dist.astype(np.float32)
    dist[0, :5] = np.inf
    labels = (rng.integers(0, 8, 40), rng.integers(-1, 8, 90), rng.integers(0, 3, 40))
    args = (labels[0], labels[1], labels[2], rng.integers(0, 3, 90))
    b_cmc, b_map, b_minp = brute_force(dist, *args, max_rank=10)
    with forced_path(path):
        gpu = evaluate_rank(
            torch.from_numpy(dist).cuda(), *args, max_rank=10, return_per_query=True
        )
        np.testing.assert_allclose(gpu[0], b_cmc, atol=1e-12)
        assert gpu[1] == pytest.approx(b_map, abs=1e-12)
        assert gpu[2]["mINP"] == pytest.approx(b_minp, abs=1e-12)
        dist[3, 7] = np.nan
        with pytest.raises(
            ValueError, match="1 NaN entry of 3600 \\(first at query 3, gallery 7\\)"
        ):
            evaluate_rank(torch.from_numpy(dist).cuda(), *args, max_rank=10)


@st.composite
def problems(draw):
    """Small random problems with junk, distractors, shared cameras and tied distances
    (some negative, some with +-inf and signed zero entries)."""
    n_q = draw(st.integers(1, 8))
    n_g = draw(st.integers(1, 25))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    levels = draw(st.sampled_from([3, 10, 0]))  # 0: continuous values (no ties)
    dist = rng.integers(0, levels, (n_q, n_g)) if levels else rng.random((n_q, n_g))
    dist = dist * draw(st.sampled_from([1.0, 0.1]))  # 0.1: float64 ties not exact in float32
    dist = dist - draw(st.sampled_from([0.0, 0.5, 5.0]))  # negative too
    if draw(st.booleans()):  # extreme and signed values
        special = rng.choice([np.inf, -np.inf, -0.0, 0.0], (n_q, n_g))
        dist = np.where(rng.random((n_q, n_g)) < 0.3, special, dist)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (
        dist.astype(dtype),
        rng.integers(0, 5, n_q),
        rng.integers(-1, 5, n_g),
        rng.integers(0, 3, n_q),
        rng.integers(0, 3, n_g),
    )


@settings(deadline=None, max_examples=300)
@given(problems(), st.integers(1, 30), st.booleans(), st.sampled_from(sorted(PATHS)))
def test_matches_brute_force(problem, max_rank, trapezoid, path):
    dist, q_pids, g_pids, q_cams, g_cams = problem
    has_match = any(
        ((g_pids == p) & (g_cams != c)).any() for p, c in zip(q_pids, q_cams, strict=True)
    )
    kind = "trapezoid" if trapezoid else "standard"
    with warnings.catch_warnings(), forced_path(path):
        warnings.simplefilter("ignore", UserWarning)  # max_rank beyond the gallery size
        if not has_match:
            with pytest.raises(ValueError):
                evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=max_rank, ap=kind)
            return
        cmc, mAP, pq = evaluate_rank(
            dist, q_pids, g_pids, q_cams, g_cams, max_rank, return_per_query=True, ap=kind
        )
    b_cmc, b_map, b_minp = brute_force(dist, q_pids, g_pids, q_cams, g_cams, max_rank, trapezoid)
    np.testing.assert_allclose(cmc, b_cmc, atol=1e-12)
    assert mAP == pytest.approx(b_map, abs=1e-12)
    assert pq["mINP"] == pytest.approx(b_minp, abs=1e-12)


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_of_rows_do_not_change_the_result(monkeypatch, path, dtype):
    rng = np.random.default_rng(3)
    dist = rng.integers(0, 20, (30, 50)).astype(dtype)
    args = (rng.integers(0, 6, 30), rng.integers(-1, 6, 50), rng.integers(0, 3, 30))
    args = (*args, rng.integers(0, 3, 50))
    expected = brute_force(dist, *args, max_rank=20)
    with forced_path(path):
        full = evaluate_rank(dist, *args, max_rank=20, return_per_query=True)
        monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 60)
        monkeypatch.setattr(metrics, "COMPARE_ELEMENTS", 70)
        blocked = evaluate_rank(dist, *args, max_rank=20, return_per_query=True)
    for result in (full, blocked):
        np.testing.assert_allclose(result[0], expected[0], atol=1e-12)
        assert result[1] == pytest.approx(expected[1], abs=1e-12)
        assert result[2]["mINP"] == pytest.approx(expected[2], abs=1e-12)


def _weak_problem(seed: int, n_q: int = 60, n_g: int = 3000, levels: int = 0, easy: int = 0):
    """Random distances (many negatives below each hardest match: the dense path), with
    ``levels`` distinct values if > 0 (ties; multiples of 0.1, so not exact in float32) and
    the first ``easy`` queries made easy (their true matches nearest: the sparse path), junk
    and distractors in the gallery."""
    rng = np.random.default_rng(seed)
    g_pids = rng.integers(-1, n_g // 15, n_g)
    q_pids = rng.integers(1, n_g // 15, n_q)
    q_cams, g_cams = rng.integers(0, 6, n_q), rng.integers(0, 6, n_g)
    dist = rng.integers(0, levels, (n_q, n_g)) * 0.1 if levels else rng.random((n_q, n_g))
    same = q_pids[:easy, None] == g_pids[None, :]
    dist[:easy] = np.where(same, dist[:easy] / 100, dist[:easy] + 1)
    return dist, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("levels", [0, 7, 300])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", ["auto", "dense", "sorted", "torch"])
def test_weak_features_match_brute_force(monkeypatch, levels, dtype, path):
    dist, *labels = _weak_problem(levels, levels=levels, easy=20)
    dist = dist.astype(dtype)
    seen = {"dense": 0}
    real = metrics._dense_ranks

    def spy(block, rows, *args):
        seen["dense"] += len(rows)
        return real(block, rows, *args)

    monkeypatch.setattr(metrics, "_dense_ranks", spy)
    with forced_path(path):
        cmc, mAP, pq = evaluate_rank(dist, *labels, max_rank=50, return_per_query=True)
    if path == "auto":  # random rows are dense, the easy ones sparse
        assert 30 <= seen["dense"] <= 40
    b_cmc, b_map, b_minp = brute_force(dist, *labels, max_rank=50)
    np.testing.assert_allclose(cmc, b_cmc, atol=1e-12)
    assert mAP == pytest.approx(b_map, abs=1e-12)
    assert pq["mINP"] == pytest.approx(b_minp, abs=1e-12)
    _, b_trap, _ = brute_force(dist, *labels, max_rank=50, trapezoid=True)
    with forced_path(path):
        assert evaluate_rank(dist, *labels, ap="trapezoid")[1] == pytest.approx(b_trap, abs=1e-12)


def test_queries_with_many_true_matches_are_sorted(monkeypatch):
    # 200 true matches per query: sorting the row is cheaper than 200 comparisons an entry.
    rng = np.random.default_rng(5)
    g_pids = np.repeat(np.arange(1, 11), 300)
    dist = rng.integers(0, 1000, (10, 3000)).astype(np.float32)
    labels = (np.arange(1, 11), g_pids, np.zeros(10, int), rng.integers(0, 3, 3000))
    sorts = []
    real = np.sort
    monkeypatch.setattr(
        metrics.np, "sort", lambda a, *args, **kw: sorts.append(1) or real(a, *args, **kw)
    )
    cmc, mAP, pq = evaluate_rank(dist, *labels, max_rank=20, return_per_query=True)
    monkeypatch.undo()
    assert sorts
    b_cmc, b_map, b_minp = brute_force(dist, *labels, max_rank=20)
    np.testing.assert_allclose(cmc, b_cmc, atol=1e-12)
    assert mAP == pytest.approx(b_map, abs=1e-12)
    assert pq["mINP"] == pytest.approx(b_minp, abs=1e-12)


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("where", ["positive", "negative", "junk", "no_match_query"])
def test_nan_distance_raises(path, where):
    # A NaN true-match distance used to give AP 1.0 silently.
    dist = DIST.copy()
    q, g = {"positive": (0, 3), "negative": (1, 6), "junk": (1, 2), "no_match_query": (2, 0)}[where]
    dist[q, g] = np.nan
    dist[3, 5] = np.nan  # a second one, later in the matrix
    with forced_path(path), pytest.raises(ValueError) as info:
        evaluate_rank(dist, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    message = str(info.value)
    assert f"2 NaN entries of 28 (first at query {q}, gallery {g})" in message
    assert "check the query and gallery features for NaN/inf" in message


def test_nan_from_bad_features_raises():
    rng = np.random.default_rng(0)
    labels = (rng.integers(0, 5, 20), rng.integers(0, 5, 60), rng.integers(0, 2, 20))
    dist = rng.random((20, 60)).astype(np.float32)
    dist[7] = np.nan  # e.g. cosine distance of a zero or inf feature
    with pytest.raises(
        ValueError, match="60 NaN entries of 1200 \\(first at query 7, gallery 0\\)"
    ):
        evaluate_rank(dist, *labels, rng.integers(0, 2, 60))


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_infinite_distances_rank_last_or_first(path, dtype):
    # +inf is the largest distance, -inf the smallest, ties between them by gallery index.
    # Query 0 (pid 1, cam 0): kept g1 (-inf), g3 (inf, match), g4 (inf), g5 (inf, match),
    #   g6 (0.7): ranking g1, g6, g3, g4, g5 -> matches at 0-based ranks 2 and 4:
    #   AP (1/3 + 2/5) / 2 = 11/30, INP 2/5.
    # Query 1 (pid 2, cam 1): kept g1 (0.05), g3 (0.3), g0 (0.9), g4 (inf, match), g5 (inf),
    #   g6 (inf): match at rank 3, AP = INP = 1/4.
    dist = DIST.astype(dtype)
    dist[0, [1, 3, 4, 5]] = [-np.inf, np.inf, np.inf, np.inf]
    dist[1, [4, 5, 6]] = np.inf
    with forced_path(path):
        cmc, mAP, pq = evaluate_rank(
            dist, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=6, return_per_query=True
        )
    np.testing.assert_allclose(pq["ap"], [11 / 30, 1 / 4])
    np.testing.assert_allclose(pq["inp"], [2 / 5, 1 / 4])
    b_cmc, b_map, b_minp = brute_force(dist, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=6)
    np.testing.assert_allclose(cmc, b_cmc)
    assert mAP == pytest.approx(b_map)
    assert pq["mINP"] == pytest.approx(b_minp)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_infinite_distances_of_weak_features_match_brute_force(path):
    dist, *labels = _weak_problem(11, n_g=800, levels=20, easy=10)
    rng = np.random.default_rng(12)
    dist[rng.random(dist.shape) < 0.2] = np.inf
    dist[rng.random(dist.shape) < 0.05] = -np.inf
    dist[rng.random(dist.shape) < 0.05] = 1e300  # float32: rounds to inf, ties settled exactly
    for dtype in (np.float64, np.float32):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # 1e300 -> float32 overflow
            d = dist.astype(dtype)
        with warnings.catch_warnings(), forced_path(path):
            warnings.simplefilter("error")  # no overflow warnings from the evaluation
            cmc, mAP, pq = evaluate_rank(d, *labels, max_rank=50, return_per_query=True)
        b_cmc, b_map, b_minp = brute_force(d, *labels, max_rank=50)
        np.testing.assert_allclose(cmc, b_cmc, atol=1e-12)
        assert mAP == pytest.approx(b_map, abs=1e-12)
        assert pq["mINP"] == pytest.approx(b_minp, abs=1e-12)


def _cuhk03_problem(seed: int, unique_gallery: bool):
    rng = np.random.default_rng(seed)
    n_q, n_ids = 20, 12
    if unique_gallery:  # one gallery image per identity (distractor 0 included)
        g_pids = np.arange(n_ids + 1)
    else:
        g_pids = np.concatenate([np.arange(n_ids + 1), rng.integers(0, n_ids + 1, 40), [-1]])
    q_pids = rng.integers(1, n_ids + 1, n_q)
    q_cams = np.zeros(n_q, int)
    g_cams = rng.integers(0, 2, len(g_pids))
    g_cams[q_pids] = 1  # every query identity has an image on another camera
    dist = rng.random((n_q, len(g_pids))).astype(np.float32)
    return dist, q_pids, g_pids, q_cams, g_cams


def test_cuhk03_classic_is_deterministic_and_keeps_market_ap():
    args = _cuhk03_problem(0, unique_gallery=False)
    a = evaluate_rank(*args, max_rank=10, protocol="cuhk03_classic", seed=3)
    b = evaluate_rank(*args, max_rank=10, protocol="cuhk03_classic", seed=3)
    market = evaluate_rank(*args, max_rank=10)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == market[1]  # AP on the full ranked list
    c = evaluate_rank(*args, max_rank=10, protocol="cuhk03_classic", seed=4, repeats=3)
    assert c[0].shape == (10,) and np.all(np.diff(c[0]) >= 0)


def test_cuhk03_classic_equals_market_with_one_image_per_identity():
    args = _cuhk03_problem(1, unique_gallery=True)
    classic = evaluate_rank(*args, max_rank=13, protocol="cuhk03_classic", seed=7)
    market = evaluate_rank(*args, max_rank=13)
    np.testing.assert_allclose(classic[0], market[0])
    assert classic[1] == pytest.approx(market[1])
