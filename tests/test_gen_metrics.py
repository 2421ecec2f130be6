"""Generation metrics: Frechet distance vs scipy, SSIM vs scikit-image, extractors, pairing."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from genreid.eval.generation import extractors, inception
from genreid.eval.generation import gen_metrics as gm
from genreid.eval.generation.extractors import GenMetricsError
from tests.fixtures import make_market_tree, write_jpeg

pytestmark = pytest.mark.usefixtures("one_thread")


def _stats(rng, n, d, scale=1.0, shift=0.0):
    x = rng.normal(size=(n, d)) @ (np.eye(d) + scale * rng.normal(size=(d, d)) / np.sqrt(d))
    return gm.feature_stats(x + shift)


@pytest.mark.parametrize("method", ["auto", "eigh"])
@pytest.mark.parametrize("d", [8, 64, 128])
def test_frechet_matches_scipy_sqrtm(method, d):
    rng = np.random.default_rng(d)
    a, b = _stats(rng, 4 * d, d), _stats(rng, 4 * d, d, scale=0.5, shift=0.3)
    ours = gm.frechet_distance(*a, *b, method=method)
    ref = gm.frechet_distance_sqrtm(*a, *b)
    assert abs(ours - ref) < 1e-6, (ours, ref)
    assert abs(gm.frechet_distance(*a, *a, method=method)) < 1e-6


def test_frechet_with_singular_covariances():
    rng = np.random.default_rng(0)
    a, b = _stats(rng, 10, 32), _stats(rng, 12, 32, shift=1.0)  # fewer samples than dims
    auto, eigh = gm.frechet_distance(*a, *b), gm.frechet_distance(*a, *b, method="eigh")
    assert np.isfinite(auto) and abs(auto - eigh) < 1e-6 and auto > 0
    with pytest.raises(GenMetricsError, match="do not match"):
        gm.frechet_distance(a[0], a[1], b[0][:5], b[1][:5, :5])
    with pytest.raises(GenMetricsError, match="at least 2"):
        gm.feature_stats(np.zeros((1, 4)))


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_ssim_matches_skimage(data_range):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 40, 24, generator=g, dtype=torch.float64)
    y = 0.6 * x + 0.4 * torch.rand(4, 3, 40, 24, generator=g, dtype=torch.float64)
    y[1] = torch.rand(3, 40, 24, generator=g, dtype=torch.float64)  # unrelated pair
    x, y = x * data_range, y * data_range
    ours = gm.ssim(x, y, data_range=data_range)
    for i in range(4):
        ref = structural_similarity(
            x[i].permute(1, 2, 0).numpy(),
            y[i].permute(1, 2, 0).numpy(),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=data_range,
            channel_axis=-1,
        )
        assert abs(float(ours[i]) - ref) < 1e-10
    assert torch.allclose(gm.ssim(x, x, data_range=data_range), torch.ones(4, dtype=torch.float64))


def test_sample_pairs():
    pairs = gm.sample_pairs(5, 200, seed=1)
    assert (pairs[:, 0] != pairs[:, 1]).all() and pairs.max() < 5
    assert (gm.sample_pairs(5, 200, seed=1) == pairs).all()
    groups = [0, 0, 1, 1, 1, 2]
    same = gm.sample_pairs(6, 100, seed=2, groups=groups)
    assert all(groups[i] == groups[j] and i != j for i, j in same)
    assert 5 not in same  # identity 2 has a single image


def test_inception_features_from_a_local_state_dict(tmp_path):
    weights = tmp_path / inception.FID_WEIGHTS_NAME
    torch.save(inception.fid_inception_v3().state_dict(), weights)  # random init, same layout
    ext = inception.inception_extractor(weights)
    assert ext.comparable and ext.size == (299, 299)
    with torch.no_grad():
        f = ext.fn(torch.rand(2, 3, 64, 32))
    assert f.shape == (2, 2048) and torch.isfinite(f).all()
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(GenMetricsError, match="not the FID Inception state dict"):
        inception.inception_extractor(bad)


def test_missing_inception_weights_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GENREID_INCEPTION_WEIGHTS", raising=False)

    def offline(url, dst):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(inception, "urllib_download", offline)  # tests never download
    with pytest.raises(GenMetricsError, match="failed \\(no network\\).*Put that file"):
        inception.find_inception_weights()
    with pytest.raises(GenMetricsError, match="downloading is off"):
        inception.find_inception_weights(download=False)
    with pytest.raises(GenMetricsError, match="not found at"):
        inception.find_inception_weights(tmp_path / "nope.pth")
    hub = tmp_path / "torch/hub/checkpoints" / inception.FID_WEIGHTS_NAME
    hub.parent.mkdir(parents=True, exist_ok=True)  # the failed fetch made the folder
    hub.write_bytes(b"x")
    assert inception.find_inception_weights() == hub  # where pytorch-fid users already have it


class _Tiny(torch.nn.Module):
    """Colour mean and spread: a 6-d stand-in for a re-ID network."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


