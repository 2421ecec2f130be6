"""The run report page: runs compared side by side in one self-contained HTML file.

This module gets plain data (:class:`ReportRun`, filled by ``genreid.reporting.run_report``) and
only lays it out: tables, inline PNG plots and thumbnails as data URIs, no script, no network.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from genreid.viz.html import escape, figure, image_data_uri, table, write_page
from genreid.viz.plots import cmc_overlay_figure, curves_figure, figure_png

METRIC_COLUMNS = (("rank1", "R-1"), ("rank5", "R-5"), ("rank10", "R-10"), ("rank20", "R-20"),
                  ("mAP", "mAP"), ("mINP", "mINP"))  # fmt: skip
PLACEHOLDER = (160, 160, 160)
CSS = """
#runs td:first-child{font-weight:600}details{margin:.4em 0}summary{cursor:pointer}
h3{font-size:1em;margin:1em 0 .2em}.note{color:#6b7680;font-size:.85em;margin:.2em 0}
.hard{margin:4px 0 10px}.hard .why{font-size:.8em;color:#1d2329;margin:2px 0}
td{max-width:26em;overflow-wrap:anywhere}
"""


@dataclass
class Thumb:
    """An image to show: its file, a caption, a frame (``match``/``miss``/``query``), a tip."""

    path: str
    caption: str = ""
    cls: str = ""
    title: str = ""


@dataclass
class HardQuery:
    """A query whose first true match ranks low: the query, its top matches, the numbers."""

    query: Thumb
    matches: list[Thumb]
    first_rank: int  # 1-based rank of the first true match
    ap: float


@dataclass
class ReportRun:
    """What the report shows of one run; empty fields are sections the run cannot fill, and
    ``notes[section]`` says why."""

    name: str
    path: str
    kind: str
    status: str = ""
    config: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    results: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    cmc: dict[str, list[float]] = field(default_factory=dict)
    generated: list[Thumb] = field(default_factory=list)
    generated_source: str = ""
    figures: list[Thumb] = field(default_factory=list)
    hardest: list[HardQuery] = field(default_factory=list)
    hardest_source: str = ""
    notes: dict[str, str] = field(default_factory=dict)


def differing_keys(columns: Sequence[dict[str, str]]) -> list[str]:
    """Keys whose value is not the same in every column (absent counts as a value)."""
    keys = sorted(set().union(*columns)) if columns else []
    return [k for k in keys if len({c.get(k) for c in columns}) > 1]


def _thumb(t: Thumb, max_height: int = 128) -> str:
    try:
        src = image_data_uri(t.path, max_height=max_height)
        caption = t.caption
    except (OSError, ValueError):
        src = image_data_uri(Image.new("RGB", (32, 64), PLACEHOLDER))
        caption = f"{t.caption} (unreadable)"
    return figure(src, caption, t.cls, t.title or t.path)


def _plot(png: bytes, alt: str) -> str:
    src = image_data_uri(Image.open(io.BytesIO(png)), max_height=None, fmt="PNG")
    return f'<img class="plot" src="{src}" alt="{escape(alt)}">'


def _notes(runs: Sequence[ReportRun], section: str) -> str:
    lines = [f"{r.name}: {r.notes[section]}" for r in runs if section in r.notes]
    return "".join(f'<p class="note">{escape(line)}</p>' for line in lines)


def _with_id(html_table: str, ident: str) -> str:
    return html_table.replace("<table>", f'<table id="{ident}">', 1)


def _shared(columns: list[dict[str, str]]) -> tuple[list[dict[str, str]], int]:
    """The columns cut to the keys every one has, and how many keys that left out."""
    shared = set.intersection(*(set(c) for c in columns))
    left_out = len(set().union(*columns) - shared)
    return [{k: v for k, v in c.items() if k in shared} for c in columns], left_out


def _key_table(
    runs: Sequence[ReportRun], attr: str, only_diff: bool, what: str, shared_only: bool = False
) -> str:
    """Keys whose values differ (rows of class ``diff``, table ``ATTR-diff``; keys every run has
    first), then the others (table ``ATTR-same``, folded) unless ``only_diff``. With
    ``shared_only`` (runs of different kinds) only the keys every run has, and a line saying
    how many were left out: a key one kind has and another lacks is no difference."""
    columns = [getattr(r, attr) for r in runs]
    if not any(columns):
        return ""
    names = [r.name for r in runs]
    out = []
    if shared_only and len(runs) > 1:
        columns, left_out = _shared(columns)
        kinds = escape(", ".join(dict.fromkeys(r.kind for r in runs)))
        out.append(
            f'<p class="note" id="{attr}-left-out">{left_out} {what} keys left out: not every '
            f"run has them (runs of different kinds: {kinds}); the tables below compare the "
            f"{len(columns[0])} keys they share.</p>"
        )
    diff = differing_keys(columns) if len(runs) > 1 else []
    diff.sort(key=lambda k: (any(k not in c for c in columns), k))  # absent from a run: last
    same = [k for k in sorted(set().union(*columns)) if k not in diff]

    def rows(keys: list[str]) -> list[list[str]]:
        return [[k, *(c.get(k, "—") for c in columns)] for k in keys]

    if len(runs) > 1:
        if diff:
            absent = "" if shared_only else " (— : absent)"
            out.append(f"<p>{len(diff)} {what} keys differ between the runs{absent}:</p>")
            diff_table = table(["key", *names], rows(diff), ["diff"] * len(diff))
            out.append(_with_id(diff_table, f"{attr}-diff"))
        elif any(columns):
            out.append(f"<p>Every {what} key has the same value in every run.</p>")
    if same and not only_diff:
        body = _with_id(table(["key", *names], rows(same)), f"{attr}-same")
        if len(runs) > 1:
            summary = f"{len(same)} {what} keys with the same value in every run"
            body = f"<details><summary>{summary}</summary>{body}</details>"
        out.append(body)
    return "".join(out)


def _configs(runs: Sequence[ReportRun], only_diff: bool) -> str:
    mixed = len({r.kind for r in runs}) > 1  # a GAN's keys vs a re-ID run's: compare the shared
    body = _key_table(runs, "config", only_diff, "config", shared_only=mixed)
    env = _key_table(runs, "env", only_diff, "environment")
    if env:
        body += "<h3>Environment (env.json)</h3>" + env
    return (
        "<h2>Configuration</h2>" + (body or "<p>No run has a config.</p>") + _notes(runs, "config")
    )


def _curves(runs: Sequence[ReportRun]) -> str:
    panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for r in runs:
        for metric, xy in r.curves.items():
            panels.setdefault(metric, {})[r.name] = xy
    out = "<h2>Training curves</h2>"
    if panels:
        order = sorted(panels, key=lambda m: (not m.startswith("loss"), m))
        fig = curves_figure({m: panels[m] for m in order}, [r.name for r in runs])
        out += _plot(figure_png(fig), "training curves")
        out += (
            '<p class="note">Epoch means from metrics.jsonl; evaluation metrics in %; gen/*: '
            "what the generated images were taught (docs/TRAINING.md).</p>"
        )
    return out + _notes(runs, "curves")


def _cmc(runs: Sequence[ReportRun]) -> str:
    curves = {r.name: r.cmc for r in runs if r.cmc}
    out = "<h2>CMC curves</h2>"
    if curves:
        out += _plot(figure_png(cmc_overlay_figure(curves, "CMC (eval/results.json)")), "CMC")
    return out + _notes(runs, "cmc")


def _results(runs: Sequence[ReportRun]) -> str:
    rows = []
    for r in runs:
        for source, metrics in r.results:
            cells = [f"{100 * metrics[k]:.1f}" if k in metrics else "—" for k, _ in METRIC_COLUMNS]
            rows.append([r.name, source, *cells])
    out = "<h2>Results (%)</h2>"
    if rows:
        headers = ["run", "source", *(h for _, h in METRIC_COLUMNS)]
        out += _with_id(table(headers, rows), "results")
    return out + _notes(runs, "results")


def _images(runs: Sequence[ReportRun]) -> str:
    out = ["<h2>Generated images</h2>"]
    for r in runs:
        if r.generated:
            out.append(
                f"<h3>{escape(r.name)}: {len(r.generated)} of {escape(r.generated_source)}</h3>"
            )
            out.append('<div class="row">' + "".join(_thumb(t) for t in r.generated) + "</div>")
        if r.figures:
            out.append(f"<h3>{escape(r.name)}: figures</h3>")
            out.append('<div class="row">' + "".join(_thumb(t, 320) for t in r.figures) + "</div>")
    out.append(_notes(runs, "generated"))
    return "".join(out)


def _hardest(runs: Sequence[ReportRun]) -> str:
    out = ["<h2>Hardest queries</h2>"]
    for r in runs:
        if not r.hardest:
            continue
        out.append(f"<h3>{escape(r.name)}</h3>")
        out.append(f'<p class="note">{escape(r.hardest_source)}</p>')
        for h in r.hardest:
            why = f"first true match at rank {h.first_rank}, AP {100 * h.ap:.1f}%"
            thumbs = "".join(_thumb(t, 96) for t in [h.query, *h.matches])
            out.append(f'<div class="hard"><p class="why">{escape(why)}</p>'
                       f'<div class="row">{thumbs}</div></div>')  # fmt: skip
    out.append(_notes(runs, "hardest"))
    return "".join(out)


def report_body(runs: Sequence[ReportRun], title: str, only_diff: bool = False) -> str:
    """The report's HTML body: the runs, then configs, curves, CMC, results, images, queries."""
    listing = _with_id(
        table(
            ["run", "kind", "status", "folder"], [[r.name, r.kind, r.status, r.path] for r in runs]
        ),
        "runs",
    )
    sections = (
        _configs(runs, only_diff), _curves(runs), _cmc(runs), _results(runs), _images(runs),
        _hardest(runs),
    )  # fmt: skip
    return f"<h1>{escape(title)}</h1>{listing}" + "".join(sections)


def write_report_page(
    path: str | Path, runs: Sequence[ReportRun], title: str, only_diff: bool = False
) -> Path:
    """Write the report of ``runs`` to ``path`` (one HTML file) and return the path."""
    return write_page(path, title, report_body(runs, title, only_diff), CSS)
