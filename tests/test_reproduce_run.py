"""Running ``genreid reproduce`` on a micro table (a baseline and an LSRO row, tiny synthetic
data, width-8 networks): it writes the table, an interrupted sweep continues without
retraining finished cells and ends with the table of an uninterrupted one, a folder continues
only the same table, tuning records its choice, and jobs run side by side."""

from __future__ import annotations

import csv
import io
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from genreid.cli import app
from genreid.core.errors import ConfigError, RunFolderError
from genreid.engine.reproduce import runner
from genreid.engine.reproduce.pipeline import ReproduceConfig, run_reproduce, write_results_block
from genreid.engine.reproduce.spec import load_table, table_names
from tests.fixtures import DGNET_SMALL, make_market_tree
from tests.test_train_engine import make_data
from tests.toy_jobs import TOY_KINDS, stale_plan

pytestmark = pytest.mark.usefixtures("one_thread")

MICRO = Path(__file__).parent / "reproduce" / "micro.yaml"
SMALL_RECIPE = [
    "data.height=32", "data.width=16", "data.pad=2", "train.batch_size=8", "train.epochs=1",
    "train.eval_every=0", "model.width=8", "train.device=cpu", "model.pretrained=null",
]  # fmt: skip
SMALL_GAN = [
    "data.height=32", "data.width=16", "model.width=4", "model.depth=2", "train.batch_size=4",
    "model.pretrained=null",
    "train.epochs=1", "train.device=cpu", "train.min_iters=null",
]  # fmt: skip


class Stop(Exception):
    """Raised after a job to interrupt a sweep."""


def micro(root: Path, **kw) -> ReproduceConfig:
    kw.setdefault("seeds", 2)
    return ReproduceConfig(table=str(MICRO), root=str(root), threads=1, overrides=SMALL_RECIPE,
                           gan_overrides=SMALL_GAN, **kw)  # fmt: skip


def metrics(out: Path) -> list[tuple]:
    lines = [json.loads(x) for x in (out / "cells.jsonl").read_text().splitlines()]
    return [(x["row"], x["replicate"], x["metrics"]) for x in lines]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_data(tmp_path, ids=8, n_gen=0)[0]


