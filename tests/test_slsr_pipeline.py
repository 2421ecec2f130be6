"""The stage runner and ``genreid slsr``: stages skip and resume, the pipeline's runs use what
SLSR prescribes (cluster-tagged samples, N/k per cluster, both identity-set rules), the table
over seeds is a correct paired comparison, and bad configs fail before anything runs."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

import genreid.engine.slsr as slsr
from genreid.cli import app
from genreid.core.config import load_config
from genreid.core.errors import ConfigError, RunFolderError
from genreid.engine.reproduce.runner import run_jobs, stage_of
from genreid.engine.slsr import (
    SlsrConfig,
    dataset_root,
    markdown,
    paired_t,
    record_slsr,
    render_job,
    run_slsr,
    slsr_jobs,
    step_matched_epochs,
)
from genreid.engine.stages import Stage, newer_than, run_finished, run_stages
from tests.test_train_engine import make_data

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL_RECIPE = [
    "data.height=32", "data.width=16", "data.pad=2", "train.batch_size=8", "train.epochs=1",
    "train.progress=false", "train.eval_every=0", "model.width=8", "train.device=cpu",
    "model.pretrained=null",
]  # fmt: skip
SMALL_GAN = [
    "data.height=32", "data.width=16", "model.width=4", "model.depth=2", "train.batch_size=4",
    "train.epochs=1", "train.progress=false", "train.device=cpu", "train.min_iters=null",
]  # fmt: skip


def small_pipeline(root, *extra: str) -> SlsrConfig:
    overrides = [
        "data.synthetic.ids=0", f"data.root={root}", "seeds=[0, 1]", "k=[2]", "threads=1",
        f"recipe_overrides={SMALL_RECIPE}", f"gan_overrides={SMALL_GAN}", *extra,
    ]  # fmt: skip
    return load_config(SlsrConfig, "slsr_tiny", overrides)


def test_stages_run_in_order_skip_done_ones_and_continue_after_a_failure(tmp_path):
    ran: list[str] = []

    def make(name: str, fail: bool = False) -> Stage:
        marker = tmp_path / name

        def run() -> str:
            if fail and not (tmp_path / "fixed").exists():
                raise RuntimeError(f"{name} broke")
            ran.append(name)
            marker.touch()
            return name

        return Stage(name, run, marker.exists)

    stages = lambda: [make("a"), make("b", fail=True), make("c")]  # noqa: E731
    with pytest.raises(RuntimeError, match="b broke"):
        run_stages(stages())
    assert ran == ["a"]
    (tmp_path / "fixed").touch()
    assert run_stages(stages()) == {"a": None, "b": "b", "c": "c"}  # a is not run again
    assert ran == ["a", "b", "c"]


def test_run_finished_and_newer_than(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert not run_finished(run)
    (run / "results.json").write_text(json.dumps({"status": "interrupted", "epochs_completed": 1}))
    assert not run_finished(run)
    (run / "results.json").write_text(json.dumps({"status": "done", "epochs_completed": 3}))
    assert run_finished(run) and run_finished(run, 3) and not run_finished(run, 4)
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("x")
    b.write_text("y")
    os.utime(a, ns=(1_000_000_000, 1_000_000_000))
    assert newer_than(b, a) and not newer_than(a, b) and not newer_than(tmp_path / "none", a)
    assert newer_than(b, tmp_path / "missing")  # inputs that do not exist are ignored


def test_step_matched_epochs():
    assert step_matched_epochs(30, 632, 632) == 60 and step_matched_epochs(8, 1061, 1061) == 16
    assert step_matched_epochs(8, 1061, 500) == 12  # ceil(8 * 1561 / 1061) = ceil(11.77)


def test_paired_t_matches_a_hand_computed_value():
    # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t = 0.2 / (0.1 / sqrt 3) = 3.4641 with 2
    # degrees of freedom; two-sided p = 2 * (1 - F(3.4641)) = 0.0742 (t table)
    assert paired_t([0.1, 0.2, 0.3]) == pytest.approx(0.0742, abs=2e-4)
    assert paired_t([0.1]) is None and paired_t([0.2, 0.2]) is None


def test_markdown_table_marks_significant_rows():
    row = lambda m, p: {"mean": m, "std": 0.01, "per_seed": [m], "paired_p_vs_baseline": p}  # noqa: E731
    summary = {
        "dataset": "viper",
        "seeds": [0, 1, 2],
        "k": [2, 2, 3],
        "images_in_own_set": [0.9, 0.85, 0.8],
        "generated_nearest_own_centre": [0.5, 0.25, 1.0],
        "methods": {
            "baseline": {"runs": 3, "rank1": row(0.1, None), "mAP": row(0.2, None)},
            "slsr_majority": {"runs": 3, "rank1": row(0.125, 0.01), "mAP": row(0.25, 0.2)},
        },
    }
    text = markdown(summary)
    assert "majority set: 90%, 85%, 80%" in text and "own cluster's centre: 50%, 25%, 100%" in text
    assert "| baseline | 3 | 10.0 ± 1.0 | 20.0 ± 1.0 | – | – |" in text
    assert "| slsr_majority | 3 | 12.5 ± 1.0 | 25.0 ± 1.0 | 0.010 * | 0.200 |" in text
    summary["methods"]["baseline_steps"] = {
        "runs": 3, "rank1": row(0.11, 0.5), "mAP": row(0.21, 0.04),
    }  # fmt: skip
    summary["methods"]["slsr_majority"]["rank1"]["paired_p_vs_baseline_steps"] = 0.02
    summary["methods"]["slsr_majority"]["mAP"]["paired_p_vs_baseline_steps"] = 0.3
    text = markdown(summary)
    assert "| method | runs | rank-1 % | mAP % | p rank-1 | p mAP | p rank-1 (steps) |" in text
    assert (
        "| slsr_majority | 3 | 12.5 ± 1.0 | 25.0 ± 1.0 | 0.010 * | 0.200 | 0.020 * | 0.300 |"
        in text
    )
    assert "| baseline_steps | 3 | 11.0 ± 1.0 | 21.0 ± 1.0 | 0.500 | 0.040 * | – | – |" in text


def test_bad_pipeline_configs_fail_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        load_config(SlsrConfig, "slsr_tiny", ["data.root=/somewhere"])
    assert load_config(SlsrConfig, "slsr_tiny").data.describe() == "synthetic (120 ids, 6 cams)"
    assert load_config(SlsrConfig, "slsr_viper_tiny").data.describe() == "viper"
    with pytest.raises(ConfigError, match="distinct seeds"):
        load_config(SlsrConfig, "slsr_tiny", ["seeds=[1, 1]"])
    with pytest.raises(ConfigError, match="not a strategy to compare"):
        load_config(SlsrConfig, "slsr_tiny", ["compare=[slsr]"])
    with pytest.raises(ConfigError, match="Did you mean 'cluster_ids'"):
        load_config(SlsrConfig, "slsr_tiny", ["cluster_id=[any]"])
    res = CliRunner().invoke(app, ["slsr", "-c", "slsr_viper_tiny", "--out", str(tmp_path / "v")])
    assert res.exit_code == 1 and "data.root is empty" in res.output
    assert not (tmp_path / "v").exists()  # nothing written for a config that cannot run
    res = CliRunner().invoke(app, ["train", "-c", "slsr_tiny", "--out", str(tmp_path / "t")])
    assert res.exit_code == 1 and "genreid slsr --config slsr_tiny" in res.output
    root, _ = make_data(tmp_path, ids=4, n_gen=0)
    bad = small_pipeline(root, "gan_overrides=[model.widht=4]")
    with pytest.raises(ConfigError, match="model.widht"):
        run_slsr(bad, tmp_path / "p")
    assert not (tmp_path / "p" / "seed_0" / "baseline").exists()


def test_the_executor_keys_are_checked_and_reach_the_runner_with_absolute_paths(
    tmp_path, monkeypatch
):
    with pytest.raises(ConfigError, match="executor dask needs address tcp://HOST:PORT"):
        load_config(SlsrConfig, "slsr_tiny", ["executor=dask"])
    with pytest.raises(ConfigError, match="address goes only with executor dask"):
        load_config(SlsrConfig, "slsr_tiny", ["address=tcp://127.0.0.1:1"])
    with pytest.raises(ConfigError, match="executor: expected one of local, dask, got 'slurm'"):
        load_config(SlsrConfig, "slsr_tiny", ["executor=slurm"])
    root, _ = make_data(tmp_path, ids=4, n_gen=0)
    calls = []

    def fake_run_jobs(jobs, *args, **kwargs):
        calls.append((jobs, kwargs))
        raise RuntimeError("stop after planning")

    monkeypatch.setattr(slsr, "run_jobs", fake_run_jobs)
    monkeypatch.chdir(tmp_path)
    cfg = small_pipeline(root.relative_to(tmp_path), "executor=dask", "address=tcp://127.0.0.1:1")
    with pytest.raises(RuntimeError, match="stop after planning"):
        run_slsr(cfg, "p")  # relative folders: made absolute for the workers
    jobs, kwargs = calls[0]
    assert kwargs["executor"] == "dask" and kwargs["address"] == "tcp://127.0.0.1:1"
    assert all(os.path.isabs(job.out) for job in jobs.values())
    assert all(os.path.isabs(job.params["root"]) for job in jobs.values() if "root" in job.params)


def test_a_pipeline_folder_only_continues_the_same_pipeline(tmp_path):
    root, _ = make_data(tmp_path, ids=4, n_gen=0)
    record_slsr(small_pipeline(root), tmp_path / "p")
    record_slsr(small_pipeline(root, "seeds=[0, 1, 2]", "threads=2"), tmp_path / "p")
    record_slsr(small_pipeline(root, "compare=[lsro, pseudo_label]"), tmp_path / "p")
    with pytest.raises(RunFolderError, match="different k"):
        record_slsr(small_pipeline(root, "k=[3]"), tmp_path / "p")


def test_slsr_pipeline_end_to_end(tmp_path):
    root, _ = make_data(tmp_path, ids=8, n_gen=0)
    out = tmp_path / "pipe"
    cfg = small_pipeline(root, "generated=30")
    summary = run_slsr(cfg, out)

    names = ["baseline", "baseline_steps", "lsro", "slsr_majority", "slsr_any"]
    assert list(summary["methods"]) == names
    for row in summary["methods"].values():
        assert row["runs"] == 2 and len(row["rank1"]["per_seed"]) == 2
        assert all(0 <= v <= 1 for v in row["rank1"]["per_seed"] + row["mAP"]["per_seed"])
    assert summary["k"] == [2, 2]
    assert (out / "summary.md").is_file() and (out / "comparison.png").stat().st_size > 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["task"] == "slsr" and saved["seeds"] == [0, 1]

    seed = out / "seed_1"
    manifest = list(csv.DictReader((seed / "generated/manifest.csv").open()))
    assert Counter(r["cluster"] for r in manifest) == {"0": 15, "1": 15}  # N/k per cluster
    assert sorted(p.name for p in (seed / "gan").glob("cluster_*")) == ["cluster_0", "cluster_1"]
    for rule in ("majority", "any"):
        run_cfg = yaml.safe_load((seed / f"slsr_{rule}" / "config.yaml").read_text())
        labels = run_cfg["labels"]
        assert labels["strategy"] == "slsr" and labels["options"]["cluster_ids"] == rule
        assert labels["options"]["clusters"] == str(seed / "clusters/clusters.csv")
        assert run_cfg["data"]["generated"] == str(seed / "generated") and run_cfg["seed"] == 1
    check = json.loads((seed / "generated_check.json").read_text())
    assert (seed / "generated_samples.png").stat().st_size > 0
    assert check["generated"] == 30 and 0 <= check["nearest_own_centre"] <= 1
    assert [sum(row) for row in check["confusion_tag_by_nearest"]] == [15, 15]
    own = sum(check["confusion_tag_by_nearest"][i][i] for i in range(2)) / 30
    assert check["nearest_own_centre"] == pytest.approx(own)
    assert summary["generated_nearest_own_centre"][1] == check["nearest_own_centre"]
    # 1 epoch over 32 real + 30 generated images: 2 epochs over the 32 real ones
    long = yaml.safe_load((seed / "baseline_steps" / "config.yaml").read_text())
    assert long["train"]["epochs"] == 2 and long["data"]["generated"] is None
    assert "paired_p_vs_baseline_steps" in summary["methods"]["lsro"]["rank1"]
    base_cfg = yaml.safe_load((seed / "baseline" / "config.yaml").read_text())
    assert base_cfg["data"]["generated"] is None and base_cfg["labels"]["strategy"] == "baseline"
    evals = {
        name: json.loads((seed / name / "eval/results.json").read_text())["results"]["plain"]
        for name in summary["methods"]
    }
    assert [evals[n]["rank1"] for n in summary["methods"]] == [
        row["rank1"]["per_seed"][1] for row in summary["methods"].values()
    ]

    # a second call finds every stage done: nothing is trained or evaluated again
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.pt")}
    stamps |= {p: p.stat().st_mtime_ns for p in out.rglob("eval/results.json")}
    assert run_slsr(cfg, out)["methods"] == summary["methods"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # a lost run is trained again, to the same result (CPU training is deterministic), and
    # only it: the other runs keep their checkpoints
    weights = torch.load(seed / "slsr_any/checkpoints/last.pt", weights_only=True)["modules"]
    shutil.rmtree(seed / "slsr_any")
    again = run_slsr(cfg, out)
    assert again["methods"]["slsr_any"] == summary["methods"]["slsr_any"]
    retrained = torch.load(seed / "slsr_any/checkpoints/last.pt", weights_only=True)["modules"]
    for name, state in weights.items():
        assert all(torch.equal(v, retrained[name][k]) for k, v in state.items())
    kept = [p for p in stamps if "slsr_any" not in p.parts]
    assert {p: p.stat().st_mtime_ns for p in kept} == {p: stamps[p] for p in kept}


def test_synthetic_data_is_rendered_once_into_the_pipeline_folder(tmp_path):
    cfg = load_config(SlsrConfig, "slsr_tiny", ["data.synthetic.ids=4", "data.synthetic.cams=2"])
    assert dataset_root(cfg, tmp_path) == str(tmp_path / "synthetic")
    job = render_job(cfg, tmp_path)
    assert (job.kind, job.out) == ("render", str(tmp_path / "synthetic"))
    assert not stage_of(job).done()
    assert run_jobs({job.id: job}) == 1
    assert stage_of(job).done() and run_jobs({job.id: job}) == 0
    assert (tmp_path / "synthetic/bounding_box_train").is_dir()
    meta = json.loads((tmp_path / "synthetic/dataset.json").read_text())
    assert (meta["arguments"]["ids"], meta["arguments"]["cams"]) == (4, 2)


def features(out):
    """Every evaluation's query and gallery features under a pipeline folder, by run."""
    out_features = {}
    for f in sorted(out.rglob("features.npz")):
        with np.load(f) as z:
            out_features[str(f.parent.relative_to(out))] = {k: z[k] for k in ("qf", "gf")}
    return out_features


