"""`genreid quickstart`: the whole pipeline at the smallest scale, and its resumability."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from genreid.cli import app
from tests.fixtures import make_market_tree

runner = CliRunner()


def test_quickstart_data_only(tmp_path):
    res = runner.invoke(
        app, ["quickstart", "--out", str(tmp_path), "--ids", "8", "--cams", "3", "--data-only"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["dataset"]["splits"]["train"]["identities"] == 4
    assert (tmp_path / "preview.png").read_bytes()[:4] == b"\x89PNG"
    assert "runs" not in summary


def test_quickstart_full_pipeline_then_skips_finished_stages(tmp_path):
    small = ["--ids", "10", "--cams", "3", "--epochs", "1", "--gan-epochs", "1"]
    small += ["--gan-iters", "3", "--threads", "1"]  # one thread: the same sums with --jobs 2
    out = tmp_path / "one"
    args = ["quickstart", "--out", str(out), *small]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "results.json").read_text())
    assert set(summary["runs"]) == {"baseline", "lsro", "fapl_dist"}
    for results in summary["runs"].values():
        for name in ("plain", "rerank"):
            assert 0.0 <= results[name]["mAP"] <= 1.0
    for strategy in ("lsro", "fapl_dist"):  # the paired comparison agrees with the two mAPs
        vs = summary["runs"][strategy]["vs_baseline"]
        base, run = summary["runs"]["baseline"]["plain"], summary["runs"][strategy]["plain"]
        assert vs["d_mAP"] == pytest.approx(run["mAP"] - base["mAP"], abs=1e-9)
        assert vs["d_rank1"] == pytest.approx(run["rank1"] - base["rank1"], abs=1e-9)
        assert vs["queries"] > 0
    gan = json.loads((out / "gan" / "results.json").read_text())["generated"]
    assert summary["generated"] == {k: gan[k] for k in summary["generated"]}
    assert {"frechet", "kid", "precision", "recall"} <= set(summary["generated"])
    assert summary["generated"]["against"] == "held-out training images"
    assert gan["iteration"] >= 3 and gan["real_images"] >= 4
    assert f"precision {gan['precision']:.2f}, recall {gan['recall']:.2f}" in res.output
    manifest = (out / "generated" / "manifest.csv").read_text().splitlines()
    train = summary["dataset"]["splits"]["train"]["images"]
    assert len(manifest) == 1 + train  # header + as many generated images as real ones
    lsro = json.loads((out / "lsro" / "results.json").read_text())
    assert lsro["generated_images"] == train
    epochs = [json.loads(x) for x in (out / "lsro/metrics.jsonl").read_text().splitlines()]
    assert all(r["loss/generated"] > 0 for r in epochs if r.get("epoch_end"))  # used them
    base = [json.loads(x) for x in (out / "baseline/metrics.jsonl").read_text().splitlines()]
    assert not any("loss/generated" in r for r in base)
    names = ("baseline", "lsro", "fapl_dist")
    rows = {
        ln.split()[0]: ln
        for ln in res.output.splitlines()
        if ln.split()[:1] in [[n] for n in names]
    }
    assert {"baseline", "lsro", "fapl_dist"} <= set(rows)  # the table printed every row
    assert rows["lsro"].count(".") >= 6
    for f in ("gan_samples.png", "lsro/eval/ranklist.png", "lsro/eval/cmc.png"):
        assert (out / f).is_file()
    report = (out / "report.html").read_text()  # the three runs compared
    assert summary["report"] == str(out / "report.html") and "report (open" in res.output
    assert all(f"<td>{run}</td>" in report for run in ("baseline", "lsro", "fapl_dist", "gan"))
    stamp = (out / "lsro" / "checkpoints" / "last.pt").stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "already rendered" in again.output
    assert (out / "lsro" / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp

    # the same plan with two jobs side by side (the baseline beside the DCGAN, the strategies
    # beside each other; their output in OUT/logs) gives the same numbers to the last digit
    two = tmp_path / "two"
    res = runner.invoke(app, ["quickstart", "--out", str(two), *small, "--jobs", "2"])
    assert res.exit_code == 0, res.output
    summary_two = json.loads((two / "results.json").read_text())
    assert summary_two["dataset"]["splits"] == summary["dataset"]["splits"]
    for key in ("generated", "runs"):
        assert summary_two[key] == summary[key], key
    for run in ("baseline", "lsro", "fapl_dist"):
        with (
            np.load(out / run / "features.npz") as a,
            np.load(two / run / "features.npz") as b,
        ):
            assert all(np.array_equal(a[k], b[k]) for k in ("qf", "gf")), run
    assert (two / "logs" / "lsro__eval.log").is_file() and not (out / "logs").exists()


def test_quickstart_checks_its_runner_options(tmp_path):
    base = ["quickstart", "--out", str(tmp_path), "--ids", "8", "--cams", "3"]
    res = runner.invoke(app, [*base, "--jobs", "0"])
    assert res.exit_code == 1 and "--jobs/--threads: expected 1 or more" in res.output
    res = runner.invoke(app, [*base, "--executor", "dask"])
    assert res.exit_code == 1 and "--executor dask needs --address" in res.output


def test_quickstart_plans_from_one_parse_and_leaves_dask_workers_their_threads(
    tmp_path, monkeypatch
):
    """The dataset is parsed once (its training images size the DCGAN's samples), and without
    --threads a Dask cluster's jobs get None (each worker keeps its torch threads), not 1."""
    from genreid.engine import quickstart, runspec

    class Planned(Exception):
        pass

    parsed, handed = [], {}
    parse = runspec.load_dataset
    monkeypatch.setattr(runspec, "load_dataset", lambda *a, **k: parsed.append(a) or parse(*a, **k))

    def run_jobs(jobs, workers, threads, *args, **kwargs):
        handed.update(jobs=jobs, threads=threads)
        raise Planned

    monkeypatch.setattr(quickstart, "run_jobs", run_jobs)
    root = make_market_tree(tmp_path / "data")  # 12 training images
    with pytest.raises(Planned):
        quickstart.run_quickstart(tmp_path / "q", dataset="market1501", root=root,
                                  executor="dask", address="tcp://127.0.0.1:1")  # fmt: skip
    assert len(parsed) == 1
    assert handed["jobs"]["generated"].params["num"] == 12
    assert handed["threads"] is None
