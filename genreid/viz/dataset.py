"""Dataset figures: the images-per-identity histogram (LSRO paper, Fig. 2)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from genreid.data.records import ReIDDataset  # noqa: E402
from genreid.data.stats import images_per_identity  # noqa: E402


def plot_images_per_identity(ds: ReIDDataset, out_file: str | Path) -> Path:
    """Histogram of the number of training images per identity."""
    counts = images_per_identity(ds.train)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    if len(counts):
        bins = np.arange(counts.min(), counts.max() + 2) - 0.5
        ax.hist(counts, bins=bins if len(bins) <= 80 else 40, color="#3b75af", edgecolor="white")
        ax.axvline(counts.mean(), color="#c44e52", ls="--", label=f"mean {counts.mean():.1f}")
        ax.legend()
    ax.set_xlabel("images per identity (training set)")
    ax.set_ylabel("identities")
    ax.set_title(f"{ds.name}: {len(counts)} identities, {int(counts.sum())} images")
    fig.tight_layout()
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
