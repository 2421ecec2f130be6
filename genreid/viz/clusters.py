"""SLSR cluster figures: the 2-D embedding coloured by cluster (SLSR Fig. 4) and a sheet of
sample images per cluster."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from genreid.data.io import read_image
from genreid.viz.plots import save_figure


def plot_embedding(
    points: np.ndarray, labels: Sequence[int], path: str | Path, title: str = "", dpi: int = 120
) -> Path:
    """A scatter of 2-D points (e.g. a PCA projection), one colour per cluster."""
    labels = np.asarray(labels)
    fig = Figure(figsize=(5.0, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    for c in sorted(set(labels.tolist())):
        pts = points[labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.6, label=f"cluster {c} ({len(pts)})")
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.legend(loc="best", markerscale=2, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def cluster_sheet(
    paths_by_cluster: dict[int, Sequence[str]] | dict[str, Sequence[str]],
    path: str | Path,
    per_row: int = 12,
    size: tuple[int, int] = (32, 64),
) -> Path:
    """One labelled row of sample images (width x height ``size``) per cluster (int keys:
    "cluster c", sorted) or per named row (str keys, in order)."""
    w, h = size
    label_w, pad = 110, 2
    named = any(isinstance(c, str) for c in paths_by_cluster)
    rows = list(paths_by_cluster) if named else sorted(paths_by_cluster)
    sheet = Image.new("RGB", (label_w + per_row * (w + pad), len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for r, c in enumerate(rows):
        y = pad + r * (h + pad)
        draw.text((4, y + h // 2 - 6), c if named else f"cluster {c}", fill="black")
        for k, p in enumerate(list(paths_by_cluster[c])[:per_row]):
            img = read_image(p).resize((w, h))
            sheet.paste(img, (label_w + k * (w + pad), y))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