def _folder(path, n, offset=0):
    for i in range(n):
        write_jpeg(path / f"{i:03d}.jpg", i + offset, size=(16, 32))
    return path


def test_reid_extractor_and_metrics(tmp_path):
    model = tmp_path / "reid.pt2"
    batch = torch.export.Dim("batch")
    program = torch.export.export(
        _Tiny(), (torch.rand(2, 3, 256, 128),), dynamic_shapes={"x": {0: batch}}
    )
    torch.export.save(program, str(model))
    real, fake = _folder(tmp_path / "real", 6), _folder(tmp_path / "fake", 5, offset=50)
    out = gm.compute_metrics(
        str(real), str(fake), feature_extractor=f"reid:{model}", ssim_pairs=10, ssim_size=(32, 16)
    )
    assert "fid" not in out and out["frechet_distance"] > 0
    assert out["comparable_with_published_fid"] is False and out["feature_dim"] == 6
    assert any("NOT comparable" in n for n in out["notes"])
    assert (
        out["ssim"]["fake"]["pairing"].startswith("random") and out["ssim"]["fake"]["pairs"] == 10
    )
    with pytest.raises(GenMetricsError, match="torch.export.save"):
        extractors.get_feature_extractor(f"reid:{tmp_path}")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(GenMetricsError, match="cannot be loaded"):
        extractors.get_feature_extractor(f"reid:{junk}")
    with pytest.raises(GenMetricsError, match="NAME:ARG"):
        extractors.get_feature_extractor("magic:thing")


def test_torchscript_extractor(tmp_path):
    import warnings

    path = tmp_path / "reid.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(_Tiny()), str(path))
    ext = extractors.get_feature_extractor(f"reid:{path}")
    assert ext.fn(torch.rand(3, 3, 256, 128)).shape == (3, 6) and not ext.comparable


def test_registered_extractor_hook(tmp_path, monkeypatch):
    monkeypatch.setattr(
        extractors.FEATURE_EXTRACTORS, "_entries", dict(extractors.FEATURE_EXTRACTORS._entries)
    )
    seen = []

    def loader(arg, device):
        seen.append(arg)
        return lambda x: x.mean(dim=(2, 3))

    extractors.register_feature_extractor("reid", loader)
    real, fake = _folder(tmp_path / "r", 4), _folder(tmp_path / "f", 4, offset=9)
    out = gm.compute_metrics(
        str(real), str(fake), feature_extractor="reid:runs/ide", ssim_pairs=4, ssim_size=(32, 16)
    )
    assert seen == ["runs/ide"] and out["feature_space"] == "reid:runs/ide"
    assert out["comparable_with_published_fid"] is False


def test_reid_run_folder_extractor(tmp_path):
    import json

    from typer.testing import CliRunner

    from genreid.cli import app
    from genreid.data.datasets import load_dataset
    from genreid.engine.tasks.reid import train
    from genreid.eval.ranking.extract import load_trained_model, reid_features
    from tests.test_train_engine import make_data, tiny_cfg

    root, _ = make_data(tmp_path, n_gen=0)
    run = tmp_path / "run"
    train(tiny_cfg(root, None, "train.epochs=1", "train.max_iters=1"), run)
    real = _folder(tmp_path / "real", 6)
    fake = _folder(tmp_path / "fake", 5, offset=50)
    res = CliRunner().invoke(
        app,
        ["gan", "metrics", "--real", str(real), "--fake", str(fake)]
        + ["--feature-extractor", f"reid:{run}", "--ssim-pairs", "4", "--ssim-size", "32x16"],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert np.isfinite(out["frechet_distance"]) and "fid" not in out
    assert out["comparable_with_published_fid"] is False
    assert any("NOT comparable" in n for n in out["notes"])
    # the same features as the run's own evaluation (test_transform, eval.flip, L2-normalised)
    recs = load_dataset("market1501", root).query
    ext = extractors.get_feature_extractor(f"reid:{run}")
    ours = extractors.image_features(ext, [r.path for r in recs])
    model, data, ev, _ = load_trained_model(run)
    ref = reid_features(model, recs, data.size, flip=ev.flip)
    np.testing.assert_allclose(ours, ref.double().numpy(), atol=1e-5)
    (run / "checkpoints" / "last.pt").unlink()
    with pytest.raises(GenMetricsError, match="without checkpoints/last.pt"):
        extractors.get_feature_extractor(f"reid:{run}")


def test_real_dataset_pairs_by_identity(tmp_path):
    root = make_market_tree(tmp_path / "m", size=(16, 32))
    s = gm.image_set(f"market1501:{root}")
    assert len(s.paths) == 12 and s.pids is not None
    res = gm.ssim_diversity(s, num_pairs=6, size=(32, 16))
    assert res["pairing"] == "same identity"
    assert res["mean"] == pytest.approx(1.0)  # the fixture's identities are flat colours
    with pytest.raises(GenMetricsError, match="folder of images"):
        gm.image_set(str(tmp_path / "missing"))
