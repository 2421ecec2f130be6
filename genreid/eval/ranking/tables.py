"""Paper tables from per-run metrics: mean ± std per cell, the paper's number beside ours, and a
paired test of each cell against its reference cell (pure: numbers in, markdown and CSV out).

A table is rows × columns of cells; each cell holds one metric dict per run, keyed by the run's
replicate (a split and seed): cells are compared only over the replicates they share, so the
test is paired. Values are fractions in [0, 1] (as ``genreid evaluate`` writes them) and shown
in percent, like the papers' numbers.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from genreid.eval.ranking.significance import paired_t

METRIC_NAMES = {
    "rank1": "rank-1", "rank5": "rank-5", "rank10": "rank-10", "rank20": "rank-20", "mAP": "mAP",
}  # fmt: skip
ALPHA = 0.05  # a difference with a two-sided p below this is marked

Cell = tuple[str, str]  # (row name, column name)


@dataclass
class TableLayout:
    """What a table shows: its rows and columns (name, label), metrics, reference cells and
    the paper's numbers (in percent; None where the paper gives none)."""

    title: str
    rows: list[tuple[str, str]]
    columns: list[tuple[str, str]]
    metrics: tuple[str, ...] = ("rank1", "mAP")
    corner: str = ""
    reference: dict[Cell, Cell] = field(default_factory=dict)  # cell -> its reference cell
    paper: dict[Cell, dict[str, float | None]] = field(default_factory=dict)
    paper_label: str = "paper"
    paper_source: str = ""  # where the paper's numbers are from (table, dataset)