def test_the_pipeline_is_a_plan_whose_independent_jobs_run_side_by_side(tmp_path):
    root, _ = make_data(tmp_path, ids=8, n_gen=0)
    cfg = small_pipeline(root, "generated=30")
    jobs = slsr_jobs(cfg, tmp_path / "p", str(root))
    assert list(jobs)[:6] == [
        "seed_0/baseline", "seed_0/clusters", "seed_0/gan", "seed_0/generated",
        "seed_0/generated_check", "seed_0/baseline_steps",
    ]  # fmt: skip
    assert jobs["seed_0/baseline_steps"].deps == []  # runs beside the baseline
    assert jobs["seed_1/slsr_any"].deps == ["seed_1/generated", "seed_1/clusters"]
    assert jobs["seed_1/lsro/eval"].deps == ["seed_1/lsro"]
    assert jobs["seed_0/clusters"].params["use_k"] is None
    assert jobs["seed_0/generated"].params["num"] == 30
    assert jobs["seed_0/gan"].out == str(tmp_path / "p/seed_0/gan")

    one = run_slsr(cfg, tmp_path / "one")
    # the figures of the stage-list pipeline before it became a plan (CPU, deterministic)
    for row in one["methods"].values():
        assert row["rank1"]["per_seed"] == [1.0, 1.0] and row["mAP"]["per_seed"] == [1.0, 1.0]
    cfg.jobs = 2
    two = run_slsr(cfg, tmp_path / "two")
    assert two["methods"] == one["methods"] and two["k"] == one["k"]
    assert two["generated_nearest_own_centre"] == one["generated_nearest_own_centre"]
    a, b = features(tmp_path / "one"), features(tmp_path / "two")
    assert list(a) == list(b) and len(a) == 10
    for run, arrays in a.items():
        assert all(np.array_equal(v, b[run][k]) for k, v in arrays.items()), run
    assert (tmp_path / "two/logs/seed_1__slsr_any.log").is_file()
    assert not (tmp_path / "one/logs").exists()
