"""Generated-image measures in the synthetic space: k-NN precision/recall against their
definition, KID against its formula, known answers, the pinned feature space and the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from genreid.cli import app
from genreid.data import transforms
from genreid.eval.generation import gen_quality as gq
from genreid.eval.generation.extractors import GenMetricsError, image_features
from genreid.models.pretrained import shipped_path
from genreid.models.reid import ModelConfig, build_model
from tests.fixtures import write_jpeg


def brute_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """The definition, one point at a time."""

    def radius(x: np.ndarray, i: int) -> float:
        d = sorted(np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i)
        return d[k - 1]

    def inside(ref: np.ndarray, q: np.ndarray) -> float:
        radii = [radius(ref, i) for i in range(len(ref))]
        hits = [
            any(np.linalg.norm(p - r) <= rad for r, rad in zip(ref, radii, strict=True)) for p in q
        ]
        return float(np.mean(hits))

    return inside(real, fake), inside(fake, real)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(4, 12), st.integers(4, 12), st.integers(1, 3), st.integers(0, 2**31 - 1),
)  # fmt: skip
def test_precision_recall_is_the_definition(n_real, n_fake, k, seed):
    rng = np.random.default_rng(seed)
    real, fake = rng.normal(size=(n_real, 3)), rng.normal(0.5, 1.5, size=(n_fake, 3))
    ours = gq.precision_recall(real, fake, k)
    assert ours == pytest.approx(brute_precision_recall(real, fake, k))


def test_identical_sets_score_one_and_disjoint_clusters_zero():
    x = np.random.default_rng(0).normal(size=(50, 8))
    assert gq.precision_recall(x, x) == (1.0, 1.0)
    assert gq.precision_recall(x, x + 100.0) == (0.0, 0.0)
    # the real images plus as many far away: half the generated images are real-like
    # (precision 1/2) and every real image is itself a generated one (recall 1)
    fake = np.concatenate([x, x + 100.0])
    assert gq.precision_recall(x, fake) == (0.5, 1.0)


def test_knn_radii_by_hand():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(gq.knn_radii(x, 1), [1, 1, 2, 4])
    np.testing.assert_allclose(gq.knn_radii(x, 3), [7, 6, 4, 7])


def test_mmd_is_the_unbiased_estimator_written_out():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 3)), rng.normal(1, 1, size=(6, 3))

    def kern(a, b):
        return (a @ b / 3 + 1) ** 3

    xx = sum(kern(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(kern(y[i], y[j]) for i in range(6) for j in range(6) if i != j) / 30
    xy = sum(kern(a, b) for a in x for b in y) / 30
    assert gq._mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy)
    # subsets as large as the smaller set: every subset of x is x itself (a permutation)
    mean, std = gq.kid(x, x[:5], subsets=3)
    assert mean == pytest.approx(gq._mmd2_unbiased(x, x)) and std == pytest.approx(0, abs=1e-12)


def test_kid_separates_distributions():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    same, _ = gq.kid(a, b, subsets=20, subset_size=100)
    shifted, _ = gq.kid(a, b + 1.0, subsets=20, subset_size=100)
    assert abs(same) < 0.05 < shifted


def test_too_few_images_is_one_line_naming_the_minimum():
    x = np.zeros((3, 2))
    with pytest.raises(GenMetricsError, match="at least 4 images per set") as err:
        gq.quality(np.ones((10, 2)), x)
    assert "\n" not in str(err.value)


def test_the_space_is_the_pinned_shipped_backbone(tmp_path, monkeypatch):
    space = gq.synthetic_space()
    assert space.size == (128, 64) and "5954d624f583" in space.name
    paths = []
    for i in range(5):
        paths.append(str(write_jpeg(tmp_path / f"{i}.jpg", i, size=(64, 128))))
    f = image_features(space, paths)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1, atol=1e-6)
    # the tiny recipe's test feature of the shipped backbone: image + mirror, L2-normalised
    model = build_model(ModelConfig(arch="ide_tiny", pretrained="synthetic"), 1).eval()
    pipeline = transforms.test_transform((128, 64))
    x = torch.stack([pipeline(Image.open(p).convert("RGB")) for p in paths])
    with torch.no_grad():
        ref = torch.nn.functional.normalize(model(x) + model(x.flip(-1)), dim=1)
    np.testing.assert_allclose(f, ref.double().numpy(), atol=1e-5)
    monkeypatch.setattr(gq, "SPACE_SHA256", "0" * 64)
    with pytest.raises(GenMetricsError, match=re.escape(str(shipped_path("resnet18", 16)))):
        gq.synthetic_space()


def test_gan_metrics_prints_the_measures_with_the_real_halves(tmp_path):
    real, fake = tmp_path / "real", tmp_path / "fake"
    for i in range(10):
        write_jpeg(real / f"{i}.jpg", i, size=(32, 64))
        write_jpeg(fake / f"{i}.jpg", 100 + i, size=(32, 64))
    res = CliRunner().invoke(
        app, ["gan", "metrics", "--real", str(real), "--fake", str(fake), "--ssim-pairs", "4"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    g = out["generated"]
    assert {"frechet", "kid", "precision", "recall"} <= set(g) and g["k"] == 3
    assert 0 <= g["precision"] <= 1 and 0 <= g["recall"] <= 1 and g["frechet"] > 0
    assert g["real_halves"]["real_images"] == 5 and "fid" not in out  # no download asked for
    same = CliRunner().invoke(
        app, ["gan", "metrics", "--real", str(real), "--fake", str(real), "--ssim-pairs", "4"]
    )
    g = json.loads(same.output)["generated"]
    assert g["precision"] == g["recall"] == 1.0 and g["frechet"] == pytest.approx(0, abs=1e-6)
    few = tmp_path / "few"
    for i in range(2):
        write_jpeg(few / f"{i}.jpg", i, size=(32, 64))
    bad = CliRunner().invoke(app, ["gan", "metrics", "--real", str(real), "--fake", str(few)])
    assert bad.exit_code == 1 and "at least 4 images per set" in bad.output


def test_transfer_rates_by_hand():
    feats = np.eye(3)[[0, 0, 1, 2]]  # identities 5, 5, 7, 9 on three axes
    centroids, ids = gq.identity_centroids(feats, [5, 5, 7, 9])
    assert ids.tolist() == [5, 7, 9] and np.allclose(centroids, np.eye(3))
    swaps = np.eye(3)[[0, 1, 1, 2]]  # nearest: 5, 7, 7, 9
    rates = gq.transfer_rates(swaps, centroids, ids, [5, 9, 7, 5], [7, 7, 5, 9])
    assert rates == {"appearance": 0.5, "structure": 0.5, "swaps": 4}
    pairs = gq.cross_identity_pairs([1, 1, 2, 3], 50, seed=0)
    assert len(pairs) == 50 and all([1, 1, 2, 3][a] != [1, 1, 2, 3][b] for a, b in pairs)
    with pytest.raises(GenMetricsError, match="2 or more identities"):
        gq.cross_identity_pairs([4, 4], 1, seed=0)


def test_real_images_from_a_list_file(tmp_path):
    from genreid.eval.generation.gen_metrics import image_set

    paths = [str(write_jpeg(tmp_path / f"{i}.jpg", i, size=(32, 64))) for i in range(5)]
    listed = tmp_path / "train_images.txt"
    listed.write_text("\n".join(paths) + "\n")
    assert image_set(str(listed)).paths == paths
    listed.write_text(paths[0] + "\n" + str(tmp_path / "gone.jpg") + "\n")
    with pytest.raises(GenMetricsError, match="1 missing, e.g. .*gone.jpg"):
        image_set(str(listed))