@dataclass
class CellStats:
    """One cell and metric: the runs' values in percent, their mean ± std, the paired p."""

    row: str
    column: str
    metric: str
    values: dict[str, float]  # replicate -> value in percent
    paper: float | None = None
    reference: Cell | None = None
    p: float | None = None
    pairs: int = 0

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values.values()) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation (0 for one run)."""
        return statistics.stdev(self.values.values()) if self.n > 1 else 0.0

    @property
    def significant(self) -> bool:
        return self.p is not None and self.p < ALPHA


def summarize(
    layout: TableLayout, runs: dict[Cell, dict[str, dict[str, float]]]
) -> dict[tuple[str, str, str], CellStats]:
    """(row, column, metric) -> CellStats, from cell -> replicate -> metric -> value (0..1)."""
    out: dict[tuple[str, str, str], CellStats] = {}
    for row, _ in layout.rows:
        for col, _ in layout.columns:
            per = runs.get((row, col), {})
            for metric in layout.metrics:
                values = {rep: 100 * m[metric] for rep, m in per.items() if metric in m}
                paper = layout.paper.get((row, col), {}).get(metric)
                out[(row, col, metric)] = CellStats(row, col, metric, values, paper)
    for (row, col, metric), stats in out.items():
        ref = layout.reference.get((row, col))
        if ref is None or ref == (row, col) or (*ref, metric) not in out:
            continue
        other = out[(*ref, metric)].values
        shared = [rep for rep in stats.values if rep in other]
        stats.reference, stats.pairs = ref, len(shared)
        stats.p = paired_t([stats.values[r] - other[r] for r in shared])
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _cell_text(stats: CellStats, runs: int | None) -> str:
    if not stats.n:
        return "–"
    text = f"{stats.mean:.1f} ± {stats.std:.1f}"
    if stats.significant:
        text += "*"
    if runs is None or stats.n != runs:
        text += f" (n={stats.n})"
    return text


def common_runs(summary: dict[tuple[str, str, str], CellStats]) -> int | None:
    """The number of runs of every cell when all cells have the same (else None)."""
    counts = {s.n for s in summary.values() if s.n}
    return counts.pop() if len(counts) == 1 else None


def _reference_words(layout: TableLayout) -> str:
    """The reference rule in words: one row, one column map, or per cell."""
    pairs = [(c, r) for c, r in layout.reference.items() if c != r]
    if not pairs:
        return ""
    labels = dict(layout.rows) | dict(layout.columns)
    rows = {r[0] for _, r in pairs}
    if len(rows) == 1 and all(c[1] == r[1] for c, r in pairs):
        return f"row {labels[rows.pop()]} of the same column"
    if all(c[0] == r[0] for c, r in pairs):
        cols = sorted({(c[1], r[1]) for c, r in pairs})
        return "; ".join(f"{labels[a]} against {labels[b]}" for a, b in cols) + " (same row)"
    rows_map = sorted({(c[0], r[0]) for c, r in pairs if c[1] == r[1]})
    return "; ".join(f"{labels[a]} against {labels[b]}" for a, b in rows_map) + " (same column)"


def markdown(
    layout: TableLayout,
    summary: dict[tuple[str, str, str], CellStats],
    notes: list[str] | None = None,
    csv_name: str = "table.csv",
) -> str:
    """The table in the paper's layout: per column and metric ours (mean ± std, * when it
    differs from the reference cell at p < 0.05) and the paper's number beside it (no paper
    columns when the paper gives no numbers)."""
    runs = common_runs(summary)
    with_paper = bool(layout.paper)
    header = [layout.corner or ""]
    for _, col_label in layout.columns:
        for metric in layout.metrics:
            name = METRIC_NAMES.get(metric, metric)
            label = f"{col_label} {name}" if len(layout.columns) > 1 or col_label else name
            header += [label.strip()] + ([layout.paper_label] if with_paper else [])
    lines = [f"## {layout.title}", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, row_label in layout.rows:
        cells = [row_label]
        for col, _ in layout.columns:
            for metric in layout.metrics:
                stats = summary[(row, col, metric)]
                cells += [_cell_text(stats, runs)] + ([_fmt(stats.paper, 2)] if with_paper else [])
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    foot = []
    if runs is not None:
        foot.append(f"Ours: mean ± sample std over {runs} run(s) per cell, in %.")
    else:
        foot.append("Ours: mean ± sample std over the runs of each cell (n = runs), in %.")
    rule = _reference_words(layout)
    if rule:
        foot.append(
            f"`*`: differs from its reference cell ({rule}) at p < {ALPHA:g}, two-sided paired "
            f"t-test over the splits/seeds both cells share; every p is in {csv_name}."
        )
    foot += list(notes or [])
    lines += [f"- {line}" for line in foot]
    return "\n".join(lines) + "\n"


CSV_COLUMNS = [
    "row", "row_label", "column", "column_label", "metric", "n", "mean", "std", "values",
    "paper", "paper_source", "reference_row", "reference_column", "pairs", "p", "significant",
]  # fmt: skip


def csv_text(layout: TableLayout, summary: dict[tuple[str, str, str], CellStats]) -> str:
    """One line per cell and metric (percent): n, mean, std, every run's value (replicate=value),
    the paper's number, the reference cell, the paired p and whether p < 0.05."""
    rows, cols = dict(layout.rows), dict(layout.columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for (row, col, metric), s in summary.items():
        ref = s.reference or ("", "")
        values = ";".join(f"{rep}={v:.4f}" for rep, v in sorted(s.values.items()))
        writer.writerow(
            [
                row, rows[row], col, cols[col], metric, s.n,
                "" if not s.n else f"{s.mean:.4f}", "" if not s.n else f"{s.std:.4f}", values,
                "" if s.paper is None else s.paper, "" if s.paper is None else layout.paper_source,
                ref[0], ref[1], s.pairs if s.reference else "",
                "" if s.p is None else f"{s.p:.6g}", int(s.significant) if s.reference else "",
            ]
        )  # fmt: skip
    return buf.getvalue()


def as_dict(summary: dict[tuple[str, str, str], CellStats]) -> list[dict[str, Any]]:
    """The summary as JSON-ready records (for summary.json)."""
    return [
        {
            "row": s.row,
            "column": s.column,
            "metric": s.metric,
            "n": s.n,
            "mean": None if not s.n else s.mean,
            "std": None if not s.n else s.std,
            "values": s.values,
            "paper": s.paper,
            "reference": list(s.reference) if s.reference else None,
            "p": s.p,
            "significant": s.significant,
        }
        for s in summary.values()
    ]
