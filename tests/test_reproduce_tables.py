"""The table writer of ``genreid reproduce`` (pure): the paper's layout, mean ± std, the
paper's number beside ours, the paired test against the reference cell and its mark."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest
from scipy import stats

from genreid.eval.ranking.significance import paired_t
from genreid.eval.ranking.tables import TableLayout, csv_text, markdown, summarize

# two columns (lsro, aio) x two rows (base, gen); row base is each column's reference
LAYOUT = TableLayout(
    title="Toy table",
    rows=[("base", "0 (basel.)"), ("gen", "12,000")],
    columns=[("lsro", "LSRO"), ("aio", "All in one")],
    corner="# GAN img.",
    reference={("gen", "lsro"): ("base", "lsro"), ("gen", "aio"): ("base", "aio")},
    paper={("base", "lsro"): {"rank1": 73.69, "mAP": 51.48}, ("gen", "lsro"): {"rank1": 76.81}},
    paper_source="LSRO Table 2 [market1501]",
)
BASE = [0.50, 0.60, 0.55, 0.52]
# LSRO gains 0.10, 0.12, 0.08, 0.11 over the baseline: a clear, known paired difference
GEN = [0.60, 0.72, 0.63, 0.63]
NOISY = [0.51, 0.58, 0.57, 0.52]  # All in one: +0.01, -0.02, +0.02, 0.0


def runs() -> dict:
    reps = [f"split{i}_seed0" for i in range(4)]
    cell = lambda xs: {r: {"rank1": x, "mAP": x / 2} for r, x in zip(reps, xs, strict=True)}  # noqa: E731
    return {("base", "lsro"): cell(BASE), ("base", "aio"): cell(BASE),
            ("gen", "lsro"): cell(GEN), ("gen", "aio"): cell(NOISY)}  # fmt: skip


def test_paired_t_matches_scipy_ttest_rel():
    for a, b in ((GEN, BASE), (NOISY, BASE), ([1.0, 2.5, 2.0], [0.5, 1.0, 2.2])):
        expected = stats.ttest_rel(a, b).pvalue
        assert paired_t([x - y for x, y in zip(a, b, strict=True)]) == pytest.approx(expected)
    assert paired_t([0.1]) is None and paired_t([0.3, 0.3, 0.3]) is None


def test_summary_has_mean_std_paper_and_the_paired_p():
    summary = summarize(LAYOUT, runs())
    gen = summary[("gen", "lsro", "rank1")]
    assert gen.n == 4 and gen.mean == pytest.approx(64.5)
    assert gen.std == pytest.approx(100 * stats.tstd(GEN))  # sample std, in percent
    assert gen.paper == 76.81 and gen.reference == ("base", "lsro") and gen.pairs == 4
    assert gen.p == pytest.approx(stats.ttest_rel(GEN, BASE).pvalue) and gen.p < 0.01
    assert gen.significant
    noisy = summary[("gen", "aio", "rank1")]
    assert noisy.p == pytest.approx(stats.ttest_rel(NOISY, BASE).pvalue) and not noisy.significant
    base = summary[("base", "lsro", "rank1")]
    assert base.reference is None and base.p is None and not base.significant
    assert summary[("gen", "aio", "mAP")].paper is None


def test_markdown_is_the_papers_layout_with_marks_and_footnotes():
    text = markdown(LAYOUT, summarize(LAYOUT, runs()), ["a note"])
    lines = text.splitlines()
    assert lines[0] == "## Toy table"
    header = "| # GAN img. | LSRO rank-1 | paper | LSRO mAP | paper | All in one rank-1 | paper |"
    assert lines[2].startswith(header)
    sd = 100 * stats.tstd(GEN)
    row = f"| 12,000 | 64.5 ± {sd:.1f}* | 76.81 | 32.2 ± {sd / 2:.1f}* | – |"
    assert any(line.startswith(row) for line in lines), text
    assert "| 0 (basel.) | 54.2 ± 4.3 | 73.69 | 27.1 ± 2.2 | 51.48 |" in text
    noisy_mean = 100 * sum(NOISY) / 4
    assert f"| {noisy_mean:.1f} ± {100 * stats.tstd(NOISY):.1f} | – |" in text  # no mark
    assert "over 4 run(s) per cell" in text
    assert "row 0 (basel.) of the same column" in text and "p < 0.05" in text
    assert text.rstrip().endswith("- a note")


def test_a_cell_with_fewer_runs_says_how_many_and_an_empty_cell_a_dash():
    data = runs()
    data[("gen", "aio")] = dict(list(data[("gen", "aio")].items())[:2])
    del data[("base", "aio")]
    summary = summarize(LAYOUT, data)
    text = markdown(LAYOUT, summary)
    assert "(n=2)" in text and "mean ± sample std over the runs of each cell" in text
    assert summary[("gen", "aio", "rank1")].p is None  # its reference cell has no runs
    row = "| 0 (basel.) | 54.2 ± 4.3 (n=4) | 73.69 | 27.1 ± 2.2 (n=4) | 51.48 | – | – | – | – |"
    assert row in text


def test_csv_gives_every_value_and_p():
    summary = summarize(LAYOUT, runs())
    rows = list(csv.DictReader(io.StringIO(csv_text(LAYOUT, summary))))
    assert len(rows) == 8  # 2 rows x 2 columns x 2 metrics
    gen = next(r for r in rows if (r["row"], r["column"], r["metric"]) == ("gen", "lsro", "rank1"))
    assert float(gen["p"]) == pytest.approx(stats.ttest_rel(GEN, BASE).pvalue, rel=1e-5)
    assert gen["significant"] == "1" and gen["reference_row"] == "base" and gen["pairs"] == "4"
    assert gen["values"].split(";")[0] == "split0_seed0=60.0000" and gen["paper"] == "76.81"
    assert gen["paper_source"] == "LSRO Table 2 [market1501]"
    base = next(r for r in rows if (r["row"], r["column"], r["metric"]) == ("base", "aio", "mAP"))
    assert base["p"] == "" and base["significant"] == "" and base["paper"] == ""
    assert base["paper_source"] == ""  # no number, no source
    assert math.isclose(float(base["mean"]), 100 * sum(BASE) / 8)


def test_reference_by_column_is_described_per_row():
    layout = TableLayout(
        "VI", rows=[("12000", "12000")], columns=[("dc", "DCGAN"), ("iw", "IWGAN")],
        reference={("12000", "iw"): ("12000", "dc")},
    )  # fmt: skip
    reps = {"seed0": 0.5, "seed1": 0.6, "seed2": 0.4}
    data = {
        ("12000", "dc"): {r: {"rank1": v, "mAP": v} for r, v in reps.items()},
        ("12000", "iw"): {r: {"rank1": v + 0.01, "mAP": v} for r, v in reps.items()},
    }
    summary = summarize(layout, data)
    assert summary[("12000", "iw", "mAP")].p is None  # identical: no test possible
    assert summary[("12000", "iw", "rank1")].p is None  # a constant difference: no variance
    assert "IWGAN against DCGAN (same row)" in markdown(layout, summary)


def test_a_table_without_paper_numbers_has_no_paper_columns_and_any_rank():
    lay = TableLayout(
        title="Own table", rows=[("base", "Baseline"), ("gen", "LSRO")],
        columns=[("ours", "")], metrics=("rank1", "rank20", "mAP"),
        reference={("gen", "ours"): ("base", "ours")},
    )  # fmt: skip
    reps = [f"split{i}_seed0" for i in range(4)]

    def cell(xs: list[float]) -> dict:
        pairs = zip(reps, xs, strict=True)
        return {r: {"rank1": x, "rank20": x + 0.3, "mAP": x / 2} for r, x in pairs}

    data = {("base", "ours"): cell(BASE), ("gen", "ours"): cell(GEN)}
    text = markdown(lay, summarize(lay, data))
    assert "|  | rank-1 | rank-20 | mAP |" in text and "paper" not in text, text
    assert f"| LSRO | 64.5 ± {100 * stats.tstd(GEN):.1f}* | 94.5 ± " in text


def test_a_results_block_names_the_dataset_relative_to_the_working_directory(tmp_path, monkeypatch):
    from genreid.engine.reproduce.pipeline import shown_path

    repo, data = tmp_path / "repo", tmp_path / "shared" / "datasets" / "VIPeR"
    repo.mkdir()
    monkeypatch.chdir(repo)
    assert shown_path(str(data)) == str(Path("..") / "shared" / "datasets" / "VIPeR")
    assert shown_path(str(repo / "data")) == "data"
