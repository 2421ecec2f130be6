"""GAN runs record the generated-image measures: against held-out real images, per cluster,
without changing what training draws, and as the measures of the same images by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genreid.core.checkpoint import load_checkpoint
from genreid.core.errors import ConfigError
from genreid.engine.tasks.gan import train_gan
from genreid.eval.generation import gen_quality as gq
from genreid.eval.generation.extractors import GenMetricsError, image_features
from genreid.models.gan import build_gan
from tests.test_gan_training import cfg_for, market  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
KEYS = ("frechet", "kid", "precision", "recall")


def test_holdout_split_is_seeded_disjoint_and_sized():
    items = list(range(40))
    kept, held = gq.holdout_split(items, 0.25, seed=3)
    assert len(held) == 10 and sorted(kept + held) == items and not set(kept) & set(held)
    assert gq.holdout_split(items, 0.25, seed=3) == (kept, held)
    assert gq.holdout_split(items, 0.25, seed=4)[1] != held
    assert gq.holdout_split(items, 0.0, seed=3) == (items, [])
    assert len(gq.holdout_split(items, 0.01, seed=3)[1]) == 4  # never fewer than k + 1
    with pytest.raises(GenMetricsError, match="too few to hold out"):
        gq.holdout_split(items[:4], 0.5, seed=0)
    with pytest.raises(ConfigError, match="measure.holdout"):
        gq.MeasureConfig(holdout=1.0).check()


def test_a_gan_run_records_the_measures_against_held_out_images(tmp_path, market):  # noqa: F811
    run = tmp_path / "run"
    cfg = cfg_for(market, "dcgan", "train.epochs=1", "measure.holdout=0.34", "measure.images=6")
    res = train_gan(cfg, run)
    saved = json.loads((run / "results.json").read_text())
    g = saved["generated"]
    assert g == res["generated"] and g["against"] == "held-out training images"
    assert g["real_images"] == 4 and g["fake_images"] == 6 and g["iteration"] == res["iteration"]
    trained = (run / "train_images.txt").read_text().splitlines()
    held = (run / "measure_images.txt").read_text().splitlines()
    assert len(trained) == 8 and len(held) == 4 and not set(trained) & set(held)
    last = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert all(last[f"gen/{k}"] == pytest.approx(g[k]) for k in KEYS)
    # the same numbers by hand: the run's generator, the same noise, the held-out images
    G, _ = build_gan(cfg.model, cfg.data.size)
    G.load_state_dict(load_checkpoint(run / "checkpoints" / "last.pt")["modules"]["G"])
    G.eval()
    space = gq.synthetic_space()
    with torch.no_grad():
        fake = (G(G.sample_z(6, torch.Generator().manual_seed(0))) + 1) / 2
    q = gq.quality(image_features(space, held), gq.tensor_features(space, fake))
    assert all(q.as_dict()[k] == pytest.approx(g[k], rel=1e-6, abs=1e-9) for k in KEYS)


def test_measuring_changes_nothing_training_draws(tmp_path, market):  # noqa: F811
    """Measured every epoch or never, the generator ends with the same weights."""
    weights = []
    for on in ("true", "false"):
        run = tmp_path / on
        cfg = cfg_for(
            market, "dcgan", "train.epochs=2", "train.eval_every=1", f"measure.enabled={on}"
        )
        train_gan(cfg, run)
        weights.append(load_checkpoint(run / "checkpoints" / "last.pt")["modules"]["G"])
        assert ("generated" in json.loads((run / "results.json").read_text())) == (on == "true")
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_per_cluster_gans_are_measured_per_cluster(tmp_path, market):  # noqa: F811
    from genreid.data.datasets import load_dataset

    train = load_dataset("market1501", str(market)).train
    manifest = tmp_path / "clusters.csv"
    rows = [f"{r.path},{i % 2}" for i, r in enumerate(train)]
    manifest.write_text("path,cluster\n" + "\n".join(rows) + "\n")
    run = tmp_path / "slsr"
    res = train_gan(cfg_for(market, "dcgan", "train.epochs=1", f"data.clusters={manifest}"), run)
    for c in ("0", "1"):
        g = res["clusters"][c]["generated"]
        assert g["against"] == "the training images" and g["real_images"] == 6
        assert np.isfinite([g[k] for k in KEYS]).all()


def test_too_few_images_skip_the_measures_and_keep_the_run(tmp_path, market):  # noqa: F811
    from genreid.data.datasets import load_dataset

    train = load_dataset("market1501", str(market)).train
    manifest = tmp_path / "clusters.csv"
    rows = [f"{r.path},{0 if i < 9 else 1}" for i, r in enumerate(train)]
    manifest.write_text("path,cluster\n" + "\n".join(rows) + "\n")
    res = train_gan(
        cfg_for(
            market, "dcgan", "train.epochs=1", "train.batch_size=2", f"data.clusters={manifest}"
        ),
        tmp_path / "run",
    )
    assert res["status"] == "done"
    assert "need 4" in res["clusters"]["1"]["generated"]["skipped"]
    # `genreid gan measure` measures the large cluster and says why not the small one
    from genreid.engine.gan_quality import measure_gan_run

    per = measure_gan_run(tmp_path / "run", draws=1)["generators"]
    assert per["cluster_0"]["generated"]["draws"][0]["real_images"] == 9
    assert "at least 4" in per["cluster_1"]["skipped"]


def test_gan_measure_redraws_the_run_measure_and_scores_real_images_beside(tmp_path, market):  # noqa: F811
    """Draw 0 is the run's own end measure; the draws' mean and std are theirs; with images
    held out, as many real training images are scored against them (the ceiling)."""
    from typer.testing import CliRunner

    from genreid.cli import app
    from genreid.engine.gan_quality import measure_gan_run

    run = tmp_path / "run"
    train_gan(cfg_for(market, "dcgan", "train.epochs=1", "measure.holdout=0.34"), run)
    own = json.loads((run / "results.json").read_text())["generated"]
    res = measure_gan_run(run, draws=2)["generators"]["all"]
    gen = res["generated"]
    assert res["against"] == own["against"] and res["reference_images"] == 4
    assert all(gen["draws"][0][k] == pytest.approx(own[k], rel=1e-6, abs=1e-9) for k in KEYS)
    assert gen["draws"][1]["frechet"] != gen["draws"][0]["frechet"]  # other noise
    for k in KEYS:
        vals = [d[k] for d in gen["draws"]]
        assert gen[k] == pytest.approx(np.mean(vals))
        assert gen["std"][k] == pytest.approx(np.std(vals))
    assert res["real_training_images"]["draws"][0]["fake_images"] == 4  # as many as held out
    out = tmp_path / "m.json"
    cli = CliRunner().invoke(app, ["gan", "measure", "--run", str(run), "--draws", "2",
                                   "--out", str(out)])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert json.loads(out.read_text())["generators"]["all"] == res
    assert "all real" in cli.output and "all generated" in cli.output
    # without a held-out share the reference is the training set, and there is no ceiling
    plain = tmp_path / "plain"
    train_gan(cfg_for(market, "dcgan", "train.epochs=1"), plain)
    res = measure_gan_run(plain, draws=1)["generators"]["all"]
    assert res["against"] == "the training images" and "real_training_images" not in res


def test_gan_measure_errors_name_the_fix(tmp_path, market):  # noqa: F811
    from genreid.engine.gan_quality import measure_gan_run

    run = tmp_path / "run"
    train_gan(cfg_for(market, "dcgan", "train.epochs=1", "measure.holdout=0.34"), run)
    with pytest.raises(GenMetricsError, match="--draws: expected at least 1"):
        measure_gan_run(run, draws=0)
    with pytest.raises(GenMetricsError, match="at least 4"):
        measure_gan_run(run, draws=1, num=3)  # fewer generated images than k + 1
    (run / "train_images.txt").unlink()
    with pytest.raises(GenMetricsError, match="gan metrics"):
        measure_gan_run(run, draws=1)