def test_micro_table_is_written_with_every_run(tmp_path, root):
    out = tmp_path / "t"
    res = run_reproduce(micro(root), out)
    assert [(c["row"], c["metric"], c["n"]) for c in res["cells"]] == [
        ("baseline", "rank1", 2), ("baseline", "mAP", 2), ("lsro", "rank1", 2), ("lsro", "mAP", 2),
    ]  # fmt: skip
    table = (out / "table.md").read_text()
    assert "| Method | rank-1 | paper | mAP | paper |" in table
    assert "| LSRO (smoothing 0.0) |" in table and "| 55.00 |" in table
    assert "Choice smoothing (labels.real_smoothing) = 0.0: a test value." in table
    assert "Generated images scale with the real training set (32 here" in table
    assert "50 -> 16" in table  # 50 of the paper's 100 -> 16 of 32 real images
    lines = [json.loads(x) for x in (out / "cells.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and lines[0]["run"] == "runs/baseline/seed0"
    lsro = yaml.safe_load((out / "runs/lsro/seed1/config.yaml").read_text())
    assert lsro["seed"] == 1 and lsro["data"]["max_generated"] == 16
    assert lsro["data"]["generated"] == str(out / "generated/dcgan/seed1")
    assert lsro["train"]["threads"] == 1 and lsro["labels"]["strategy"] == "lsro"
    manifest = (out / "generated/dcgan/seed1/manifest.csv").read_text().splitlines()
    assert len(manifest) == 1 + 16
    gan = yaml.safe_load((out / "gan/dcgan/seed1/config.yaml").read_text())
    assert gan["data"]["root"] == str(root.resolve()) and gan["seed"] == 1
    assert json.loads((out / "choices.json").read_text())["smoothing"]["value"] == 0.0
    assert (out / "table.csv").read_text().startswith("row,row_label,column")
    # a folder continues only the same table: seeds may change, the data may not
    with pytest.raises(RunFolderError, match="different choices"):
        run_reproduce(micro(root, choices={"smoothing": 0.1}), out)


def test_an_interrupted_sweep_continues_to_the_same_table(tmp_path, root):
    whole = tmp_path / "whole"
    run_reproduce(micro(root), whole)

    out = tmp_path / "cut"
    seen: list[str] = []

    def stop_after_first_cell(job) -> None:
        seen.append(job.id)
        if job.id == "runs/baseline/seed0/eval":
            raise Stop

    with pytest.raises(Stop):
        run_reproduce(micro(root), out, after_job=stop_after_first_cell)
    assert seen == ["runs/baseline/seed0", "runs/baseline/seed0/eval"]
    assert not (out / "table.md").exists()
    # --report: the table of what is finished, nothing run
    part = run_reproduce(micro(root), out, report_only=True, after_job=seen.append)
    assert (part["runs_finished"], part["runs"]) == (1, 4) and len(seen) == 2
    assert [(c["row"], c["metric"], c["n"]) for c in part["cells"]] == [
        ("baseline", "rank1", 1), ("baseline", "mAP", 1), ("lsro", "rank1", 0), ("lsro", "mAP", 0),
    ]  # fmt: skip
    assert "Partial: 1 of 4 runs finished" in (out / "table.md").read_text()
    assert len((out / "cells.jsonl").read_text().splitlines()) == 1
    with pytest.raises(ConfigError, match="no started reproduction"):
        run_reproduce(micro(root), tmp_path / "empty", report_only=True)
    with pytest.raises(RunFolderError, match="different choices"):
        run_reproduce(micro(root, choices={"smoothing": 0.1}), out, report_only=True)
    done = out / "runs/baseline/seed0"
    stamps = {p: p.stat().st_mtime_ns for p in [done / "checkpoints/last.pt",
                                                 done / "eval/results.json"]}  # fmt: skip
    again: list[str] = []
    run_reproduce(micro(root), out, after_job=lambda job: again.append(job.id))
    assert "runs/baseline/seed0" not in again and "runs/baseline/seed0/eval" not in again
    assert len(again) == 10  # the other 12 - 2 jobs
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # not retrained
    assert metrics(out) == metrics(whole)
    strip = lambda p: (p / "table.csv").read_text()  # noqa: E731
    assert strip(out) == strip(whole)
    # a third call finds everything done and only rewrites the table
    nothing: list[str] = []
    run_reproduce(micro(root), out, after_job=lambda job: nothing.append(job.id))
    assert nothing == []
    # a lost run is trained again (CPU training is deterministic), and only it
    shutil.rmtree(out / "runs/lsro/seed1")
    redo: list[str] = []
    run_reproduce(micro(root), out, after_job=lambda job: redo.append(job.id))
    assert redo == ["runs/lsro/seed1", "runs/lsro/seed1/eval"]
    assert metrics(out) == metrics(whole)


def test_a_failed_job_holds_up_only_the_jobs_that_need_it(tmp_path, root, monkeypatch):
    from genreid.core.errors import GenreidError
    from genreid.engine.reproduce import runner

    real_sample = runner._sample

    def broken(job):
        if job.id.endswith("seed0"):
            raise GenreidError("the GAN of seed 0 collapsed")
        return real_sample(job)

    monkeypatch.setattr(runner, "_sample", broken)
    out = tmp_path / "t"
    ran: list[str] = []
    with pytest.raises(GenreidError, match="collapsed"):
        run_reproduce(micro(root), out, after_job=lambda job: ran.append(job.id))
    assert "runs/lsro/seed1/eval" in ran and "runs/baseline/seed0/eval" in ran
    assert not any(r.startswith("runs/lsro/seed0") for r in ran)  # needs the failed sample
    monkeypatch.setattr(runner, "_sample", real_sample)
    again: list[str] = []
    run_reproduce(micro(root), out, after_job=lambda job: again.append(job.id))
    assert again == ["generated/dcgan/seed0", "runs/lsro/seed0", "runs/lsro/seed0/eval"]


@pytest.mark.parametrize("pool", [False, True], ids=["here", "pool"])
def test_an_evaluation_is_redone_after_its_run_trains_further(tmp_path, monkeypatch, pool):
    """A run planned for more epochs resumes, and its evaluation, done (of the old checkpoint)
    when the call started, runs again after it; jobs that are really done stay skipped. In
    this process, and through the pool loop (a thread pool here; Dask: test_cluster_executor)."""
    for kind, make in TOY_KINDS.items():
        monkeypatch.setitem(runner.KINDS, kind, make)
    jobs = stale_plan(tmp_path)
    kept = {p: p.stat().st_mtime_ns for p in (tmp_path / "kept").iterdir()}
    console = Console(file=io.StringIO(), width=1000)
    ran: list[str] = []

    def run() -> int:
        if not pool:
            return runner.run_jobs(jobs, console=console, after_job=lambda j: ran.append(j.id))
        where = runner.Pool(lambda: ThreadPoolExecutor(1), 1)
        return runner._run_pool(runner.Progress(jobs, console), where, 1, tmp_path / "logs",
                                lambda j: ran.append(j.id))  # fmt: skip

    assert run() == 2
    assert ran == ["grown", "grown/eval"]
    assert (tmp_path / "grown/eval.txt").read_text() == "2"  # the new checkpoint's evaluation
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert "2 of 4 jobs done already; 2 to run" in console.file.getvalue()
    assert run() == 0 and ran == ["grown", "grown/eval"]


def test_tuning_chooses_on_validation_identities_and_records_it(tmp_path, root):
    out = tmp_path / "tuned"
    res = run_reproduce(micro(root, seeds=1, tune=True), out)
    rec = json.loads((out / "choices.json").read_text())["smoothing"]
    scores = rec["candidates"]
    assert set(scores) == {"0.0", "0.1"}
    # the higher validation mAP wins; on a tie, the spec's own value (0.0)
    assert rec["value"] == (0.0 if scores["0.0"] >= scores["0.1"] else 0.1)
    assert "chosen on validation identities (0.2" in rec["source"]
    assert res["choices"]["smoothing"] == rec
    tuned = yaml.safe_load((out / "tune/runs/lsro-smoothing=0.1/seed0/config.yaml").read_text())
    assert tuned["data"]["options"] == {"validation": 0.2}
    assert tuned["labels"]["real_smoothing"] == 0.1
    assert (out / "tune/gan/dcgan/seed0/results.json").is_file()  # one GAN for both values
    text = (out / "table.md").read_text()
    assert f"Choice smoothing (labels.real_smoothing) = {rec['value']}: chosen on" in text


@pytest.mark.slow
def test_jobs_side_by_side_give_the_same_table(tmp_path, root):
    one = tmp_path / "one"
    run_reproduce(micro(root), one)
    two = tmp_path / "two"
    run_reproduce(micro(root, jobs=2), two)
    assert metrics(two) == metrics(one)
    logs = sorted(p.name for p in (two / "logs").iterdir())
    assert "runs__lsro__seed1.log" in logs and "gan__dcgan__seed0.log" in logs


def test_cli_runs_a_table_and_plans_one(tmp_path, root):
    out = tmp_path / "cli"
    args = ["reproduce", str(MICRO), "--root", str(root), "--seeds", "1", "--threads", "1"]
    args += [f"--override={o}" for o in SMALL_RECIPE] + [f"--gan-override={o}" for o in SMALL_GAN]
    res = CliRunner().invoke(app, [*args, "--plan"])
    assert res.exit_code == 0, res.output
    assert "2 cells, 2 runs; jobs: 3 train, 2 eval, 1 sample" in res.output
    page = tmp_path / "RESULTS.md"
    page.write_text("# Results\n\nkept above\n")
    res = CliRunner().invoke(app, [*args, "--out", str(out), "--results", str(page)])
    assert res.exit_code == 0, res.output
    assert f"{out / 'table.md'}" in res.output and (out / "table.csv").is_file()
    assert len((out / "cells.jsonl").read_text().splitlines()) == 2
    text = page.read_text()  # the table went into its block, with the command
    assert text.startswith("# Results\n\nkept above\n\n<!-- begin genreid reproduce micro")
    assert (out / "table.md").read_text().strip() in text and "Regenerate" in text
    page.write_text(text + "\nkept below\n")
    res = CliRunner().invoke(app, [*args, "--out", str(out), "--results", str(page)])
    assert res.exit_code == 0 and "replaced its block" in res.output  # finished: no training
    again = page.read_text()
    assert again.count("<!-- begin genreid reproduce") == 1 and again.endswith("kept below\n")
    res = CliRunner().invoke(app, [*args, "--out", str(out), "--report"])
    assert res.exit_code == 0 and "2 of 2 runs finished" in res.output
    res = CliRunner().invoke(app, [*args, "--splits", "2", "--out", str(tmp_path / "x")])
    assert res.exit_code == 1 and "error: --splits: market1501 has one split" in res.output


def test_a_results_block_names_the_command_that_completes_the_table(tmp_path):
    page = tmp_path / "RESULTS.md"
    result = {"table": "micro", "dataset": "viper", "scale": "tiny", "markdown": "| t |"}
    argv = ["genreid", "reproduce", "micro", "--out", "a b", "--report", "--results", "R.md"]
    assert write_results_block(page, result, argv) == "created"
    text = page.read_text()
    assert "`genreid reproduce micro --out 'a b' --results R.md`" in text  # no --report
    assert "<!-- begin genreid reproduce micro viper tiny -->" in text and "| t |" in text


DGNET_MICRO = [
    *DGNET_SMALL, "train.pairs=2", "train.epoch_iters=2", "train.epochs=1", "train.grid_images=2",
    "train.progress=false", "train.device=cpu", "loss.start=1", "loss.warmup=1",
]  # fmt: skip


@pytest.mark.parametrize("table", table_names())
def test_every_table_runs_at_tiny_scale(tmp_path, root, table):
    """Every shipped table runs end to end at tiny scale (iterations capped): its GANs (one per
    cluster, WGAN-GP), k-means, sMpRL's and DG-Net's links to the baseline, label fractions
    and real unlabeled images (linked into their folder) all execute, and the table is written
    with every cell (about 100 s for all tables on one core)."""
    unlabeled = make_market_tree(tmp_path / "other", num_train_ids=3, num_test_ids=2,
                                 images_per_camera=2, size=(16, 32))  # fmt: skip
    cfg = ReproduceConfig(
        table=table, scale="tiny", dataset="market1501", root=str(root), threads=1,
        overrides=[*SMALL_RECIPE, "train.max_iters=2"],
        gan_overrides=SMALL_GAN,  # WGAN-GP's critic_steps is its own: not one for every GAN
        dgnet_overrides=DGNET_MICRO, unlabeled_dataset="market1501",
        unlabeled_root=str(unlabeled),
    )  # fmt: skip
    res = run_reproduce(cfg, tmp_path / "t")
    spec = load_table(table)
    cells = {(c["row"], c["column"]) for c in res["cells"] if c["n"] == 1}
    assert cells == set(spec.cells())
    assert (tmp_path / "t" / "table.md").read_text().count("\n| ") >= len(spec.rows)


def test_rerank_adds_a_reranked_table_of_the_same_runs(tmp_path, root):
    from genreid.eval.ranking.features import load_features
    from genreid.eval.ranking.protocols import evaluate_arrays

    out = tmp_path / "t"
    plain = run_reproduce(micro(root), out)
    # the same folder with --rerank: nothing is retrained, every evaluation is redone
    part = run_reproduce(micro(root, rerank=True), out, report_only=True)
    assert part["runs_finished"] == 0  # no evaluation holds re-ranked results yet
    ran: list[str] = []
    res = run_reproduce(micro(root, rerank=True), out, after_job=lambda job: ran.append(job.id))
    assert sorted(ran) == sorted(f"runs/{r}/seed{s}/eval" for r in ("baseline", "lsro")
                                 for s in (0, 1))  # fmt: skip
    assert res["cells"] == plain["cells"]  # the plain table is unchanged
    table = (out / "table.md").read_text()
    assert table.count("## ") == 2 and "re-ranked" in table.split("## ")[2]
    # each re-ranked cell is the re-ranking of that run's saved features
    lines = [json.loads(x) for x in (out / "cells.jsonl").read_text().splitlines()]
    for line in lines:
        fs = load_features(out / line["run"] / "features.npz")
        ev = evaluate_arrays(fs.qf, fs.gf, fs.q_pids, fs.g_pids, fs.q_camids, fs.g_camids,
                             rerank=True).to_dict()["results"]["rerank"]  # fmt: skip
        assert line["rerank_metrics"]["rank1"] == pytest.approx(ev["rank1"])
        assert line["rerank_metrics"]["mAP"] == pytest.approx(ev["mAP"])
    # the re-ranked cells hold the re-ranked values, LSRO's tested against the baseline's
    rr = {(x["row"], x["replicate"]): 100 * x["rerank_metrics"]["mAP"] for x in lines}
    for cell in (c for c in res["rerank_cells"] if c["metric"] == "mAP"):
        assert cell["values"] == {f"seed{s}": rr[(cell["row"], f"seed{s}")] for s in (0, 1)}
        if cell["row"] == "lsro":
            assert cell["reference"] == ["baseline", cell["column"]]
    assert "every p is in table_rerank.csv" in table.split("## ")[2]
    assert (out / "table_rerank.csv").read_text().startswith("row,row_label,column")


def test_dgnet3_rows_are_three_test_features_of_one_training(tmp_path, root):
    """DG-Net Table 3's f_prim, f_fine and both rows share one training (both losses) and are
    evaluated with three features, each into its own folder and features file: each equals
    that run's model evaluated with that feature directly; --rerank redoes only the
    evaluations, --report reads each row's own, and each row is paired with the baseline."""
    import numpy as np

    from genreid.data.datasets import load_dataset
    from genreid.eval.ranking.extract import load_trained_model, reid_features
    from genreid.eval.ranking.features import load_features
    from genreid.eval.ranking.protocols import evaluate_arrays
    from genreid.models.dgnet.network import DGNetReID, load_dgnet_run

    cfg = ReproduceConfig(
        table="dgnet3", dataset="market1501", root=str(root), threads=1, seeds=2,
        overrides=SMALL_RECIPE, dgnet_overrides=DGNET_MICRO, rows=["prim", "fine", "both"],
    )  # fmt: skip
    out = tmp_path / "t"
    ran: list[str] = []
    run_reproduce(cfg, out, after_job=lambda job: ran.append(job.id))
    evals = ["eval_prim", "eval_fine", "eval_both_0.5"]
    for s in (0, 1):
        assert [j for j in ran if j.startswith(f"runs/joint/seed{s}")] == [
            f"runs/joint/seed{s}", *(f"runs/joint/seed{s}/{e}" for e in evals)
        ]  # fmt: skip
    lines = [json.loads(x) for x in (out / "cells.jsonl").read_text().splitlines()]
    cells = {(x["row"], x["replicate"]): x for x in lines}
    run = out / "runs/joint/seed0"
    _, data, ev, _ = load_trained_model(run)
    ds = load_dataset("market1501", root)
    nets, _, _ = load_dgnet_run(run)
    saved = {}
    for row, feature, folder in zip(("prim", "fine", "both"), ("prim", "fine", "both"), evals,
                                    strict=True):  # fmt: skip
        line = cells[(row, "seed0")]
        assert line["run"] == "runs/joint/seed0" and line["eval"] == f"runs/joint/seed0/{folder}"
        fs = load_features(run / folder / "features.npz")
        model = DGNetReID(nets.E_a, feature, 0.5).eval()
        qf = reid_features(model, ds.query, data.size, ev.batch_size, ev.flip, "cpu")
        np.testing.assert_allclose(fs.qf, qf, atol=1e-5)
        direct = evaluate_arrays(qf, fs.gf, fs.q_pids, fs.g_pids, fs.q_camids, fs.g_camids)
        plain = direct.to_dict()["results"]["plain"]
        assert line["metrics"]["mAP"] == pytest.approx(plain["mAP"])
        assert line["metrics"]["rank1"] == pytest.approx(plain["rank1"])
        saved[row] = fs.qf
    assert saved["both"].shape[1] == 2 * saved["prim"].shape[1]
    assert not np.allclose(saved["prim"], saved["fine"])
    rows = csv.DictReader((out / "table.csv").read_text().splitlines())
    table = {(r["row"], r["metric"]): r for r in rows}
    for row in ("prim", "fine", "both"):
        cell = table[(row, "mAP")]
        assert (cell["reference_row"], cell["n"], cell["pairs"]) == ("baseline", "2", "2")
        assert cell["values"] == ";".join(
            f"seed{s}={100 * cells[(row, f'seed{s}')]['metrics']['mAP']:.4f}" for s in (0, 1)
        )
    # --rerank: nothing is retrained, every evaluation (the three and the baseline's) is redone
    again: list[str] = []
    run_reproduce(replace(cfg, rerank=True), out, after_job=lambda job: again.append(job.id))
    assert sorted(again) == sorted(
        [f"runs/baseline/seed{s}/eval" for s in (0, 1)]
        + [f"runs/joint/seed{s}/{e}" for s in (0, 1) for e in evals]
    )  # fmt: skip
    part = run_reproduce(replace(cfg, rerank=True), out, report_only=True)
    assert part["runs_finished"] == part["runs"] == 8
    lines = [json.loads(x) for x in (out / "cells.jsonl").read_text().splitlines()]
    assert all("rerank_metrics" in x for x in lines)
    assert "model.feature=prim" in (out / "table.md").read_text()
