"""Evaluation figures: CMC curves, ranked-list (retrieval) figures and training curves, drawn
with Agg.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, so no global
pyplot state or display is touched.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

THUMB_SIZE = (64, 128)  # width, height of every thumbnail in a ranked list
PLACEHOLDER_GRAY = 160
MATCH_COLOR = "#1a9850"
MISMATCH_COLOR = "#d73027"
QUERY_COLOR = "#2b2b2b"
_LABELS = {"plain": "plain", "rerank": "re-ranked"}


def save_figure(fig: Figure, path: str | Path, dpi: int) -> Path:
    """Render a matplotlib figure (no pyplot state) to ``path``, creating its folder."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out, dpi=dpi)
    return out


def plot_cmc(
    curves: Mapping[str, Sequence[float]],
    path: str | Path,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """CMC curves (matching rate in % against rank), one line per named curve, as a PNG."""
    fig = Figure(figsize=(5.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    longest = 1
    for name, cmc in curves.items():
        y = 100.0 * np.asarray(cmc, dtype=np.float64)
        ranks = np.arange(1, len(y) + 1)
        longest = max(longest, len(y))
        label = f"{_LABELS.get(name, name)} (rank-1 {y[0]:.1f}%)" if len(y) else name
        ax.plot(ranks, y, marker="o" if len(y) <= 25 else None, markersize=3, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_xlim(1, max(longest, 2))
    ax.set_ylim(top=100.5)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def _thumbnail(path: str, cache: dict[str, np.ndarray | None]) -> np.ndarray:
    """The image resized to THUMB_SIZE, or a gray placeholder (cached as None) if unreadable."""
    if path not in cache:
        try:
            with Image.open(path) as img:
                small = img.convert("RGB").resize(THUMB_SIZE, Image.Resampling.BILINEAR)
                cache[path] = np.asarray(small)
        except (OSError, ValueError):
            cache[path] = None
    thumb = cache[path]
    if thumb is None:
        return np.full((THUMB_SIZE[1], THUMB_SIZE[0], 3), PLACEHOLDER_GRAY, dtype=np.uint8)
    return thumb


def _framed(ax: Axes, image: np.ndarray, color: str, width: float, caption: str) -> None:
    ax.imshow(image, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color(color)
        spine.set_linewidth(width)
    ax.set_title(caption, fontsize=7, pad=2)


def ranked_gallery(
    dist_row: np.ndarray,
    q_pid: int,
    q_camid: int,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    topk: int = 10,
) -> np.ndarray:
    """Indices of the top-k gallery images, without junk and same-identity same-camera ones."""
    order = np.argsort(dist_row, kind="stable")
    keep = ~(((g_pids[order] == q_pid) & (g_camids[order] == q_camid)) | (g_pids[order] == -1))
    return order[keep][:topk]


def plot_ranklist(
    distmat: np.ndarray,
    query_indices: Sequence[int],
    q_paths: Sequence[str],
    g_paths: Sequence[str],
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    path: str | Path,
    topk: int = 10,
    dpi: int = 100,
) -> int:
    """Queries beside their top-k matches framed green/red; returns the unreadable count."""
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    ranked = [
        ranked_gallery(distmat[qi], int(q_pids[qi]), int(q_camids[qi]), g_pids, g_camids, topk)
        for qi in query_indices
    ]
    rows = max(len(query_indices), 1)
    cols = 1 + max([len(r) for r in ranked] + [1])
    fig = Figure(figsize=(0.85 * cols + 0.3, 1.75 * rows))
    thumbs: dict[str, np.ndarray | None] = {}
    for r, (qi, top) in enumerate(zip(query_indices, ranked, strict=True)):
        ax = fig.add_subplot(rows, cols, r * cols + 1)
        caption = f"q{qi}, id {q_pids[qi]}"
        _framed(ax, _thumbnail(str(q_paths[qi]), thumbs), QUERY_COLOR, 2.0, caption)
        for k, gi in enumerate(top):
            ax = fig.add_subplot(rows, cols, r * cols + k + 2)
            color = MATCH_COLOR if g_pids[gi] == q_pids[qi] else MISMATCH_COLOR
            _framed(ax, _thumbnail(str(g_paths[gi]), thumbs), color, 4.0, f"{k + 1}")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.95, bottom=0.01, wspace=0.08, hspace=0.25)
    save_figure(fig, path, dpi)
    missing = [p for p, t in thumbs.items() if t is None]
    if missing:
        warnings.warn(
            f"{len(missing)} image(s) in the ranked list could not be read (first: "
            f"{missing[0]}); drawn as gray placeholders.",
            stacklevel=2,
        )
    return len(missing)


def plot_method_comparison(
    per_seed: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | Path,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Methods side by side: a bar per method at the mean (error bar: std over seeds) with
    every seed's value as a dot, one panel per metric. ``per_seed[method][metric]`` are
    fractions; the figure shows percent."""
    methods = list(per_seed)
    metrics = list(next(iter(per_seed.values()))) if methods else []
    fig = Figure(figsize=(1.2 + 0.9 * len(methods) * max(len(metrics), 1), 3.6))
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for x, method in enumerate(methods):
            values = 100.0 * np.asarray(per_seed[method][metric], dtype=np.float64)
            std = values.std(ddof=1) if len(values) > 1 else 0.0
            ax.bar(x, values.mean(), yerr=std, color=f"C{x}", alpha=0.55, capsize=3)
            offsets = np.linspace(-0.2, 0.2, len(values)) if len(values) > 1 else np.zeros(1)
            ax.plot(x + offsets, values, "o", color="0.25", markersize=3)
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
        ax.set_ylabel(f"{metric} (%)")
        ax.grid(True, axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A matplotlib figure rendered to PNG bytes (for pages that embed their figures)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def cmc_overlay_figure(
    curves: Mapping[str, Mapping[str, Sequence[float]]], title: str | None = None
) -> Figure:
    """CMC curves of several runs on one plot: a colour per run, a line style per setting
    (``plain`` solid, ``rerank`` dashed); ``curves[run][setting]`` are fractions."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    longest = 1
    for i, (run, settings) in enumerate(curves.items()):
        for setting, cmc in settings.items():
            y = 100.0 * np.asarray(cmc, dtype=np.float64)
            if not len(y):
                continue
            longest = max(longest, len(y))
            ax.plot(
                np.arange(1, len(y) + 1),
                y,
                color=f"C{i % 10}",
                linestyle="--" if setting == "rerank" else "-",
                label=f"{run}, {_LABELS.get(setting, setting)} (rank-1 {y[0]:.1f}%)",
            )
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_xlim(1, max(longest, 2))
    ax.set_ylim(top=100.5)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def curves_figure(
    panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
    runs: Sequence[str],
    xlabel: str = "epoch",
    cols: int = 3,
) -> Figure:
    """Training curves, one panel per metric with every run overlaid (``panels[metric][run]``
    is ``(x, y)``); a run keeps its colour (its place in ``runs``) in every panel."""
    names = list(panels)
    cols = max(1, min(cols, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows))
    for k, metric in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        for run, (x, y) in panels[metric].items():
            i = list(runs).index(run) if run in runs else 0
            ax.plot(x, y, color=f"C{i % 10}", marker="o" if len(x) <= 30 else None,
                    markersize=3, label=run)  # fmt: skip
        ax.set_title(metric, fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
